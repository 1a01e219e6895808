import { randomBytes, randomUUID } from 'node:crypto';
import { HttpEmulator, bearer, type EmuRequest, type EmuResponse } from '../server.ts';
import { generateSelfSignedCert } from './cert.ts';

/**
 * A loopback emulator of the Azure Key Vault secrets data plane, faithful to what
 * @azure/keyvault-secrets 4.11 sends and expects (azure-key-vault README "Provider facts", verified against the SDK
 * source in node_modules/@azure/keyvault-secrets/dist/esm/api/operations.js and
 * @azure/keyvault-common/dist/esm/keyVaultAuthenticationPolicy.js):
 *
 * - HTTPS only (the SDK refuses http), with a self-signed certificate made at start (cert.ts).
 *   Its PEM is `caPem`: hand it to the client (`tlsOptions: { ca }`, an `https.Agent({ ca })`, or
 *   `NODE_EXTRA_CA_CERTS=<file>` for a child process).
 * - The vault answers on `https://<vaultName>.vault.localhost:<port>` and its 401 challenge names
 *   `resource="https://vault.localhost"`, exactly as a real vault at `x.vault.azure.net` names
 *   `https://vault.azure.net`: the SDK's challenge-resource verification (request host must end
 *   with "." + resource host) passes without `disableChallengeResourceVerification`. `*.localhost`
 *   is loopback by RFC 6761 §6.3, but the system resolver may not know it: clients map it to
 *   127.0.0.1 themselves (the keyrot adapter does).
 * - The challenge flow: a request without `Authorization` gets 401 +
 *   `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>", resource="..."`
 *   (the SDK's first request of a client always arrives like that, body stripped); a wrong token
 *   gets 401 with the same challenge (the SDK then fails with a RestError 401).
 * - `PUT /secrets/{name}` (a new version each time), `GET /secrets/{name}[/]` (latest),
 *   `GET /secrets/{name}/{version}`, `PATCH /secrets/{name}/{version}` (attributes.enabled, tags,
 *   contentType), `GET /secrets/{name}/versions` paginated with an absolute `nextLink` carrying
 *   `$skiptoken`, ordered by version id (like the service: not by creation time), and
 *   `GET /secrets` (Get Secrets: each secret's id without a version and its latest version's
 *   attributes, never a value) paginated the same way (maxresults at most 25).
 * - Disabled versions cannot be read: 403 Forbidden "Operation get is not allowed on a disabled
 *   secret." with innererror SecretDisabled (the service's message, e.g. Azure/azure-sdk-for-js#24756).
 * - Error bodies are the service's `{"error":{"code","message","innererror"}}`: SecretNotFound,
 *   Unauthorized (AKV10000, Azure/azure-sdk-for-python#24557), Forbidden + ForbiddenByRbac with the
 *   "Caller is not authorized... Action: '...'" text (piyushsachdeva/Terraform_AKS#2) or
 *   AccessDenied "does not have secrets get permission on key vault '<name>;location=...'" for
 *   access-policy vaults (quoted in many public troubleshooting guides), Throttled 429 "Reason:
 *   VaultRequestTypeLimitReached" (vcsjones/AzureSignTool#219), BadParameter.
 * - The SDK sends `api%2Dversion=...` percent-encoded: URLSearchParams decodes it.
 */

export type KeyVaultOp = 'get' | 'set' | 'update' | 'list';

/** RBAC data action the service names in a 403 for each operation (Key Vault RBAC guide). */
export const DATA_ACTIONS: Record<KeyVaultOp, string> = {
  get: 'Microsoft.KeyVault/vaults/secrets/getSecret/action',
  set: 'Microsoft.KeyVault/vaults/secrets/setSecret/action',
  update: 'Microsoft.KeyVault/vaults/secrets/update/action',
  list: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
};

/** Access-policy permission each operation needs (the REST reference: "requires the secrets/get permission"...). */
const POLICY_PERMISSION: Record<KeyVaultOp, string> = { get: 'get', set: 'set', update: 'set', list: 'list' };

export interface StoredVersion {
  version: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
  /** Unix seconds, like the service. */
  created: number;
  updated: number;
  nbf?: number;
  exp?: number;
  /** Creation order (the service's list order is by version id, so tests need this one). */
  seq: number;
}

export interface KeyVaultEmulatorOptions {
  /** First DNS label of the vault host: `https://<vaultName>.vault.localhost:<port>`. */
  vaultName?: string;
  tenantId?: string;
  /** Versions per page of `GET /secrets/{name}/versions` (the service's maximum is 25). */
  pageSize?: number;
  /** The resource the 401 challenge names. Default `https://vault.localhost` (matches the host). */
  challengeResource?: string;
}

export type DenyMode = 'rbac' | 'access-policy';

export class KeyVaultEmulator extends HttpEmulator {
  readonly tenantId: string;
  readonly vaultName: string;
  readonly caPem: string;
  /** The access token the vault accepts (generated at run time; a throw-away). */
  token: string;
  /** `https://<vaultName>.vault.localhost:<port>` once started. */
  vaultUrl = '';
  /** `https://127.0.0.1:<port>` once started. */
  loopbackUrl = '';
  private readonly secrets = new Map<string, StoredVersion[]>();
  private readonly denied = new Map<KeyVaultOp, DenyMode>();
  private readonly faults: Array<{ op?: KeyVaultOp; status: number; retryAfterSeconds: number | null; times: number }> = [];
  private readonly pageSize: number;
  private readonly challengeResource: string;
  private seqNo = 0;

  constructor(opts: KeyVaultEmulatorOptions = {}) {
    const tls = generateSelfSignedCert({
      commonName: 'keyrot Azure Key Vault emulator',
      dnsNames: ['localhost', '*.vault.localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    super({
      name: 'azure-key-vault',
      tls,
      notFound: (req) => errorResponse(400, 'BadParameter', `The request URI ${req.path} is not a valid Key Vault secrets operation.`),
    });
    this.caPem = tls.cert;
    this.vaultName = opts.vaultName ?? 'keyrot-emulator';
    this.tenantId = opts.tenantId ?? randomUUID();
    this.pageSize = Math.min(opts.pageSize ?? 25, 25);
    this.challengeResource = opts.challengeResource ?? 'https://vault.localhost';
    this.token = randomBytes(24).toString('base64url');
    this.routes();
  }

  override async start(port = 0): Promise<string> {
    this.loopbackUrl = await super.start(port);
    this.vaultUrl = `https://${this.vaultName}.vault.localhost:${new URL(this.loopbackUrl).port}`;
    return this.vaultUrl;
  }

  // --- helpers for tests and the demo (bypass the API) -------------------------------------------

  /** Adds a version directly (the secret is created if needed). Returns the version id. */
  seed(name: string, value: string, opts: { contentType?: string; tags?: Record<string, string>; enabled?: boolean } = {}): string {
    return this.addVersion(name, { value, contentType: opts.contentType, tags: opts.tags, enabled: opts.enabled ?? true }).version;
  }

  /** All versions of a secret in creation order (values included: tests compare them). */
  versions(name: string): StoredVersion[] {
    return [...(this.secrets.get(name) ?? [])].sort((a, b) => a.seq - b.seq).map((v) => ({ ...v, tags: v.tags && { ...v.tags } }));
  }

  /** The latest version (what `GET /secrets/{name}` returns), or undefined. */
  latest(name: string): StoredVersion | undefined {
    return this.versions(name).at(-1);
  }

  secretNames(): string[] {
    return [...this.secrets.keys()];
  }

  /** Every call of `op` answers 403 until `allow(op)`: an RBAC denial or an access-policy one. */
  deny(op: KeyVaultOp, mode: DenyMode = 'rbac'): void {
    this.denied.set(op, mode);
  }

  allow(op?: KeyVaultOp): void {
    if (op) this.denied.delete(op);
    else this.denied.clear();
  }

  /**
   * The next authenticated call(s) (of `op`, or any) answer 429 Throttled. Key Vault's throttling
   * guidance says to honour Retry-After; observed 429s do not always carry it
   * (vcsjones/AzureSignTool#219), so `retryAfterSeconds: null` omits it.
   */
  throttleNext(opts: { op?: KeyVaultOp; times?: number; retryAfterSeconds?: number | null } = {}): void {
    this.faults.push({ op: opts.op, status: 429, retryAfterSeconds: opts.retryAfterSeconds === undefined ? 1 : opts.retryAfterSeconds, times: opts.times ?? 1 });
  }

  /** The next authenticated call(s) answer 503 ServiceUnavailable. */
  unavailableNext(opts: { op?: KeyVaultOp; times?: number } = {}): void {
    this.faults.push({ op: opts.op, status: 503, retryAfterSeconds: null, times: opts.times ?? 1 });
  }

  /** Accept a different token from now on: clients holding the old one get 401. */
  rotateToken(): string {
    this.token = randomBytes(24).toString('base64url');
    return this.token;
  }

  // --- the API ---------------------------------------------------------------------------------

  private routes(): void {
    const s = this.server;
    s.route('GET', '/secrets', this.authed('list', (req) => this.listSecrets(req)));
    s.route('PUT', '/secrets/:name', this.authed('set', (req) => this.setSecret(req)));
    // Registered before /:version: "versions" is never a version id (those are 32 hex chars).
    s.route('GET', '/secrets/:name/versions', this.authed('list', (req) => this.listVersions(req)));
    // The SDK asks for the latest version with a trailing slash (an empty version segment).
    s.route('GET', '/secrets/:name/', this.authed('get', (req) => this.getSecret(req.params.name!, '', req)));
    s.route('GET', '/secrets/:name', this.authed('get', (req) => this.getSecret(req.params.name!, '', req)));
    s.route('GET', '/secrets/:name/:version', this.authed('get', (req) => this.getSecret(req.params.name!, req.params.version!, req)));
    s.route('PATCH', '/secrets/:name/:version', this.authed('update', (req) => this.updateSecret(req)));
  }

  private challenge(): Record<string, string> {
    return {
      'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${this.tenantId}", resource="${this.challengeResource}"`,
    };
  }

  /** Auth, api-version, fault and permission checks every operation shares, in the service's order. */
  private authed(op: KeyVaultOp, handler: (req: EmuRequest) => EmuResponse): (req: EmuRequest) => EmuResponse {
    return (req) => {
      const token = bearer(req);
      if (!token) {
        return { ...errorResponse(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.'), headers: this.challenge() };
      }
      if (token !== this.token) {
        return { ...errorResponse(401, 'Unauthorized', 'AKV10046: Unable to resolve the key used for signature validation.'), headers: this.challenge() };
      }
      if (!req.query.get('api-version')) {
        return errorResponse(400, 'BadParameter', 'The api-version query parameter is required.');
      }
      const i = this.faults.findIndex((f) => !f.op || f.op === op);
      if (i >= 0) {
        const f = this.faults[i]!;
        if (--f.times <= 0) this.faults.splice(i, 1);
        if (f.status === 429) {
          const res = errorResponse(429, 'Throttled', 'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached');
          return f.retryAfterSeconds === null ? res : { ...res, headers: { 'retry-after': String(f.retryAfterSeconds) } };
        }
        return errorResponse(f.status, 'ServiceUnavailable', 'The service is temporarily unavailable. Please try again later.');
      }
      // Get Secrets names no secret: its scope is the vault.
      const name = req.params.name;
      if (name !== undefined && !/^[0-9a-zA-Z-]{1,127}$/.test(name)) {
        return errorResponse(400, 'BadParameter', `The request URI contains an invalid name: ${name}`);
      }
      const mode = this.denied.get(op);
      if (mode === 'rbac') {
        return errorResponse(
          403,
          'Forbidden',
          `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n` +
            `Caller: appid=00000000-0000-0000-0000-000000000000;oid=00000000-0000-0000-0000-000000000001;iss=https://sts.windows.net/${this.tenantId}/\r\n` +
            `Action: '${DATA_ACTIONS[op]}'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/keyrot/providers/microsoft.keyvault/vaults/${this.vaultName}${name === undefined ? '' : `/secrets/${name.toLowerCase()}`}'\r\n` +
            `Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: ${this.vaultName};location=westeurope\r\n`,
          'ForbiddenByRbac',
        );
      }
      if (mode === 'access-policy') {
        return errorResponse(
          403,
          'Forbidden',
          `The user, group or application 'appid=00000000-0000-0000-0000-000000000000;oid=00000000-0000-0000-0000-000000000001;iss=https://sts.windows.net/${this.tenantId}/' ` +
            `does not have secrets ${POLICY_PERMISSION[op]} permission on key vault '${this.vaultName};location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
          'AccessDenied',
        );
      }
      return handler(req);
    };
  }

  private addVersion(name: string, v: { value: string; contentType?: string; tags?: Record<string, string>; enabled: boolean; nbf?: number; exp?: number }): StoredVersion {
    const now = Math.floor(Date.now() / 1000);
    const stored: StoredVersion = {
      version: randomBytes(16).toString('hex'),
      value: v.value,
      enabled: v.enabled,
      created: now,
      updated: now,
      seq: ++this.seqNo,
      ...(v.contentType !== undefined && { contentType: v.contentType }),
      ...(v.tags && { tags: { ...v.tags } }),
      ...(v.nbf !== undefined && { nbf: v.nbf }),
      ...(v.exp !== undefined && { exp: v.exp }),
    };
    const list = this.secrets.get(name) ?? [];
    list.push(stored);
    this.secrets.set(name, list);
    return stored;
  }

  private base(req: EmuRequest): string {
    return `https://${req.headers.host ?? new URL(this.vaultUrl).host}`;
  }

  private bundle(req: EmuRequest, name: string, v: StoredVersion, withValue: boolean): Record<string, unknown> {
    return {
      ...(withValue && { value: v.value }),
      id: `${this.base(req)}/secrets/${name}/${v.version}`,
      ...(v.contentType !== undefined && { contentType: v.contentType }),
      attributes: this.attributes(v),
      ...(v.tags && { tags: v.tags }),
    };
  }

  private attributes(v: StoredVersion): Record<string, unknown> {
    return {
      enabled: v.enabled,
      ...(v.nbf !== undefined && { nbf: v.nbf }),
      ...(v.exp !== undefined && { exp: v.exp }),
      created: v.created,
      updated: v.updated,
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 90,
    };
  }

  private find(name: string, version: string): StoredVersion | undefined {
    const list = this.secrets.get(name);
    if (!list?.length) return undefined;
    if (!version) return list.reduce((a, b) => (b.seq > a.seq ? b : a));
    return list.find((v) => v.version === version);
  }

  private setSecret(req: EmuRequest): EmuResponse {
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as {
      value?: unknown;
      contentType?: unknown;
      tags?: unknown;
      attributes?: { enabled?: unknown; nbf?: unknown; exp?: unknown };
    };
    if (typeof body.value !== 'string') return errorResponse(400, 'BadParameter', "Property 'value' is required and must be a string.");
    const tags = body.tags && typeof body.tags === 'object' ? (body.tags as Record<string, string>) : undefined;
    // At most 15 tags per secret version; the 16th is refused as 400 BadParameter "Property has
    // invalid value" (hashicorp/terraform-provider-azurerm#16780 / PR #16947; the same answer for
    // certificates in aztfmod/terraform-azurerm-caf PR #837).
    if (tags && Object.keys(tags).length > 15) return errorResponse(400, 'BadParameter', 'Property has invalid value\r\n');
    const v = this.addVersion(req.params.name!, {
      value: body.value,
      contentType: typeof body.contentType === 'string' ? body.contentType : undefined,
      tags,
      enabled: body.attributes?.enabled !== false,
      nbf: typeof body.attributes?.nbf === 'number' ? body.attributes.nbf : undefined,
      exp: typeof body.attributes?.exp === 'number' ? body.attributes.exp : undefined,
    });
    return { status: 200, body: this.bundle(req, req.params.name!, v, true) };
  }

  private getSecret(name: string, version: string, req: EmuRequest): EmuResponse {
    const v = this.find(name, version);
    if (!v) return notFound(name, version);
    if (!v.enabled) return errorResponse(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
    return { status: 200, body: this.bundle(req, name, v, true) };
  }

  private updateSecret(req: EmuRequest): EmuResponse {
    const name = req.params.name!;
    const v = this.secrets.get(name)?.find((x) => x.version === req.params.version);
    if (!v) return notFound(name, req.params.version!);
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as {
      contentType?: unknown;
      tags?: unknown;
      attributes?: { enabled?: unknown };
    };
    // PATCH semantics: what is not in the body is left unchanged (REST reference, Update Secret).
    if (typeof body.attributes?.enabled === 'boolean') v.enabled = body.attributes.enabled;
    if (body.tags && typeof body.tags === 'object') v.tags = { ...(body.tags as Record<string, string>) };
    if (typeof body.contentType === 'string') v.contentType = body.contentType;
    v.updated = Math.floor(Date.now() / 1000);
    // The update answer carries the attributes, never the value.
    return { status: 200, body: this.bundle(req, name, v, false) };
  }

  private listVersions(req: EmuRequest): EmuResponse {
    const name = req.params.name!;
    // A secret that does not exist lists no versions (200, empty), like the service.
    const all = [...(this.secrets.get(name) ?? [])].sort((a, b) => (a.version < b.version ? -1 : 1));
    return this.paged(req, `/secrets/${name}/versions`, all, (v) => ({
      id: `${this.base(req)}/secrets/${name}/${v.version}`,
      attributes: this.attributes(v),
      ...(v.tags && { tags: v.tags }),
      ...(v.contentType !== undefined && { contentType: v.contentType }),
    }));
  }

  /** Get Secrets: every secret, by its latest version's attributes (SecretItem: no value, no version in the id). */
  private listSecrets(req: EmuRequest): EmuResponse {
    const all = [...this.secrets.entries()].map(([name, versions]) => ({ name, latest: [...versions].sort((a, b) => a.seq - b.seq).at(-1)! }));
    return this.paged(req, '/secrets', all, ({ name, latest }) => ({
      id: `${this.base(req)}/secrets/${name}`,
      attributes: this.attributes(latest),
      ...(latest.tags && { tags: latest.tags }),
      ...(latest.contentType !== undefined && { contentType: latest.contentType }),
    }));
  }

  /** One page of a list: `maxresults` (at most the page size), an absolute `nextLink` with `$skiptoken`, null on the last page. */
  private paged<T>(req: EmuRequest, path: string, all: T[], item: (t: T) => Record<string, unknown>): EmuResponse {
    const max = Math.min(Number(req.query.get('maxresults') ?? this.pageSize) || this.pageSize, this.pageSize);
    let start = 0;
    const skip = req.query.get('$skiptoken');
    if (skip) {
      try {
        start = (JSON.parse(Buffer.from(skip, 'base64url').toString('utf8')) as { offset: number }).offset;
      } catch {
        return errorResponse(400, 'BadParameter', 'The $skiptoken is invalid.');
      }
    }
    const more = start + max < all.length;
    const token = Buffer.from(JSON.stringify({ offset: start + max }), 'utf8').toString('base64url');
    const apiVersion = req.query.get('api-version')!;
    return {
      status: 200,
      body: {
        value: all.slice(start, start + max).map(item),
        nextLink: more ? `${this.base(req)}${path}?api-version=${encodeURIComponent(apiVersion)}&$skiptoken=${token}&maxresults=${max}` : null,
      },
    };
  }
}

function errorResponse(status: number, code: string, message: string, inner?: string): EmuResponse {
  return { status, body: { error: { code, message, ...(inner && { innererror: { code: inner } }) } } };
}

function notFound(name: string, version: string): EmuResponse {
  return errorResponse(
    404,
    'SecretNotFound',
    `A secret with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

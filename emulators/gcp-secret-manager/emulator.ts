import { createHash, randomBytes } from 'node:crypto';
import { HttpEmulator, bearer, type EmuRequest, type EmuResponse } from '../server.ts';
import { crc32c } from '../../src/targets/gcp-secret-manager/crc32c.ts';

/**
 * A loopback emulator of the Google Cloud Secret Manager v1 REST API (the transport
 * @google-cloud/secret-manager uses with `fallback: true`), faithful on the subset keyrot drives:
 *
 *   GET  /v1/projects/{p}/secrets                              ListSecrets          secretmanager.secrets.list
 *   GET  /v1/projects/{p}/secrets/{s}                          GetSecret            secretmanager.secrets.get
 *   POST /v1/projects/{p}/secrets/{s}:addVersion               AddSecretVersion     secretmanager.versions.add
 *   POST /v1/projects/{p}/secrets/{s}:testIamPermissions       TestIamPermissions   (none)
 *   GET  /v1/projects/{p}/secrets/{s}/versions                 ListSecretVersions   secretmanager.versions.list
 *   GET  /v1/projects/{p}/secrets/{s}/versions/{v}             GetSecretVersion     secretmanager.versions.get
 *   GET  /v1/projects/{p}/secrets/{s}/versions/{v}:access      AccessSecretVersion  secretmanager.versions.access
 *   POST /v1/projects/{p}/secrets/{s}/versions/{v}:disable     DisableSecretVersion secretmanager.versions.disable
 *   POST /v1/projects/{p}/secrets/{s}/versions/{v}:enable      EnableSecretVersion  secretmanager.versions.enable
 *   POST /v1/projects/{p}/secrets/{s}/versions/{v}:destroy     DestroySecretVersion secretmanager.versions.destroy
 * (HTTP bindings from service.proto's google.api.http options, @google-cloud/secret-manager 6.3.0.)
 *
 * Behaviour reproduced:
 * - Bearer token check: a missing or wrong token gets Google's 401 UNAUTHENTICATED body.
 * - Errors in the google.rpc.Status JSON shape `{"error":{"code","message","status","details"}}`,
 *   with ErrorInfo details (IAM_PERMISSION_DENIED with metadata.permission, RATE_LIMIT_EXCEEDED)
 *   and, when asked, RetryInfo.
 * - Resource names in responses use the project NUMBER, as the real API does, whatever the request used.
 * - `latest` = the most recently created version whatever its state; a non-ENABLED version cannot be
 *   accessed (400 FAILED_PRECONDITION "Secret Version [...] is in DISABLED state.").
 * - AddSecretVersion verifies `dataCrc32c` when given (400 INVALID_ARGUMENT on mismatch), stores or
 *   computes the CRC32C and returns it on access; payloads above 64 KiB are rejected.
 * - ListSecretVersions: newest first, pageSize/pageToken pagination, totalSize, `state:` filter.
 * - Version etags change on every enable/disable/destroy, even one that changes nothing (enabling an
 *   enabled version); a stale etag is 400 FAILED_PRECONDITION, not AIP-154's ABORTED
 *   (https://cloud.google.com/secret-manager/docs/etags: "otherwise, it fails with a
 *   FAILED_PRECONDITION error and an HTTP status code 400"; "A no-operation resource update also
 *   updates the resource etag").
 * - Numeric enums when the client asks for `$alt=json;enum-encoding=int` (the Node client always does).
 * Test helpers: seed, versions, denyPermission, throttleNext, corruptNextAccess, setState.
 */

export type VersionState = 'ENABLED' | 'DISABLED' | 'DESTROYED';
const STATE_NUM: Record<VersionState, number> = { ENABLED: 1, DISABLED: 2, DESTROYED: 3 };

interface StoredVersion {
  id: number;
  state: VersionState;
  data: Buffer | null;
  crc32c: number;
  clientSpecifiedPayloadChecksum: boolean;
  createTime: string;
  destroyTime?: string;
  etag: string;
}

interface StoredSecret {
  project: string;
  id: string;
  createTime: string;
  etag: string;
  versions: StoredVersion[];
}

export interface VersionView {
  version: string;
  state: VersionState;
  /** The payload as UTF-8 (null once destroyed). Test-side only: the API never lists values. */
  value: string | null;
  crc32c: number;
  etag: string;
}

export interface GcpSecretManagerEmulatorOptions {
  /** The access token the emulator accepts (random when omitted). */
  token?: string;
  /** Project id → project number; numbers are derived from the id otherwise. */
  projectNumbers?: Record<string, string>;
  /** Page size when the request gives none (the real server decides; 0 = server's choice). */
  defaultPageSize?: number;
}

export const ALL_PERMISSIONS = [
  'secretmanager.secrets.get',
  'secretmanager.secrets.list',
  'secretmanager.versions.access',
  'secretmanager.versions.add',
  'secretmanager.versions.destroy',
  'secretmanager.versions.disable',
  'secretmanager.versions.enable',
  'secretmanager.versions.get',
  'secretmanager.versions.list',
] as const;

const SERVICE = 'secretmanager.googleapis.com';
const RPC = 'google.cloud.secretmanager.v1.SecretManagerService';
const MAX_PAYLOAD = 64 * 1024;

interface Throttle {
  remaining: number;
  retryDelayMs?: number;
  path?: RegExp;
}

function googleError(
  code: number,
  status: string,
  message: string,
  details: unknown[] = [],
  headers?: Record<string, string>,
): EmuResponse {
  return { status: code, headers, body: { error: { code, message, status, ...(details.length ? { details } : {}) } } };
}

function nowIso(): string {
  // Google timestamps carry nanoseconds; microseconds are enough here.
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function newEtag(): string {
  return `"${randomBytes(8).toString('hex')}"`;
}

export class GcpSecretManagerEmulator extends HttpEmulator {
  token: string;
  private readonly secrets = new Map<string, StoredSecret>();
  private readonly denied = new Set<string>();
  private readonly throttles: Throttle[] = [];
  private corruptAccess = 0;
  private readonly projectNumbers: Record<string, string>;
  private readonly defaultPageSize: number;

  constructor(opts: GcpSecretManagerEmulatorOptions = {}) {
    super({
      name: 'gcp-secret-manager',
      notFound: (req) => googleError(404, 'NOT_FOUND', `gcp-secret-manager emulator: no route for ${req.method} ${req.path}`),
    });
    this.token = opts.token ?? `ya29.emulator-${randomBytes(18).toString('base64url')}`;
    this.projectNumbers = { ...opts.projectNumbers };
    this.defaultPageSize = opts.defaultPageSize ?? 25;
    this.server.route('GET', '/v1/projects/:project/secrets', (r) => this.guard(r, () => this.listSecrets(r)));
    const base = '/v1/projects/:project/secrets/:secret';
    this.server.route('GET', base, (r) => this.guard(r, () => this.getSecret(r)));
    this.server.route('POST', base, (r) => this.guard(r, () => this.secretAction(r)));
    this.server.route('GET', `${base}/versions`, (r) => this.guard(r, () => this.listVersions(r)));
    this.server.route('GET', `${base}/versions/:version`, (r) => this.guard(r, () => this.getVersion(r)));
    this.server.route('POST', `${base}/versions/:version`, (r) => this.guard(r, () => this.versionAction(r)));
  }

  /** `127.0.0.1:PORT`: the target's `endpoint:`. */
  get endpoint(): string {
    return this.server.url.replace(/^https?:\/\//, '');
  }

  override async start(port = 0): Promise<string> {
    await super.start(port);
    return this.endpoint;
  }

  projectNumber(project: string): string {
    if (/^\d+$/.test(project)) return project;
    this.projectNumbers[project] ??= String(100000000000 + (parseInt(createHash('sha256').update(project).digest('hex').slice(0, 10), 16) % 899999999999));
    return this.projectNumbers[project]!;
  }

  // ---- test/demo helpers (bypass the API) ----

  createSecret(project: string, secret: string): void {
    const key = this.key(project, secret);
    if (!this.secrets.has(key)) this.secrets.set(key, { project: this.projectId(project), id: secret, createTime: nowIso(), etag: newEtag(), versions: [] });
  }

  /** Adds an ENABLED version holding `value` (creating the secret if needed); returns its id. */
  seed(project: string, secret: string, value: string): string {
    this.createSecret(project, secret);
    return String(this.add(this.secrets.get(this.key(project, secret))!, Buffer.from(value, 'utf8'), false).id);
  }

  /** Every version, oldest first, with its value: what the test needs to prove, never an API view. */
  versions(project: string, secret: string): VersionView[] {
    const s = this.secrets.get(this.key(project, secret));
    return (s?.versions ?? []).map((v) => ({
      version: String(v.id),
      state: v.state,
      value: v.data ? v.data.toString('utf8') : null,
      crc32c: v.crc32c,
      etag: v.etag,
    }));
  }

  /** What `latest` resolves to (the newest version, any state), or null. */
  latest(project: string, secret: string): VersionView | null {
    const all = this.versions(project, secret);
    return all.length ? all[all.length - 1]! : null;
  }

  setState(project: string, secret: string, version: string, state: VersionState): void {
    const v = this.secrets.get(this.key(project, secret))?.versions.find((x) => String(x.id) === version);
    if (!v) throw new Error(`no version ${version}`);
    this.transition(v, state);
  }

  /** Calls needing `permission` answer 403 PERMISSION_DENIED naming it; testIamPermissions leaves it out. */
  denyPermission(permission: string): void {
    this.denied.add(permission);
  }

  allowPermission(permission: string): void {
    this.denied.delete(permission);
  }

  /** The next `times` API calls (optionally only paths matching `path`) answer 429 RESOURCE_EXHAUSTED. */
  throttleNext(opts: { times?: number; retryDelayMs?: number; path?: RegExp } = {}): void {
    this.throttles.push({ remaining: opts.times ?? 1, retryDelayMs: opts.retryDelayMs, path: opts.path });
  }

  /** The next access answers data with one bit flipped and the stored (now wrong) CRC32C. */
  corruptNextAccess(times = 1): void {
    this.corruptAccess += times;
  }

  // ---- internals ----

  private projectId(project: string): string {
    if (!/^\d+$/.test(project)) return project;
    return Object.entries(this.projectNumbers).find(([, n]) => n === project)?.[0] ?? project;
  }

  private key(project: string, secret: string): string {
    return `${this.projectId(project)}/${secret}`;
  }

  private secretName(s: StoredSecret): string {
    return `projects/${this.projectNumber(s.project)}/secrets/${s.id}`;
  }

  private add(s: StoredSecret, data: Buffer, clientChecksum: boolean): StoredVersion {
    const id = (s.versions.at(-1)?.id ?? 0) + 1;
    const v: StoredVersion = {
      id,
      state: 'ENABLED',
      data,
      crc32c: crc32c(data),
      clientSpecifiedPayloadChecksum: clientChecksum,
      createTime: nowIso(),
      etag: newEtag(),
    };
    s.versions.push(v);
    return v;
  }

  private transition(v: StoredVersion, state: VersionState): void {
    // A no-operation update (enable an enabled version) succeeds and still changes the etag
    // (https://cloud.google.com/secret-manager/docs/etags).
    v.etag = newEtag();
    if (v.state === state) return;
    v.state = state;
    if (state === 'DESTROYED') {
      v.data = null;
      v.destroyTime = nowIso();
    }
  }

  private numericEnums(req: EmuRequest): boolean {
    return /enum-encoding=int/.test(req.query.get('$alt') ?? '');
  }

  private versionJson(s: StoredSecret, v: StoredVersion, req: EmuRequest): Record<string, unknown> {
    return {
      name: `${this.secretName(s)}/versions/${v.id}`,
      createTime: v.createTime,
      ...(v.destroyTime ? { destroyTime: v.destroyTime } : {}),
      state: this.numericEnums(req) ? STATE_NUM[v.state] : v.state,
      replicationStatus: { automatic: {} },
      etag: v.etag,
      ...(v.clientSpecifiedPayloadChecksum ? { clientSpecifiedPayloadChecksum: true } : {}),
    };
  }

  /** Authentication, then quota, then the handler (which checks permission, then existence). */
  private guard(req: EmuRequest, handler: () => EmuResponse): EmuResponse {
    const method = `${RPC}.${this.rpcName(req)}`;
    const token = bearer(req);
    if (!token) {
      return googleError(
        401,
        'UNAUTHENTICATED',
        'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
        [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'CREDENTIALS_MISSING', domain: 'googleapis.com', metadata: { service: SERVICE, method } }],
        { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' },
      );
    }
    if (token !== this.token) {
      return googleError(
        401,
        'UNAUTHENTICATED',
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
        [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED', domain: 'googleapis.com', metadata: { service: SERVICE, method } }],
        { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
      );
    }
    const t = this.throttles.find((x) => !x.path || x.path.test(req.path));
    if (t) {
      if (--t.remaining <= 0) this.throttles.splice(this.throttles.indexOf(t), 1);
      const access = /:access$/.test(req.path);
      const metric = access ? 'Access requests' : req.method === 'GET' ? 'Read requests' : 'Write requests';
      const consumer = `project_number:${this.projectNumber(req.params.project!)}`;
      const details: unknown[] = [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'RATE_LIMIT_EXCEEDED',
          domain: 'googleapis.com',
          metadata: { service: SERVICE, consumer: `projects/${this.projectNumber(req.params.project!)}`, quota_metric: `${SERVICE}/${access ? 'access_requests' : req.method === 'GET' ? 'read_requests' : 'write_requests'}`, quota_limit_value: access ? '90000' : '600' },
        },
      ];
      if (t.retryDelayMs !== undefined) {
        details.push({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${(t.retryDelayMs / 1000).toFixed(3)}s` });
      }
      return googleError(
        429,
        'RESOURCE_EXHAUSTED',
        `Quota exceeded for quota metric '${metric}' and limit '${metric} per minute per project' of service '${SERVICE}' for consumer '${consumer}'.`,
        details,
      );
    }
    return handler();
  }

  private rpcName(req: EmuRequest): string {
    const p = req.path;
    if (p.endsWith(':addVersion')) return 'AddSecretVersion';
    if (p.endsWith(':testIamPermissions')) return 'TestIamPermissions';
    if (p.endsWith(':access')) return 'AccessSecretVersion';
    if (p.endsWith(':disable')) return 'DisableSecretVersion';
    if (p.endsWith(':enable')) return 'EnableSecretVersion';
    if (p.endsWith(':destroy')) return 'DestroySecretVersion';
    if (p.endsWith('/versions')) return 'ListSecretVersions';
    if (p.endsWith('/secrets')) return 'ListSecrets';
    if (p.includes('/versions/')) return 'GetSecretVersion';
    return 'GetSecret';
  }

  private denied403(permission: string, resource: string): EmuResponse | undefined {
    if (!this.denied.has(permission)) return undefined;
    return googleError(403, 'PERMISSION_DENIED', `Permission '${permission}' denied for resource '${resource}' (or it may not exist).`, [
      { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'IAM_PERMISSION_DENIED', domain: 'iam.googleapis.com', metadata: { permission, resource } },
    ]);
  }

  private findSecret(req: EmuRequest, secretId: string): StoredSecret | EmuResponse {
    const s = this.secrets.get(this.key(req.params.project!, secretId));
    if (s) return s;
    return googleError(404, 'NOT_FOUND', `Secret [projects/${this.projectNumber(req.params.project!)}/secrets/${secretId}] not found.`);
  }

  private getSecret(req: EmuRequest): EmuResponse {
    const secretId = req.params.secret!;
    if (secretId.includes(':')) return googleError(404, 'NOT_FOUND', `gcp-secret-manager emulator: no route for GET ${req.path}`);
    const resource = `projects/${req.params.project}/secrets/${secretId}`;
    const denied = this.denied403('secretmanager.secrets.get', resource);
    if (denied) return denied;
    const s = this.findSecret(req, secretId);
    if ('status' in s) return s;
    return { status: 200, body: { name: this.secretName(s), replication: { automatic: {} }, createTime: s.createTime, etag: s.etag } };
  }

  private secretAction(req: EmuRequest): EmuResponse {
    const m = /^([^:]+):(addVersion|testIamPermissions)$/.exec(req.params.secret!);
    if (!m) return googleError(404, 'NOT_FOUND', `gcp-secret-manager emulator: no route for POST ${req.path}`);
    const [, secretId, verb] = m;
    const resource = `projects/${req.params.project}/secrets/${secretId}`;
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;

    if (verb === 'testIamPermissions') {
      // Answers the subset of the asked permissions the caller holds; needs no permission itself.
      // For a secret that does not exist the answer here is NOT_FOUND [UNCERTAIN: the real service may answer 403 or an empty list].
      const s = this.findSecret(req, secretId!);
      if ('status' in s) return s;
      const asked = Array.isArray(body.permissions) ? body.permissions.filter((p): p is string => typeof p === 'string') : [];
      const held = asked.filter((p) => (ALL_PERMISSIONS as readonly string[]).includes(p) && !this.denied.has(p));
      return { status: 200, body: held.length ? { permissions: held } : {} };
    }

    const denied = this.denied403('secretmanager.versions.add', resource);
    if (denied) return denied;
    const s = this.findSecret(req, secretId!);
    if ('status' in s) return s;
    const payload = body.payload as Record<string, unknown> | undefined;
    if (!payload || typeof payload !== 'object') return googleError(400, 'INVALID_ARGUMENT', 'Field [payload] is required.');
    const data = Buffer.from(typeof payload.data === 'string' ? payload.data : '', 'base64');
    if (data.length > MAX_PAYLOAD) return googleError(400, 'INVALID_ARGUMENT', `Secret Payload cannot be larger than 64KiB.`);
    const given = payload.dataCrc32c;
    if (given !== undefined && given !== null) {
      // int64 in proto3 JSON is a string; numbers are accepted too.
      if (Number(given) !== crc32c(data)) {
        return googleError(400, 'INVALID_ARGUMENT', 'Checksum mismatch: the provided data_crc32c does not match the CRC32C of the payload data.');
      }
    }
    const v = this.add(s, data, given !== undefined && given !== null);
    return { status: 200, body: this.versionJson(s, v, req) };
  }

  /**
   * ListSecrets (GET /v1/projects/{p}/secrets, permission secretmanager.secrets.list on the
   * project): secrets in creation order, pageSize (default 25, at most 25000) / pageToken, totalSize.
   */
  private listSecrets(req: EmuRequest): EmuResponse {
    const denied = this.denied403('secretmanager.secrets.list', `projects/${req.params.project}`);
    if (denied) return denied;
    const project = this.projectId(req.params.project!);
    const all = [...this.secrets.values()].filter((s) => s.project === project);
    const window = this.pageOf(req, all.length);
    if ('status' in window) return window;
    const page = all.slice(window.offset, window.offset + window.size);
    return {
      status: 200,
      body: {
        ...(page.length ? { secrets: page.map((s) => ({ name: this.secretName(s), replication: { automatic: {} }, createTime: s.createTime, etag: s.etag })) } : {}),
        ...(window.next ? { nextPageToken: window.next } : {}),
        ...(all.length ? { totalSize: all.length } : {}),
      },
    };
  }

  /** pageSize (default per emulator, at most 25000) and pageToken of a List call. */
  private pageOf(req: EmuRequest, total: number): { offset: number; size: number; next: string } | EmuResponse {
    const sizeRaw = Number(req.query.get('pageSize') ?? 0);
    const size = sizeRaw > 0 ? Math.min(sizeRaw, 25000) : this.defaultPageSize;
    let offset = 0;
    const token = req.query.get('pageToken');
    if (token) {
      const m = /^off:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
      if (!m) return googleError(400, 'INVALID_ARGUMENT', 'Invalid page token.');
      offset = Number(m[1]);
    }
    const next = offset + size < total ? Buffer.from(`off:${offset + size}`).toString('base64url') : '';
    return { offset, size, next };
  }

  private listVersions(req: EmuRequest): EmuResponse {
    const resource = `projects/${req.params.project}/secrets/${req.params.secret}`;
    const denied = this.denied403('secretmanager.versions.list', resource);
    if (denied) return denied;
    const s = this.findSecret(req, req.params.secret!);
    if ('status' in s) return s;
    let all = [...s.versions].reverse(); // newest first (ListSecretVersionsResponse.versions)
    const filter = req.query.get('filter');
    if (filter) {
      const f = /^state\s*[:=]\s*(ENABLED|DISABLED|DESTROYED)$/i.exec(filter.trim());
      if (!f) return googleError(400, 'INVALID_ARGUMENT', `gcp-secret-manager emulator: unsupported filter "${filter}" (only state:STATE)`);
      all = all.filter((v) => v.state === f[1]!.toUpperCase());
    }
    const window = this.pageOf(req, all.length);
    if ('status' in window) return window;
    const page = all.slice(window.offset, window.offset + window.size);
    const next = window.next;
    // proto3 JSON leaves out empty fields: no `versions` when there are none, no `nextPageToken` on the last page.
    // totalSize is "The total number of SecretVersions but 0 when the ListSecretsRequest.filter field
    // is set" (REST reference, ListSecretVersionsResponse): 0, so left out, under a filter.
    return {
      status: 200,
      body: {
        ...(page.length ? { versions: page.map((v) => this.versionJson(s, v, req)) } : {}),
        ...(next ? { nextPageToken: next } : {}),
        ...(all.length && !filter ? { totalSize: all.length } : {}),
      },
    };
  }

  /** `7`, `latest`, `7:access`, `latest:access` → the stored version, or the 404 the API gives. */
  private resolve(req: EmuRequest, s: StoredSecret, version: string): StoredVersion | EmuResponse {
    if (version === 'latest') {
      const v = s.versions.at(-1);
      if (v) return v;
      return googleError(404, 'NOT_FOUND', `Secret [${this.secretName(s)}] not found or has no versions.`);
    }
    const v = /^\d+$/.test(version) ? s.versions.find((x) => x.id === Number(version)) : undefined;
    if (v) return v;
    return googleError(404, 'NOT_FOUND', `Secret Version [${this.secretName(s)}/versions/${version}] not found.`);
  }

  private getVersion(req: EmuRequest): EmuResponse {
    const [version, verb] = req.params.version!.split(':') as [string, string | undefined];
    if (verb !== undefined && verb !== 'access') return googleError(404, 'NOT_FOUND', `gcp-secret-manager emulator: no route for GET ${req.path}`);
    const resource = `projects/${req.params.project}/secrets/${req.params.secret}/versions/${version}`;
    const denied = this.denied403(verb ? 'secretmanager.versions.access' : 'secretmanager.versions.get', resource);
    if (denied) return denied;
    const s = this.findSecret(req, req.params.secret!);
    if ('status' in s) return s;
    const v = this.resolve(req, s, version);
    if ('status' in v) return v;
    if (!verb) return { status: 200, body: this.versionJson(s, v, req) };
    if (v.state !== 'ENABLED' || !v.data) {
      return googleError(400, 'FAILED_PRECONDITION', `Secret Version [${this.secretName(s)}/versions/${v.id}] is in ${v.state} state.`);
    }
    let data = v.data;
    if (this.corruptAccess > 0) {
      this.corruptAccess--;
      data = Buffer.from(v.data);
      data[0] = data[0]! ^ 0x01;
    }
    return {
      status: 200,
      body: { name: `${this.secretName(s)}/versions/${v.id}`, payload: { data: data.toString('base64'), dataCrc32c: String(v.crc32c) } },
    };
  }

  private versionAction(req: EmuRequest): EmuResponse {
    const m = /^([^:]+):(disable|enable|destroy)$/.exec(req.params.version!);
    if (!m) return googleError(404, 'NOT_FOUND', `gcp-secret-manager emulator: no route for POST ${req.path}`);
    const [, version, verb] = m as unknown as [string, string, 'disable' | 'enable' | 'destroy'];
    const resource = `projects/${req.params.project}/secrets/${req.params.secret}/versions/${version}`;
    const denied = this.denied403(`secretmanager.versions.${verb}`, resource);
    if (denied) return denied;
    const s = this.findSecret(req, req.params.secret!);
    if ('status' in s) return s;
    const v = this.resolve(req, s, version);
    if ('status' in v) return v;
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;
    if (typeof body.etag === 'string' && body.etag !== '' && body.etag !== v.etag) {
      // "If an etag is provided and matches the current resource etag, the request succeeds;
      // otherwise, it fails with a FAILED_PRECONDITION error and an HTTP status code 400"
      // (https://cloud.google.com/secret-manager/docs/etags). The message wording is [UNCERTAIN]:
      // keyrot must not depend on it.
      return googleError(400, 'FAILED_PRECONDITION', `The etag provided in the request does not match the current etag of Secret Version [${this.secretName(s)}/versions/${v.id}].`);
    }
    if (v.state === 'DESTROYED' && verb !== 'destroy') {
      return googleError(400, 'FAILED_PRECONDITION', `Secret Version [${this.secretName(s)}/versions/${v.id}] is in DESTROYED state.`);
    }
    this.transition(v, verb === 'disable' ? 'DISABLED' : verb === 'enable' ? 'ENABLED' : 'DESTROYED');
    return { status: 200, body: this.versionJson(s, v, req) };
  }
}

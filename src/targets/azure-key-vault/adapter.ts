import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import * as tls from 'node:tls';
import { SecretClient, type KeyVaultSecret, type SecretProperties } from '@azure/keyvault-secrets';
import { TargetError, toTargetError } from '../../core/errors.ts';
import { retryAfterFromHeaders } from '../../runtime/retry.ts';
import { redirectRefused } from '../../runtime/http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, deadlineSignal, isAbortOrTimeout } from '../../runtime/deadline.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { waitTimeoutMs } from '../types.ts';
import { credentialOrDefault } from '../../inventory/credentials.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import type { CommonTargetConfig, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import { STATIC_TOKEN_ENV, type AzureKeyVaultConfig, type AzureKeyVaultReceipt } from './index.ts';
import { providerText } from '../../core/printable.ts';

/**
 * Azure Key Vault secrets through @azure/keyvault-secrets 4.11 and @azure/identity 4.13.
 * Wire facts: README "Provider facts" (challenge flow from
 * @azure/keyvault-common/dist/esm/keyVaultAuthenticationPolicy.js; error bodies from
 * keyvault-secrets/dist/esm/models/models.js keyVaultErrorDeserializer, which reads `innererror`).
 */

/**
 * STATIC_TOKEN_ENV: a static bearer token instead of DefaultAzureCredential, for emulators and tests
 * (and, if you must, a short-lived token from `az account get-access-token --resource
 * https://vault.azure.net`). The target's `token: env:VAR | file:PATH` does the same; this is its
 * default variable.
 */
export { STATIC_TOKEN_ENV };

export const TAGS = {
  /** The rotation that wrote this version (the idempotency token). */
  rotation: 'keyrot-rotation',
  /** Fingerprint (first 12 hex of SHA-256) of the value this version holds. */
  fingerprint: 'keyrot-fingerprint',
  /** The version that was current before this rotation's write, and its fingerprint: finalize uses them. */
  previousVersion: 'keyrot-previous-version',
  previousFingerprint: 'keyrot-previous-fingerprint',
  /** This version puts back the old value for the named rotation. */
  restore: 'keyrot-restore',
} as const;

/** Key Vault allows at most 15 tags per secret version. */
const MAX_TAGS = 15;

type KvOp = 'get' | 'set' | 'update' | 'list';

/** What the service checks for each call: RBAC data action, and the access-policy permission. */
const PERMISSION: Record<KvOp, { action: string; policy: string }> = {
  get: { action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action', policy: 'get' },
  set: { action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action', policy: 'set' },
  // The access-policy "set" permission grants both setSecret and update (accessPolicyRbacMapping).
  update: { action: 'Microsoft.KeyVault/vaults/secrets/update/action', policy: 'set' },
  list: { action: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action', policy: 'list' },
};

/**
 * Sovereign clouds sign tokens at their own authority. The scope always comes from the vault's 401
 * challenge (the SDK builds `resource + "/.default"`); the authority host is what
 * DefaultAzureCredential needs besides (AZURE_AUTHORITY_HOST, when set, wins). Hosts from
 * @azure/identity AzureAuthorityHosts.
 */
const AUTHORITY_BY_VAULT_SUFFIX: Array<[string, string]> = [
  ['.vault.azure.cn', 'https://login.chinacloudapi.cn'],
  ['.vault.usgovcloudapi.net', 'https://login.microsoftonline.us'],
];

type TokenCredential = ConstructorParameters<typeof SecretClient>[1];
type PipelinePolicy = NonNullable<NonNullable<ConstructorParameters<typeof SecretClient>[2]>['additionalPolicies']>[number]['policy'];

/** The shape of the errors the SDK pipeline throws (RestError), read defensively. */
interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  details?: { error?: { code?: string; message?: string; innerError?: { code?: string } } };
  response?: { headers?: { get(name: string): string | undefined } };
}

type Latest =
  | { kind: 'value'; secret: KeyVaultSecret; value: string }
  | { kind: 'empty'; secret: KeyVaultSecret }
  | { kind: 'disabled' }
  | { kind: 'absent' };

function isLoopbackLiteral(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** RFC 6761 §6.3: every `*.localhost` name is the loopback address, whatever the system resolver knows. */
const loopbackLookup = ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
  if (options?.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
}) as unknown as LookupFunction;

export function createAzureKeyVaultTarget(config: AzureKeyVaultConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<AzureKeyVaultReceipt> {
  // `endpoint` means the vault URL itself for this target (README: "`endpoint:` means the same here").
  const vaultUrl = (config.endpoint ?? config.vault).replace(/\/+$/, '');
  const url = URL.canParse(vaultUrl) ? new URL(vaultUrl) : undefined;
  if (!url || url.protocol !== 'https:') {
    throw new TargetError(`Azure Key Vault is https only: ${vaultUrl} is not an https URL`, { target: ctx.name, op: 'create', kind: 'invalid', retryable: false });
  }
  const host = url.host;
  const hostname = url.hostname;
  const secretName = config.secret;
  const where = `secret ${secretName} in vault ${host}`;
  const local = isLoopbackLiteral(hostname) || hostname.endsWith('.localhost');
  let usesStaticToken = false;
  let agent: HttpsAgent | undefined;
  let clientPromise: Promise<SecretClient> | undefined;
  const timeoutMs = waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
  /**
   * Every call's abort signal: the caller's, under this call's deadline. The pipeline's own
   * `timeout` stops at the response headers (nodeHttpClient.js clears it there); an abort also
   * ends a stalled body.
   */
  const within = (signal?: AbortSignal) => deadlineSignal(timeoutMs, signal);

  async function makeCredential(): Promise<TokenCredential> {
    if (config.token || ctx.env[STATIC_TOKEN_ENV]) {
      const ref = credentialOrDefault(config.token, [STATIC_TOKEN_ENV], ctx.env);
      const token = await ctx.resolve(ref);
      usesStaticToken = true;
      return {
        // The scope and tenant the vault's challenge asked for are ignored: the token is what it is.
        getToken: async () => ({ token: token.reveal(), expiresOnTimestamp: Date.now() + 3_600_000, tokenType: 'Bearer' as const }),
      };
    }
    const { DefaultAzureCredential } = await import('@azure/identity');
    const authorityHost =
      ctx.env.AZURE_AUTHORITY_HOST ?? process.env.AZURE_AUTHORITY_HOST ?? AUTHORITY_BY_VAULT_SUFFIX.find(([s]) => hostname.endsWith(s))?.[1];
    return new DefaultAzureCredential(authorityHost ? { authorityHost } : {});
  }

  function localAgent(): HttpsAgent {
    // Emulators only (loopback hosts): trust the CA named by NODE_EXTRA_CA_CERTS in the injected
    // environment too (Node reads the variable only at process start; `keyrot demo` sets it later),
    // and resolve *.localhost to 127.0.0.1. Real vaults never get a custom agent: the SDK's own
    // (proxy-aware) connection handling applies to them.
    const caFile = ctx.env.NODE_EXTRA_CA_CERTS;
    let ca: string[] | undefined;
    if (caFile) {
      try {
        const defaults = typeof tls.getCACertificates === 'function' ? tls.getCACertificates('default') : [...tls.rootCertificates];
        ca = [...defaults, readFileSync(caFile, 'utf8')];
      } catch (err) {
        throw new TargetError(`cannot read the CA certificate file NODE_EXTRA_CA_CERTS=${caFile} for vault ${host}`, {
          target: ctx.name,
          op: 'connect',
          kind: 'invalid',
          retryable: false,
          cause: err,
        });
      }
    }
    return new HttpsAgent({ keepAlive: true, ...(ca && { ca }), ...(hostname.endsWith('.localhost') && { lookup: loopbackLookup }) });
  }

  const refuseRedirects: PipelinePolicy = {
    name: 'keyrotRefuseRedirects',
    async sendRequest(request, next) {
      const res = await next(request);
      if (res.status < 300 || res.status >= 400) return res;
      throw redirectRefused({
        provider: 'Azure Key Vault',
        status: res.status,
        location: res.headers.get('location'),
        from: request.url,
        fix: 'set `vault:` (or `endpoint:`) to the vault’s own URL, https://<vault-name>.vault.azure.net',
      });
    },
  };

  function client(): Promise<SecretClient> {
    clientPromise ??= (async () => {
      const credential = await makeCredential();
      if (local) agent = localAgent();
      return new SecretClient(vaultUrl, credential, {
        // The engine retries (withRetry): one policy governs, so the SDK's own retries are off.
        retryOptions: { maxRetries: 0 },
        // Stays on for every real vault: the token's scope comes from the vault's challenge and the
        // SDK refuses a challenge whose resource is not a parent domain of the vault host. Only a
        // literal loopback address (an emulator such as lowkey-vault at https://localhost:8443) has
        // no parent domain to match; *.localhost vaults (keyrot's emulator) keep the check.
        disableChallengeResourceVerification: isLoopbackLiteral(hostname),
        userAgentOptions: { userAgentPrefix: 'keyrot' },
        // core-rest-pipeline's redirectPolicy follows a same-origin 300/301/302/307 (a 307 with the
        // PUT body, which holds the key) up to 20 times (@typespec/ts-http-runtime
        // policies/redirectPolicy.js): with maxRetries 0 it follows none, and refuseRedirects
        // turns the 3xx into an error naming the Location (the SDK's own error for an unexpected
        // 3xx is a TypeError from its deserializer, which says nothing).
        redirectOptions: { maxRetries: 0 },
        additionalPolicies: [{ policy: refuseRedirects, position: 'perRetry' }],
        ...(agent && { agent }),
      });
    })();
    clientPromise.catch(() => (clientPromise = undefined));
    return clientPromise;
  }

  // --- errors ---------------------------------------------------------------------------------

  function translate(err: unknown, op: string, kvOp: KvOp): TargetError {
    if (err instanceof TargetError) return err.target ? err : new TargetError(err.message, { ...err, target: ctx.name, op, kind: err.kind, cause: err.cause });
    const e = (err ?? {}) as SdkError;
    const init = { target: ctx.name, op, status: e.statusCode, cause: err };
    const svcCode = e.details?.error?.code ?? e.code;
    const inner = e.details?.error?.innerError?.code;
    const perm = PERMISSION[kvOp];

    // Credential failures happen inside the pipeline (getToken after the challenge).
    if (e.name && /^(CredentialUnavailableError|AggregateAuthenticationError|AuthenticationError|AuthenticationRequiredError)$/.test(e.name)) {
      return new TargetError(
        `no usable Azure credential for vault ${host} (${e.name}): DefaultAzureCredential tried environment variables ` +
          `(AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET or a certificate), workload identity, managed identity and the Azure CLI/azd/PowerShell sign-ins; ` +
          `sign in with "az login" or configure one of them for the identity keyrot runs as`,
        { ...init, kind: 'auth', retryable: false },
      );
    }
    if (/does not match the requested domain/.test(e.message ?? '')) {
      return new TargetError(
        `vault ${host} asked for a token for another resource than its own domain: keyrot does not send tokens there. ` +
          `Check the vault URL (use the vault's DNS name, e.g. https://<vault-name>.vault.azure.net/, not an IP address or a proxy)`,
        { ...init, kind: 'auth', retryable: false },
      );
    }
    const status = e.statusCode;
    if (isAbortOrTimeout(err)) {
      return new TargetError(`vault ${host} did not answer ${op} on ${secretName} within ${formatDuration(timeoutMs)}`, { ...init, kind: 'timeout', retryable: true });
    }
    if (status === 401) {
      const akv = /AKV\d+/.exec(e.details?.error?.message ?? '')?.[0];
      const fix = usesStaticToken
        ? `the static token (${config.token?.raw ?? `env:${STATIC_TOKEN_ENV}`}) is expired, invalid or not for this vault: get a new one`
        : `sign in again ("az login") or check that the identity belongs to the vault's tenant (AZURE_TENANT_ID) and cloud (AZURE_AUTHORITY_HOST)`;
      return new TargetError(`Azure Key Vault rejected the access token for vault ${host} (401${akv ? ` ${akv}` : ''}): ${fix}`, {
        ...init,
        kind: 'auth',
        retryable: false,
      });
    }
    if (status === 403) {
      if (inner === 'SecretDisabled') {
        return new TargetError(`the requested version of ${where} is disabled, so it cannot be read`, { ...init, kind: 'conflict', retryable: false });
      }
      if (inner === 'AccessDenied') {
        return new TargetError(
          `vault ${host} uses access policies and the identity keyrot runs as lacks the secrets "${perm.policy}" permission for ${secretName}: ` +
            `add Get, List and Set to its secret permissions in the vault's access policy`,
          { ...init, kind: 'permission', retryable: false },
        );
      }
      if (inner === 'ForbiddenByFirewall') {
        return new TargetError(`the firewall of vault ${host} refused this machine's address: allow it under the vault's Networking settings or run keyrot from an allowed network`, {
          ...init,
          kind: 'permission',
          retryable: false,
        });
      }
      return new TargetError(
        `Azure Key Vault denied ${perm.action} on ${where}: assign the "Key Vault Secrets Officer" role to the identity keyrot runs as, ` +
          `scoped to the secret (…/providers/Microsoft.KeyVault/vaults/${hostname.split('.')[0]}/secrets/${secretName}); on a vault that uses access policies, grant secret permissions Get, List and Set`,
        { ...init, kind: 'permission', retryable: false },
      );
    }
    if (status === 404) {
      return new TargetError(
        svcCode === 'SecretNotFound'
          ? `${where} does not exist (or the requested version does not): create the secret first; keyrot only adds versions to an existing secret`
          : `vault ${host} answered 404 (${svcCode ?? 'not found'}): check the vault URL`,
        { ...init, kind: 'not-found', retryable: false },
      );
    }
    if (status === 429) {
      const h = new Headers();
      const hs = e.response?.headers;
      const ra = hs?.get('retry-after');
      const ms = hs?.get('retry-after-ms') ?? hs?.get('x-ms-retry-after-ms');
      if (ra) h.set('retry-after', ra);
      if (ms) h.set('retry-after-ms', ms);
      return new TargetError(`Azure Key Vault throttled requests to vault ${host} (429 ${svcCode ?? 'Throttled'})`, {
        ...init,
        kind: 'rate-limited',
        retryable: true,
        retryAfterMs: retryAfterFromHeaders(h, ctx.clock.now()),
      });
    }
    if (status !== undefined && status >= 500) {
      return new TargetError(`Azure Key Vault is unavailable for vault ${host} (${status}${svcCode ? ` ${svcCode}` : ''}): try again later`, {
        ...init,
        kind: 'unavailable',
        retryable: true,
      });
    }
    if (status === 408) return new TargetError(`vault ${host} timed out (408)`, { ...init, kind: 'timeout', retryable: true });
    if (status === 400 || status === 409) {
      const msg = providerText((e.details?.error?.message ?? '').split(/\r?\n/)[0]!, 200);
      return new TargetError(`vault ${host} refused the request for ${secretName} (${status} ${svcCode ?? ''}${msg ? `: ${msg}` : ''})`, {
        ...init,
        kind: status === 409 ? 'conflict' : 'invalid',
        retryable: false,
      });
    }
    const code = e.code ?? '';
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
      return new TargetError(
        `the TLS certificate of vault ${host} is not trusted (${code}): put the CA that signed it (a corporate TLS proxy's, or an emulator's) in a PEM file named by NODE_EXTRA_CA_CERTS`,
        { ...init, kind: 'unavailable', retryable: false },
      );
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return new TargetError(`cannot resolve vault host ${hostname} (${code}): check the vault URL and DNS (private endpoints need the privatelink zone)`, {
        ...init,
        kind: 'unavailable',
        retryable: code === 'EAI_AGAIN',
      });
    }
    const t = toTargetError(err, ctx.name, op);
    // Never forward an unknown SDK message: it can quote request details.
    if (t.kind === 'invalid') {
      return new TargetError(`Azure Key Vault call failed for ${where}${status ? ` (HTTP ${status})` : e.code ? ` (${e.code})` : ''}`, {
        ...init,
        kind: 'invalid',
        retryable: false,
      });
    }
    return new TargetError(`${t.message} talking to vault ${host}`, { ...init, kind: t.kind, retryable: t.retryable });
  }

  async function call<T>(op: string, kvOp: KvOp, fn: (c: SecretClient) => Promise<T>): Promise<T> {
    try {
      return await fn(await client());
    } catch (err) {
      throw translate(err, op, kvOp);
    }
  }

  // --- primitives -----------------------------------------------------------------------------

  async function latest(op: string, signal?: AbortSignal): Promise<Latest> {
    try {
      const s = await (await client()).getSecret(secretName, { abortSignal: within(signal) });
      return s.value ? { kind: 'value', secret: s, value: s.value } : { kind: 'empty', secret: s };
    } catch (err) {
      const e = err as SdkError;
      if (e?.statusCode === 404 && (e.details?.error?.code ?? e.code) === 'SecretNotFound') return { kind: 'absent' };
      if (e?.statusCode === 403 && e.details?.error?.innerError?.code === 'SecretDisabled') return { kind: 'disabled' };
      throw translate(err, op, 'get');
    }
  }

  function getVersion(op: string, version: string, signal?: AbortSignal): Promise<KeyVaultSecret> {
    return call(op, 'get', (c) => c.getSecret(secretName, { version, abortSignal: within(signal) }));
  }

  async function allVersions(op: string, signal?: AbortSignal): Promise<SecretProperties[]> {
    return call(op, 'list', async (c) => {
      const out: SecretProperties[] = [];
      for await (const p of c.listPropertiesOfSecretVersions(secretName, { abortSignal: within(signal) })) out.push(p);
      return out;
    });
  }

  function userTags(s: KeyVaultSecret | undefined): Record<string, string> {
    return Object.fromEntries(Object.entries(s?.properties.tags ?? {}).filter(([k]) => !k.startsWith('keyrot-')));
  }

  /** Drops `optional` tags (in order) while over Key Vault's limit; fails when the user's own tags leave no room. */
  function withinTagLimit(tags: Record<string, string>, optional: string[], op: string): Record<string, string> {
    const out = { ...tags };
    for (const k of optional) if (Object.keys(out).length > MAX_TAGS) delete out[k];
    if (Object.keys(out).length > MAX_TAGS) {
      const own = Object.keys(out).filter((k) => !k.startsWith('keyrot-')).length;
      throw new TargetError(`${where} carries ${own} tags of its own: Key Vault allows ${MAX_TAGS} per version and keyrot needs 2; remove some`, {
        target: ctx.name,
        op,
        kind: 'invalid',
        retryable: false,
      });
    }
    return out;
  }

  async function setValue(op: string, value: string, tags: Record<string, string>, contentType: string | undefined, signal?: AbortSignal): Promise<KeyVaultSecret> {
    return call(op, 'set', (c) =>
      c.setSecret(secretName, value, { tags, enabled: true, abortSignal: within(signal), ...(contentType !== undefined && { contentType }) }),
    );
  }

  async function disable(op: string, version: string, signal?: AbortSignal): Promise<void> {
    await call(op, 'update', (c) => c.updateSecretProperties(secretName, version, { enabled: false, abortSignal: within(signal) }));
  }

  const short = (v: string) => v.slice(0, 8);

  // --- the Target -----------------------------------------------------------------------------

  async function read(signal?: AbortSignal): Promise<ReadResult> {
    const l = await latest('read', signal);
    if (l.kind === 'value') return { kind: 'value', value: new Secret(l.value) };
    if (l.kind === 'disabled') return { kind: 'unreadable', reason: `the current version of ${where} is disabled` };
    return { kind: 'absent' };
  }

  return {
    id: 'azure-key-vault',
    name: ctx.name,
    location: `${host}/secrets/${secretName}`,
    lockKey: `azure-key-vault:${host}/${secretName.toLowerCase()}`,

    async preflight(signal) {
      try {
        const l = await latest('preflight', signal);
        if (l.kind === 'absent') {
          return {
            status: 'blocked',
            reason: `${where} does not exist: create it first (keyrot adds versions to an existing secret, it never creates one)`,
            current: { kind: 'absent' },
          } satisfies PreflightResult;
        }
        const notes = [`writes a new version of ${secretName} tagged ${TAGS.rotation}; finalize disables the versions that hold the old key`];
        // Listing versions (readMetadata) is only needed by finalize: a missing grant is a note, not a blocker.
        try {
          await call('preflight', 'list', async (c) => {
            for await (const page of c.listPropertiesOfSecretVersions(secretName, { abortSignal: within(signal) }).byPage({ maxPageSize: 1 })) {
              void page;
              break;
            }
          });
        } catch (err) {
          const te = err as TargetError;
          if (te.kind !== 'permission') throw err;
          notes.push(`finalize will fail: ${te.message}`);
        }
        notes.push('the "set" permission cannot be checked without writing: a missing grant shows at write');
        if (l.kind === 'disabled') {
          notes.push(`the current version of ${secretName} is disabled (readers get 403 today); keyrot adds an enabled version`);
          return { status: 'ready', current: { kind: 'unreadable', reason: `the current version of ${where} is disabled` }, notes };
        }
        return { status: 'ready', current: l.kind === 'value' ? { kind: 'value', value: new Secret(l.value) } : { kind: 'absent' }, notes };
      } catch (err) {
        const te = err instanceof TargetError ? err : translate(err, 'preflight', 'get');
        // Transient (throttled, 5xx, timeout): not an answer; the engine retries it, bounded.
        if (te.retryable) throw te;
        return { status: 'blocked', reason: te.message, current: { kind: 'unreadable', reason: te.message } };
      }
    },

    read,

    async write(value, op): Promise<AzureKeyVaultReceipt> {
      const l = await latest('write', op.signal);
      if (l.kind === 'absent') {
        throw new TargetError(`${where} does not exist: create it first; keyrot only adds versions to an existing secret`, {
          target: ctx.name,
          op: 'write',
          kind: 'not-found',
          retryable: false,
        });
      }
      const cur = l.kind === 'value' || l.kind === 'empty' ? l.secret : undefined;
      const curTags = cur?.properties.tags ?? {};
      // Idempotent: this rotation's version is already the current one (a retry after a lost answer).
      if (l.kind === 'value' && l.value === value.reveal() && curTags[TAGS.rotation] === op.rotationId && curTags[TAGS.fingerprint] === op.fingerprint) {
        return {
          version: l.secret.properties.version!,
          previousVersion: curTags[TAGS.previousVersion] ?? null,
          previousFingerprint: curTags[TAGS.previousFingerprint] ?? null,
        } satisfies AzureKeyVaultReceipt;
      }
      // The vault already holds this exact key (set by hand or by an earlier run): a new version would change nothing.
      if (l.kind === 'value' && l.value === value.reveal()) {
        return { version: l.secret.properties.version!, previousVersion: null, previousFingerprint: null, unchanged: true } satisfies AzureKeyVaultReceipt;
      }
      const previousVersion = cur?.properties.version ?? null;
      const previousFingerprint = l.kind === 'value' ? fingerprint(l.value) : null;
      const tags = withinTagLimit(
        {
          ...userTags(cur),
          [TAGS.rotation]: op.rotationId,
          [TAGS.fingerprint]: op.fingerprint,
          ...(previousVersion && { [TAGS.previousVersion]: previousVersion }),
          ...(previousFingerprint && { [TAGS.previousFingerprint]: previousFingerprint }),
        },
        [TAGS.previousFingerprint, TAGS.previousVersion],
        'write',
      );
      // The contentType (and the user's own tags) carry over: only the value changes.
      const written = await setValue('write', value.reveal(), tags, cur?.properties.contentType, op.signal);
      ctx.logger.debug(`azure-key-vault: wrote version ${short(written.properties.version ?? '')} of ${secretName}`);
      return { version: written.properties.version!, previousVersion, previousFingerprint } satisfies AzureKeyVaultReceipt;
    },

    async verify(value, op, receipt): Promise<VerifyResult> {
      const version = receipt?.version;
      const mismatch = (what: string) =>
        new TargetError(`read-back mismatch: ${what}, not the new key (${value.fingerprint})`, { target: ctx.name, op: 'verify', kind: 'mismatch', retryable: false });
      if (version) {
        // Read THAT version: proves the write landed, whatever happened after it.
        let v: KeyVaultSecret;
        try {
          v = await getVersion('verify', version, op.signal);
        } catch (err) {
          const te = err as TargetError;
          if (te.kind === 'not-found' || te.kind === 'conflict') throw mismatch(`version ${short(version)} of ${where} cannot be read (${te.kind === 'conflict' ? 'disabled' : 'missing'})`);
          throw err;
        }
        if (v.value !== value.reveal()) throw mismatch(`version ${short(version)} of ${where} holds ${v.value ? `a different key (${fingerprint(v.value)})` : 'nothing'}`);
      }
      // Consumers read the current version: it must be this one (or hold the same key).
      const l = await latest('verify', op.signal);
      if (l.kind !== 'value') throw mismatch(`the current version of ${where} is ${l.kind === 'disabled' ? 'disabled' : 'missing'}`);
      if (l.value !== value.reveal()) {
        throw mismatch(
          version && l.secret.properties.version !== version
            ? `a newer version ${short(l.secret.properties.version ?? '')} of ${where} (not keyrot's) holds a different key (${fingerprint(l.value)})`
            : `${where} holds a different key (${fingerprint(l.value)})`,
        );
      }
      return { method: 'read-back', detail: `version ${short(l.secret.properties.version ?? '')} of ${secretName} holds the new key and is current` };
    },

    async restore(previous, op, receipt) {
      const l = await latest('restore', op.signal);
      if (l.kind === 'absent') {
        throw new TargetError(`${where} no longer exists: nothing to restore into (recover it from the vault's deleted secrets)`, {
          target: ctx.name,
          op: 'restore',
          kind: 'not-found',
          retryable: false,
        });
      }
      const cur = l.kind === 'value' || l.kind === 'empty' ? l.secret : undefined;
      const curTags = cur?.properties.tags ?? {};
      const ours = curTags[TAGS.rotation] === op.rotationId;
      // A versioned store: the exact old value comes from the vault's own previous version when known;
      // the value read at preflight is the fallback (e.g. no receipt and the current version is not ours).
      const prevVersion = receipt?.previousVersion || (ours ? curTags[TAGS.previousVersion] : undefined);
      let old: string | null = null;
      if (prevVersion) {
        try {
          old = (await getVersion('restore', prevVersion, op.signal)).value ?? null;
        } catch (err) {
          const te = err as TargetError;
          if (te.kind !== 'not-found' && te.kind !== 'conflict') throw err;
        }
      }
      old ??= previous ? previous.reveal() : null;

      if (old === null) {
        // There was no readable key before (the current version was disabled): undo by disabling the
        // versions this rotation added, which leaves the secret as it was.
        const versions = await allVersions('restore', op.signal);
        for (const p of versions) {
          if (p.enabled && p.version && p.tags?.[TAGS.rotation] === op.rotationId) await disable('restore', p.version, op.signal);
        }
        return;
      }
      if (l.kind === 'value' && l.value === old) return; // already the old key: idempotent
      if (l.kind === 'value' && !ours) {
        // Not ours, not the old key: someone else wrote after us. Writing over it would lose their change.
        throw new TargetError(
          `${where} was changed by someone else since keyrot's write (current version ${short(l.secret.properties.version ?? '')} holds ${fingerprint(l.value)}): not restoring over it; decide which key it should hold`,
          { target: ctx.name, op: 'restore', kind: 'conflict', retryable: false },
        );
      }
      // Key Vault cannot make an old version current again: the old value goes back as a new version.
      await setValue(
        'restore',
        old,
        withinTagLimit({ ...userTags(cur), [TAGS.restore]: op.rotationId, [TAGS.fingerprint]: fingerprint(old) }, [], 'restore'),
        cur?.properties.contentType,
        op.signal,
      );
    },

    async finalize(op, receipt) {
      const l = await latest('finalize', op.signal);
      const curTags = l.kind === 'value' || l.kind === 'empty' ? (l.secret.properties.tags ?? {}) : {};
      const currentVersion = l.kind === 'value' || l.kind === 'empty' ? l.secret.properties.version : undefined;
      const fromTags = curTags[TAGS.rotation] === op.rotationId;
      const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
      const ours = str(receipt?.version) ?? (fromTags ? currentVersion : undefined);
      const previousVersion = str(receipt?.previousVersion) ?? (fromTags ? curTags[TAGS.previousVersion] : undefined);
      const previousFingerprint = str(receipt?.previousFingerprint) ?? (fromTags ? curTags[TAGS.previousFingerprint] : undefined);
      if (!previousVersion && !previousFingerprint) return; // nothing known to hold the old key
      if (previousFingerprint === op.fingerprint) return; // the "old" key is the new one: nothing to disable
      if (l.kind === 'value' && previousFingerprint && fingerprint(l.value) === previousFingerprint) {
        throw new TargetError(`the current version of ${where} holds the old key: refusing to disable it (was the rotation restored?)`, {
          target: ctx.name,
          op: 'finalize',
          kind: 'conflict',
          retryable: false,
        });
      }
      // Disable every enabled version holding the revoked key, not only the one the write replaced:
      // the same old key can sit in several versions (a keyrot restore adds one, a hand re-save
      // another). After revocation each is a dead credential that a reader pinned to a version id
      // would still fetch; disabled, such a reader fails loudly (403) instead. Versions holding any
      // other value are not keyrot's to touch, and the current version is never disabled.
      let disabled = 0;
      for (const p of await allVersions('finalize', op.signal)) {
        const v = p.version;
        if (!v || !p.enabled || v === ours || v === currentVersion) continue;
        const tagFp = p.tags?.[TAGS.fingerprint];
        let holdsOld = v === previousVersion || (previousFingerprint !== undefined && tagFp === previousFingerprint);
        if (!holdsOld && previousFingerprint && tagFp === undefined) {
          const s = await getVersion('finalize', v, op.signal);
          holdsOld = s.value !== undefined && s.value !== '' && fingerprint(s.value) === previousFingerprint;
        }
        if (holdsOld) {
          await disable('finalize', v, op.signal);
          disabled++;
        }
      }
      ctx.logger.info(`azure-key-vault: disabled ${disabled} version(s) of ${secretName} holding the old key (${previousFingerprint ?? short(previousVersion ?? '')})`);
    },

    async close() {
      agent?.destroy();
      agent = undefined;
      clientPromise = undefined;
    },
  };
}

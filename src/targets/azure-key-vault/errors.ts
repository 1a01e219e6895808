import { TargetError, toTargetError, type TargetErrorKind } from '../../core/errors.ts';
import { providerText } from '../../core/printable.ts';
import { retryAfterFromHeaders } from '../../runtime/retry.ts';
import { isAbortOrTimeout } from '../../runtime/deadline.ts';
import type { Clock } from '../../runtime/clock.ts';
import { formatDuration } from '../../inventory/duration.ts';

/**
 * The errors the SDK pipeline throws (RestError, credential errors, socket errors), in words that
 * say what to do. Error bodies are `{"error":{"code","message","innererror"}}`; the SDK exposes
 * the inner code as `details.error.innerError` (README "Provider facts"). An unknown SDK message is
 * never forwarded: it can quote request details.
 */

export type KvOp = 'get' | 'set' | 'update' | 'list';

/** What the service checks for each call: RBAC data action, and the access-policy permission. */
const PERMISSION: Record<KvOp, { action: string; policy: string }> = {
  get: { action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action', policy: 'get' },
  set: { action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action', policy: 'set' },
  // The access-policy "set" permission grants both setSecret and update (accessPolicyRbacMapping).
  update: { action: 'Microsoft.KeyVault/vaults/secrets/update/action', policy: 'set' },
  list: { action: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action', policy: 'list' },
};

/** The shape of the errors the SDK pipeline throws (RestError), read defensively. */
export interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  details?: { error?: { code?: string; message?: string; innerError?: { code?: string } } };
  response?: { headers?: { get(name: string): string | undefined } };
}

/** The vault and secret an error is about, for its message. */
export interface VaultFacts {
  target: string;
  host: string;
  hostname: string;
  secretName: string;
  /** `secret NAME in vault HOST`. */
  where: string;
  timeoutMs: number;
  clock: Clock;
  /** Where the static token comes from, when one is used (else DefaultAzureCredential). */
  staticToken: () => string | undefined;
}

type Init = { target: string; op: string; status: number | undefined; cause: unknown };
type Made = { message: string; kind: TargetErrorKind; retryable: boolean; retryAfterMs?: number };
const fixed = (kind: TargetErrorKind, retryable: boolean) => (message: string): Made => ({ message, kind, retryable });
const auth = fixed('auth', false);
const permission = fixed('permission', false);

const CREDENTIAL_ERRORS = /^(CredentialUnavailableError|AggregateAuthenticationError|AuthenticationError|AuthenticationRequiredError)$/;

export function translateVaultError(err: unknown, op: string, kvOp: KvOp, f: VaultFacts): TargetError {
  if (err instanceof TargetError) return err.target ? err : new TargetError(err.message, { ...err, target: f.target, op, kind: err.kind, cause: err.cause });
  const e = (err ?? {}) as SdkError;
  const init: Init = { target: f.target, op, status: e.statusCode, cause: err };
  const made = credentialProblem(e, f) ?? timedOut(err, op, f) ?? statusProblem(e, kvOp, f) ?? networkProblem(e, f);
  if (made) return new TargetError(made.message, { ...init, kind: made.kind, retryable: made.retryable, ...(made.retryAfterMs !== undefined && { retryAfterMs: made.retryAfterMs }) });
  const t = toTargetError(err, f.target, op);
  const status = e.statusCode;
  if (t.kind === 'invalid') {
    const said = status ? ` (HTTP ${status})` : e.code ? ` (${e.code})` : '';
    return new TargetError(`Azure Key Vault call failed for ${f.where}${said}`, { ...init, kind: 'invalid', retryable: false });
  }
  return new TargetError(`${t.message} talking to vault ${f.host}`, { ...init, kind: t.kind, retryable: t.retryable });
}

/** Credential failures happen inside the pipeline (getToken after the challenge). */
function credentialProblem(e: SdkError, f: VaultFacts): Made | undefined {
  if (e.name && CREDENTIAL_ERRORS.test(e.name)) {
    return auth(
      `no usable Azure credential for vault ${f.host} (${e.name}): DefaultAzureCredential tried environment variables ` +
        `(AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET or a certificate), workload identity, managed identity and the Azure CLI/azd/PowerShell sign-ins; ` +
        `sign in with "az login" or configure one of them for the identity keyrot runs as`,
    );
  }
  if (/does not match the requested domain/.test(e.message ?? '')) {
    return auth(
      `vault ${f.host} asked for a token for another resource than its own domain: keyrot does not send tokens there. ` +
        `Check the vault URL (use the vault's DNS name, e.g. https://<vault-name>.vault.azure.net/, not an IP address or a proxy)`,
    );
  }
  return undefined;
}

function timedOut(err: unknown, op: string, f: VaultFacts): Made | undefined {
  if (!isAbortOrTimeout(err)) return undefined;
  return { message: `vault ${f.host} did not answer ${op} on ${f.secretName} within ${formatDuration(f.timeoutMs)}`, kind: 'timeout', retryable: true };
}

/** An answer with an HTTP status. */
function statusProblem(e: SdkError, kvOp: KvOp, f: VaultFacts): Made | undefined {
  const status = e.statusCode;
  const svcCode = e.details?.error?.code ?? e.code;
  if (status === 401) return unauthorized(e, f);
  if (status === 403) return forbidden(e.details?.error?.innerError?.code, kvOp, f);
  if (status === 404) {
    return {
      message:
        svcCode === 'SecretNotFound'
          ? `${f.where} does not exist (or the requested version does not): create the secret first; keyrot only adds versions to an existing secret`
          : `vault ${f.host} answered 404 (${svcCode ?? 'not found'}): check the vault URL`,
      kind: 'not-found',
      retryable: false,
    };
  }
  if (status === 429) return throttled(e, svcCode, f);
  if (status !== undefined && status >= 500) {
    return { message: `Azure Key Vault is unavailable for vault ${f.host} (${status}${svcCode ? ` ${svcCode}` : ''}): try again later`, kind: 'unavailable', retryable: true };
  }
  if (status === 408) return { message: `vault ${f.host} timed out (408)`, kind: 'timeout', retryable: true };
  if (status === 400 || status === 409) {
    const msg = providerText((e.details?.error?.message ?? '').split(/\r?\n/)[0]!, 200);
    return {
      message: `vault ${f.host} refused the request for ${f.secretName} (${status} ${svcCode ?? ''}${msg ? `: ${msg}` : ''})`,
      kind: status === 409 ? 'conflict' : 'invalid',
      retryable: false,
    };
  }
  return undefined;
}

function unauthorized(e: SdkError, f: VaultFacts): Made {
  const akv = /AKV\d+/.exec(e.details?.error?.message ?? '')?.[0];
  const token = f.staticToken();
  const fix = token
    ? `the static token (${token}) is expired, invalid or not for this vault: get a new one`
    : `sign in again ("az login") or check that the identity belongs to the vault's tenant (AZURE_TENANT_ID) and cloud (AZURE_AUTHORITY_HOST)`;
  return auth(`Azure Key Vault rejected the access token for vault ${f.host} (401${akv ? ` ${akv}` : ''}): ${fix}`);
}

/** A 403, by the service's inner error code. */
function forbidden(inner: string | undefined, kvOp: KvOp, f: VaultFacts): Made {
  const perm = PERMISSION[kvOp];
  if (inner === 'SecretDisabled') return { message: `the requested version of ${f.where} is disabled, so it cannot be read`, kind: 'conflict', retryable: false };
  if (inner === 'AccessDenied') {
    return permission(
      `vault ${f.host} uses access policies and the identity keyrot runs as lacks the secrets "${perm.policy}" permission for ${f.secretName}: ` +
        `add Get, List and Set to its secret permissions in the vault's access policy`,
    );
  }
  if (inner === 'ForbiddenByFirewall') {
    return permission(`the firewall of vault ${f.host} refused this machine's address: allow it under the vault's Networking settings or run keyrot from an allowed network`);
  }
  return permission(
    `Azure Key Vault denied ${perm.action} on ${f.where}: assign the "Key Vault Secrets Officer" role to the identity keyrot runs as, ` +
      `scoped to the secret (…/providers/Microsoft.KeyVault/vaults/${f.hostname.split('.')[0]}/secrets/${f.secretName}); on a vault that uses access policies, grant secret permissions Get, List and Set`,
  );
}

/** A 429 may come without Retry-After: the engine's backoff applies then. */
function throttled(e: SdkError, svcCode: string | undefined, f: VaultFacts): Made {
  const h = new Headers();
  const hs = e.response?.headers;
  const ra = hs?.get('retry-after');
  const ms = hs?.get('retry-after-ms') ?? hs?.get('x-ms-retry-after-ms');
  if (ra) h.set('retry-after', ra);
  if (ms) h.set('retry-after-ms', ms);
  return {
    message: `Azure Key Vault throttled requests to vault ${f.host} (429 ${svcCode ?? 'Throttled'})`,
    kind: 'rate-limited',
    retryable: true,
    retryAfterMs: retryAfterFromHeaders(h, f.clock.now()),
  };
}

/** No answer: TLS trust or DNS. */
function networkProblem(e: SdkError, f: VaultFacts): Made | undefined {
  const code = e.code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
    return {
      message: `the TLS certificate of vault ${f.host} is not trusted (${code}): put the CA that signed it (a corporate TLS proxy's, or an emulator's) in a PEM file named by NODE_EXTRA_CA_CERTS`,
      kind: 'unavailable',
      retryable: false,
    };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return {
      message: `cannot resolve vault host ${f.hostname} (${code}): check the vault URL and DNS (private endpoints need the privatelink zone)`,
      kind: 'unavailable',
      retryable: code === 'EAI_AGAIN',
    };
  }
  return undefined;
}

import { TargetError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import type { Clock } from '../../runtime/clock.ts';
import { HttpError, type ErrorShape } from '../../runtime/http.ts';
import { createProviderHttp, type ProviderFailure } from '../../runtime/provider-http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { credentialOrDefault, type CredentialRef } from '../../inventory/credentials.ts';
import { laneOf, lazyCredential } from '../common.ts';
import type { Lane } from '../../runtime/pacer.ts';
import { waitTimeoutMs, type TargetContext } from '../types.ts';
import { endpointProblem, environmentEndpointProblem } from '../../inventory/endpoints.ts';
import { VAULT_TOKEN_ENV, vault } from './index.ts';

/**
 * Vault's HTTP API for KV version 2, spoken directly (HashiCorp publishes no official Node
 * client): `X-Vault-Token`, `X-Vault-Namespace`, paths under `/v1/`, errors as `{"errors": [...]}`.
 * Facts relied on (the vault README cites each):
 * - `GET <mount>/data/<path>[?version=N]` → `data.data` and `data.metadata.version`; a missing
 *   secret is 404 `{"errors":[]}`, a deleted or destroyed version 404 with its metadata;
 * - `POST <mount>/data/<path>` `{data, options: {cas: N}}` writes version N+1 only while N is the
 *   current version (cas 0: only if the secret does not exist), else 400 "check-and-set parameter
 *   did not match the current version" (vault-plugin-secrets-kv path_data.go);
 * - `GET <mount>/metadata/<prefix>?list=true` lists keys, folders ending in `/` (path_metadata.go);
 * - `GET sys/internal/ui/mounts/<path>` names the mount serving a path and its KV version (the
 *   vault CLI's kvPreflightVersionRequest);
 * - 403 "permission denied" (also "invalid token" for a bad token), 503 when sealed, 429 from rate
 *   limit quotas with Retry-After; a standby node may redirect (307) to the active one.
 */

export interface VaultAt {
  address: string;
  namespace: string | undefined;
  /** Where the token comes from, for messages (`VAULT_TOKEN`, `file:...`). */
  tokenName: string;
  token: (op: string) => Promise<Secret>;
  clock: Clock;
  timeoutMs: number;
  target?: string;
  /** The cluster's pacing lane (address and namespace): every request waits on it and tells it the answer. */
  lane: Lane;
  rateLimitKey: string;
}

export interface KvRead {
  /** The version read (or the current one, when the latest is deleted); null when the secret does not exist. */
  version: number | null;
  /** The version's data; null when the secret does not exist or the version is deleted/destroyed. */
  data: Record<string, unknown> | null;
}

const CAS_MISMATCH = 'check-and-set parameter did not match the current version';

/** Vault's errors are strings; a multi-error is "N errors occurred:\n\t* ...". */
const vaultErrorShape: ErrorShape = (body) => {
  const errors = (body as { errors?: unknown })?.errors;
  if (!Array.isArray(errors)) return {};
  const messages = errors
    .filter((e): e is string => typeof e === 'string')
    .map((e) => e.replace(/^\d+ errors? occurred:\s*/, '').replace(/\s*\*\s+/g, '; ').replace(/^;\s*/, '').trim());
  return { message: messages.filter(Boolean).join('; ') || undefined };
};

export const segments = (p: string) => p.split('/').map(encodeURIComponent).join('/');

export function vaultHttp(at: VaultAt) {
  const where = at.namespace ? `${at.address} (namespace ${at.namespace})` : at.address;

  function describe(f: ProviderFailure<string>) {
    const what = f.about ?? 'this path';
    const said = f.message ? ` (Vault said: ${f.message})` : '';
    if (f.status === 403 && /invalid token/.test(f.message)) {
      return { message: `Vault at ${where} rejected the token from ${at.tokenName}: it is invalid or expired; log in again (vault login) and set ${at.tokenName}`, kind: 'auth' as const };
    }
    if (f.status === 403 && f.message.includes('preflight capability check')) {
      return `Vault refused to name the mount serving ${what.replace(/^sys\/internal\/ui\/mounts\//, '')}: no such mount exists, or the token has no capability under it; check mount: in targets.yaml (vault secrets list) and the token's policies${said}`;
    }
    if (f.status === 403) return `Vault denied access to ${what}: the token's policies need the capabilities the vault target README lists for it${said}`;
    if (f.status === 400 && f.message.includes(CAS_MISMATCH)) {
      return { message: `${what} changed between keyrot's read and its check-and-set write; reading it again`, kind: 'conflict' as const, retryable: true };
    }
    if (f.status === 503) return { message: `Vault at ${where} is sealed or in maintenance: unseal it (vault operator unseal), then retry${said}`, retryable: true };
    if (f.status === 412) return { message: `Vault at ${where} is not consistent yet for ${what} (412); retrying`, kind: 'conflict' as const, retryable: true };
    if (f.status === 429) return `Vault's rate limit quota refused a request on ${what}; retrying after it resets`;
    if (f.status === 404) return `Vault has nothing at ${what}${said}`;
    return `Vault answered ${f.status} for ${what}${said}`;
  }

  const http = createProviderHttp<string>({
    provider: 'Vault',
    baseUrl: `${at.address.replace(/\/+$/, '')}/v1`,
    target: at.target,
    clock: at.clock,
    timeoutMs: at.timeoutMs,
    headers: { 'user-agent': 'keyrot', ...(at.namespace ? { 'x-vault-namespace': at.namespace } : {}) },
    auth: async (op) => ({ 'x-vault-token': (await at.token(op)).reveal() }),
    errorShape: vaultErrorShape,
    endpointHint: 'set `address:` (or VAULT_ADDR) to the active node or to the load balancer in front of the cluster: a standby node redirects to the active one',
    describe,
    lane: at.lane,
  });

  return {
    async read(mount: string, path: string, op: string, o: { version?: number; signal?: AbortSignal } = {}): Promise<KvRead> {
      const about = `${mount}/data/${path}`;
      try {
        const res = await http.json<{ data?: { data?: Record<string, unknown> | null; metadata?: { version?: number } } }>({
          op,
          path: `/${segments(mount)}/data/${segments(path)}`,
          query: o.version ? { version: String(o.version) } : undefined,
          signal: o.signal,
          about,
        });
        return { version: res.body.data?.metadata?.version ?? null, data: res.body.data?.data ?? null };
      } catch (err) {
        if (!(err instanceof TargetError) || err.status !== 404) throw err;
        // A deleted or destroyed version answers 404 with its metadata: the secret exists.
        const body = err.cause instanceof HttpError ? (err.cause.body as { data?: { metadata?: { version?: number } } }) : undefined;
        return { version: body?.data?.metadata?.version ?? null, data: null };
      }
    },

    /** Writes version cas+1 (cas 0: creates); returns the new version. */
    async write(mount: string, path: string, data: Record<string, unknown>, cas: number, op: string, signal?: AbortSignal): Promise<number> {
      const res = await http.json<{ data?: { version?: number } }>({
        op,
        method: 'POST',
        path: `/${segments(mount)}/data/${segments(path)}`,
        body: { options: { cas }, data },
        signal,
        about: `${mount}/data/${path}`,
      });
      const version = res.body.data?.version;
      if (typeof version !== 'number') throw new TargetError(`Vault answered the write of ${mount}/${path} without its version`, { target: at.target, op, kind: 'unavailable', retryable: true });
      return version;
    },

    /** The keys under `prefix` (folders end with `/`); [] when there are none. */
    async list(mount: string, prefix: string, op: string, signal?: AbortSignal): Promise<string[]> {
      try {
        const res = await http.json<{ data?: { keys?: unknown } }>({ op, path: `/${segments(mount)}/metadata/${prefix ? segments(prefix) : ''}`, query: { list: 'true' }, signal, about: `${mount}/metadata/${prefix}` });
        const keys = res.body.data?.keys;
        return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [];
      } catch (err) {
        if (err instanceof TargetError && err.status === 404) return [];
        throw err;
      }
    },

    /** The mount serving `mount/path`: its path, type and KV version. */
    async mountInfo(mount: string, path: string, op: string, signal?: AbortSignal): Promise<{ path?: string; type?: string; version?: string }> {
      const res = await http.json<{ data?: { path?: string; type?: string; options?: { version?: string } | null } }>({
        op,
        path: `/sys/internal/ui/mounts/${segments(mount)}/${segments(path)}`,
        signal,
        about: `sys/internal/ui/mounts/${mount}/${path}`,
      });
      const d = res.body.data ?? {};
      return { path: d.path, type: d.type, version: d.options?.version ?? undefined };
    },
  };
}

export type VaultHttp = ReturnType<typeof vaultHttp>;

/**
 * Where and as whom: `address:` (or `endpoint:`, or VAULT_ADDR), `namespace:` (or
 * VAULT_NAMESPACE), `token:` (or VAULT_TOKEN) — the variables the vault CLI reads. Returns the
 * reason when there is no usable address.
 */
export function vaultAtFrom(
  config: { address?: string; namespace?: string; endpoint?: string; token?: CredentialRef; requestTimeout?: string | number },
  ctx: Pick<TargetContext, 'env' | 'resolve' | 'clock' | 'lane'> & { name: string },
): VaultAt | { problem: string } {
  const address = config.address ?? config.endpoint ?? ctx.env.VAULT_ADDR;
  if (!address) return { problem: 'no Vault address: set address: in targets.yaml or VAULT_ADDR' };
  const fromYaml = Boolean(config.address || config.endpoint);
  const problem = fromYaml ? endpointProblem(address) : environmentEndpointProblem('VAULT_ADDR', address);
  if (problem) return { problem };
  const ref = credentialOrDefault(config.token, VAULT_TOKEN_ENV, ctx.env);
  const tokenName = ref.kind === 'env' ? ref.name : ref.raw;
  const namespace = config.namespace ?? (ctx.env.VAULT_NAMESPACE || undefined);
  // Rate limit quotas are set by the operator on the cluster, a namespace or a mount (Vault docs,
  // resource quotas): one lane per address and namespace, shared by its targets and by discover.
  const rateLimitKey = `vault:${address}:${namespace ?? ''}`;
  return {
    address,
    namespace,
    rateLimitKey,
    lane: laneOf(ctx, rateLimitKey, vault),
    tokenName,
    token: lazyCredential(ctx, ref, (m) => `Vault token: ${m} (vault login, then export VAULT_TOKEN; or token: file:PATH)`),
    clock: ctx.clock,
    timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    target: ctx.name,
  };
}

import { Secret } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { asDiscoverAuth, matchesVarName } from '../common.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { vaultAtFrom, vaultHttp, type VaultHttp } from './client.ts';

/** Bounds of one mount's walk: secrets read, folder depth. */
export const MAX_SECRETS = 500;
export const MAX_DEPTH = 10;

interface Where {
  address?: string;
  namespace?: string;
  mount: string;
  endpoint?: string;
  token?: DiscoverContext['configs'][number]['token'];
  requestTimeout?: string | number;
}

/**
 * `keyrot discover`: LIST the mount recursively (`<mount>/metadata/<prefix>?list=true`), read the
 * latest version of each secret, and report every field named like one of the variables. The
 * mounts are those of the inventory's vault targets (else `secret` at VAULT_ADDR); bounded to
 * MAX_SECRETS secrets and MAX_DEPTH folder levels per mount. Read-only.
 */
export async function discoverVault(ctx: DiscoverContext): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  const scopes: string[] = [];
  let count = 0;
  for (const w of wheresOf(ctx)) {
    const at = vaultAtFrom(w, { ...ctx, name: 'discover' });
    if ('problem' in at) throw new TargetError(at.problem, { op: 'discover', kind: 'auth', retryable: false });
    const found = await walk(vaultHttp(at), w.mount, ctx).catch(asDiscoverAuth);
    count += found.secrets;
    scopes.push(`${found.secrets} secrets of ${w.namespace ? `${w.namespace}/` : ''}${w.mount}/ at ${at.address}${found.truncated ? ' (bounded: not every secret was read)' : ''}`);
    for (const p of found.places) {
      const target = { type: 'vault', ...(w.address ? { address: w.address } : {}), mount: w.mount, path: p.path, field: p.field, ...(w.namespace ? { namespace: w.namespace } : {}) };
      places.push({ location: `${w.namespace ? `${w.namespace}/` : ''}${w.mount}/${p.path}[${p.field}]`, target, holds: { kind: 'value', value: new Secret(p.value) } });
    }
  }
  return { scope: scopes.join('; '), count, places };
}

function wheresOf(ctx: DiscoverContext): Where[] {
  const configs = ctx.configs.length ? ctx.configs : [{}];
  const seen = new Map<string, Where>();
  for (const c of configs) {
    const w: Where = {
      address: typeof c.address === 'string' ? c.address : undefined,
      namespace: typeof c.namespace === 'string' ? c.namespace : undefined,
      mount: typeof c.mount === 'string' ? c.mount : 'secret',
      endpoint: c.endpoint,
      token: c.token,
      requestTimeout: c.requestTimeout,
    };
    seen.set(`${w.address ?? w.endpoint ?? ''}|${w.namespace ?? ''}|${w.mount}`, w);
  }
  return [...seen.values()];
}

async function walk(http: VaultHttp, mount: string, ctx: DiscoverContext) {
  const places: Array<{ path: string; field: string; value: string }> = [];
  const queue: Array<{ prefix: string; depth: number }> = [{ prefix: '', depth: 0 }];
  let secrets = 0;
  let truncated = false;
  while (queue.length) {
    const { prefix, depth } = queue.shift()!;
    for (const key of await http.list(mount, prefix, 'discover', ctx.signal)) {
      const path = `${prefix}${key}`;
      if (key.endsWith('/')) {
        if (depth + 1 < MAX_DEPTH) queue.push({ prefix: path, depth: depth + 1 });
        else truncated = true;
        continue;
      }
      if (secrets >= MAX_SECRETS) return { places, secrets, truncated: true };
      secrets++;
      const latest = await http.read(mount, path, 'discover', { signal: ctx.signal });
      for (const [field, value] of Object.entries(latest.data ?? {})) {
        if (typeof value === 'string' && value && matchesVarName(field, ctx.varNames)) places.push({ path, field, value });
      }
    }
  }
  return { places, secrets, truncated };
}

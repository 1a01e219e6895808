import { TargetError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { asDiscoverAuth, matchesVarName } from '../common.ts';
import { paced } from '../discovery.ts';
import { waitTimeoutMs, type DiscoverContext, type DiscoverResult, type DiscoveredPlace } from '../types.ts';
import { notAManager } from './adapter.ts';
import { LABELS, Swarm, refsOf, type SecretObject, type ServiceObject } from './swarm.ts';

/** At most this many secrets per Engine are looked at (the Engine's list has no pages). */
export const MAX_SECRETS = 5000;

interface Host {
  /** `endpoint:` as targets.yaml writes it (kept in the entries), else DOCKER_HOST / the default socket. */
  endpoint: string | undefined;
  requestTimeout: string | number | undefined;
}

/**
 * `keyrot discover` for Swarm secrets, whose values the Engine never returns: a secret keyrot
 * created carries the key's fingerprint in its `keyrot.fingerprint` label, so it is a place whose
 * `matches(value)` compares that label; a secret without the label whose name (less a `_<n>`
 * version) is named like a variable is a place whose value cannot be read. The entry names the
 * family (`secret:` without `_<n>`) and the services that mount the secret. Read-only: GET /info,
 * /secrets and /services on each Engine the inventory's docker-secret targets use (else DOCKER_HOST).
 */
export async function discoverDockerSecrets(ctx: DiscoverContext): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  const scopes: string[] = [];
  let count = 0;
  for (const host of hostsOf(ctx)) {
    const swarm = new Swarm('-', host.endpoint ?? ctx.env.DOCKER_HOST, waitTimeoutMs(host.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS), { ...ctx, name: 'discover' });
    try {
      const { secrets, services, truncated } = await listSwarm(ctx, swarm);
      count += secrets.length;
      for (const s of secrets) places.push(...placeOf(s, services, host, ctx.varNames));
      scopes.push(`${secrets.length} swarm secrets at ${swarm.eng().host.display}${truncated ? ` (first ${MAX_SECRETS} only)` : ''}`);
    } finally {
      swarm.close();
    }
  }
  return { scope: scopes.join('; '), count, places };
}

function hostsOf(ctx: DiscoverContext): Host[] {
  const seen = new Map<string, Host>();
  for (const c of ctx.configs.length ? ctx.configs : [{}]) {
    if (!seen.has(c.endpoint ?? '')) seen.set(c.endpoint ?? '', { endpoint: c.endpoint, requestTimeout: c.requestTimeout });
  }
  return [...seen.values()];
}

async function listSwarm(ctx: DiscoverContext, swarm: Swarm): Promise<{ secrets: SecretObject[]; services: ServiceObject[]; truncated: boolean }> {
  const info = await paced(ctx, () => swarm.info(ctx.signal)).catch(asDiscoverAuth);
  const blocked = notAManager(info.Swarm ?? {}, swarm.eng().host.display);
  if (blocked) throw new TargetError(blocked, { op: 'discover', kind: 'unavailable', retryable: false });
  const all = (await paced(ctx, () => swarm.eng().call<SecretObject[] | null>('GET', '/secrets', undefined, ctx.signal)).catch(asDiscoverAuth)) ?? [];
  const services = await paced(ctx, () => swarm.allServices(ctx.signal)).catch(asDiscoverAuth);
  return { secrets: all.slice(0, MAX_SECRETS), services, truncated: all.length > MAX_SECRETS };
}

/** `openai_api_key_3` → `openai_api_key`: keyrot's versions of a family are `<base>_<n>`, n ≥ 2. */
function familyBase(name: string): string {
  const m = /^(.+)_([1-9]\d{0,8})$/.exec(name);
  return m && Number(m[2]) >= 2 ? m[1]! : name;
}

function placeOf(s: SecretObject, services: ServiceObject[], host: Host, varNames: string[]): DiscoveredPlace[] {
  const labels = s.Spec.Labels ?? {};
  const label = labels[LABELS.fingerprint];
  const base = familyBase(s.Spec.Name);
  if (!label && !matchesVarName(base, varNames)) return [];
  const mounting = services.filter((svc) => refsOf(svc.Spec).some((r) => r.SecretID === s.ID)).map((svc) => svc.Spec.Name);
  const target = { type: 'docker-secret', secret: base, services: mounting, ...(host.endpoint ? { endpoint: host.endpoint } : {}) };
  const location = `swarm secret ${s.Spec.Name}${mounting.length ? ` (${mounting.join(', ')})` : ''}`;
  const notRotatable = mounting.length ? undefined : 'no service mounts it: the docker-secret target rotates the secret its services mount; remove it (docker secret rm) once nothing needs it';
  if (!label) {
    const reason = `the Docker Engine never returns secret data and ${s.Spec.Name} has no keyrot.fingerprint label (keyrot did not create it): not compared`;
    return [{ location, target, holds: { kind: 'unreadable', reason }, ...(notRotatable ? { notRotatable } : {}) }];
  }
  const reason = `compared by its keyrot.fingerprint label (the Docker Engine never returns secret data)`;
  return [{ location, target, holds: { kind: 'unreadable', reason }, matches: (value: Secret) => value.fingerprint === label, ...(notRotatable ? { notRotatable } : {}) }];
}

import { credentialOrDefault, type CredentialRef } from '../inventory/credentials.ts';
import { withRetry } from '../runtime/retry.ts';
import { asDiscoverAuth } from './common.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace } from './types.ts';

/**
 * What `discover(ctx)` of the HTTP targets shares: which credentials and endpoints to search
 * with, the pace of the calls, and the shape of the targets.yaml entry a found place gets.
 */

/** One way to reach a provider: an endpoint (undefined: the public API) and a credential. */
export interface DiscoveryAccess {
  endpoint: string | undefined;
  token: CredentialRef;
  /** The inventory's own `token:` (kept in the entry); undefined when the ecosystem default is used. */
  given: CredentialRef | undefined;
}

/**
 * The distinct (endpoint, credential) pairs of the inventory's targets of this type, or the
 * ecosystem default credential against the public API when there are none.
 */
export function discoveryAccess(ctx: DiscoverContext, defaults: readonly string[]): DiscoveryAccess[];
/** `extra`: what else of a target's config decides where its provider lists (Vercel's team): kept, and part of what makes two accesses distinct. */
export function discoveryAccess<X extends object>(ctx: DiscoverContext, defaults: readonly string[], extra: (c: DiscoverContext['configs'][number]) => X): Array<DiscoveryAccess & X>;
export function discoveryAccess(ctx: DiscoverContext, defaults: readonly string[], extra: (c: DiscoverContext['configs'][number]) => object = () => ({})): DiscoveryAccess[] {
  const seen = new Map<string, DiscoveryAccess>();
  const configs = ctx.configs.length ? ctx.configs : [{}];
  for (const c of configs) {
    const token = credentialOrDefault(c.token, defaults, ctx.env);
    const more = extra(c);
    const key = `${c.endpoint ?? ''}\u0000${token.raw}\u0000${JSON.stringify(more)}`;
    if (!seen.has(key)) seen.set(key, { endpoint: c.endpoint, token, given: c.token, ...more });
  }
  return [...seen.values()];
}

/**
 * One search per access, their places, scopes and counts (the objects searched: apps, projects,
 * sites) together. Refused credentials or permissions end the provider's search as an `auth`
 * error, so `keyrot discover` reports it skipped with the reason.
 */
export async function searchEach<A>(accesses: A[], search: (access: A) => Promise<DiscoverResult>): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  const scopes: string[] = [];
  let count = 0;
  for (const access of accesses) {
    const found = await search(access).catch(asDiscoverAuth);
    places.push(...found.places);
    scopes.push(found.scope);
    count += found.count;
  }
  return { scope: scopes.join('; '), count, places };
}

/** A discovery call paced like a rotation's: 429, 5xx and timeouts are retried, bounded. */
export function paced<T>(ctx: DiscoverContext, fn: () => Promise<T>): Promise<T> {
  return withRetry(() => fn(), { clock: ctx.clock, signal: ctx.signal });
}

/**
 * The targets.yaml entry that would rotate a found place: its type and own fields, `var` when it
 * differs from `key.name`, and the endpoint and `token:` reference it was found with (never a value).
 */
export function entryFor(type: string, fields: Record<string, unknown>, name: string, ctx: DiscoverContext, access: DiscoveryAccess): Record<string, unknown> {
  return {
    type,
    ...fields,
    ...(name !== ctx.varName ? { var: name } : {}),
    ...(access.endpoint ? { endpoint: access.endpoint } : {}),
    ...(access.given ? { token: access.given.raw } : {}),
  };
}

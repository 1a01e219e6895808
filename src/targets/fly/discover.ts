import { TargetError } from '../../core/errors.ts';
import { laneOf, lazyCredential } from '../common.ts';
import { tokenRateLimitKey } from '../token-client.ts';
import { discoveryAccess, entryFor, paced, type DiscoveryAccess } from '../discovery.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { fly } from './index.ts';
import { unreadable } from './adapter.ts';
import { TOKEN_HELP, documentedDigest, flyClient, type FlyClient } from './client.ts';

/**
 * `keyrot discover` for Fly: the apps of the organizations the inventory's Fly apps belong to
 * (`personal` when the inventory names none), listed with `GET /v1/apps?org_slug=` — an org token
 * can list them, a deploy token only reaches its own app, which is then searched alone. Secrets
 * are write-only: each place is `unreadable`, `matches(key)` compares Fly's digest in memory.
 */
export async function discoverFly(ctx: DiscoverContext): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  const scopes: string[] = [];
  let searched = 0;
  for (const access of discoveryAccess(ctx, ['FLY_API_TOKEN', 'FLY_ACCESS_TOKEN'])) {
    const credName = access.token.kind === 'env' ? access.token.name : access.token.raw;
    const api = flyClient({
      endpoint: access.endpoint,
      credential: lazyCredential({ ...ctx, name: 'fly' }, access.token, (m) => `Fly API token: ${m} (${TOKEN_HELP})`),
      credName,
    // The lane a rotation with this token uses.
    lane: laneOf(ctx, tokenRateLimitKey('fly', access.endpoint, credName), fly),
      clock: ctx.clock,
      target: 'fly',
    });
    const { apps, scope } = await appsToSearch(ctx, api, access);
    scopes.push(scope);
    searched += apps.length;
    for (const app of apps) places.push(...(await searchApp(ctx, api, access, app)));
  }
  return { scope: scopes.join('; '), count: searched, places };
}

/** The inventory's own apps of this access, and the orgs they belong to. */
function configuredApps(ctx: DiscoverContext, access: DiscoveryAccess): string[] {
  const mine = ctx.configs.filter((c) => (c.endpoint ?? undefined) === access.endpoint && (c.token?.raw ?? undefined) === access.given?.raw);
  return [...new Set(mine.map((c) => c.app).filter((a): a is string => typeof a === 'string'))];
}

async function appsToSearch(ctx: DiscoverContext, api: FlyClient, access: DiscoveryAccess): Promise<{ apps: string[]; scope: string }> {
  const configured = configuredApps(ctx, access);
  const orgs = new Set<string>();
  for (const app of configured) orgs.add((await paced(ctx, () => api.app(app, 'discover', ctx.signal))).organization?.slug ?? 'personal');
  if (!orgs.size) orgs.add('personal');
  const apps = new Set<string>();
  for (const org of orgs) {
    try {
      for (const a of await paced(ctx, () => api.apps(org, 'discover', ctx.signal))) apps.add(a.name);
    } catch (err) {
      // A deploy token may not list its org: search the apps the inventory names.
      if (!(err instanceof TargetError && err.status === 403 && configured.length)) throw err;
      configured.forEach((a) => apps.add(a));
    }
  }
  return { apps: [...apps], scope: `${apps.size} Fly app${apps.size === 1 ? '' : 's'} of ${[...orgs].map((o) => `org ${o}`).join(', ')}` };
}

async function searchApp(ctx: DiscoverContext, api: FlyClient, access: DiscoveryAccess, app: string): Promise<DiscoveredPlace[]> {
  const secrets = await paced(ctx, () => api.secrets(app, 'discover', ctx.signal));
  return ctx.varNames.flatMap((name) => {
    const entry = secrets.find((s) => s.name === name);
    if (!entry) return [];
    return [
      {
        location: `fly app ${app} secret ${name}`,
        target: entryFor('fly', { app }, name, ctx, access),
        holds: unreadable(name, app),
        matches: (value) => !!entry.digest && entry.digest.toLowerCase() === documentedDigest(value),
      },
    ];
  });
}

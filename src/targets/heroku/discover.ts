import { Secret } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { matchesVarName } from '../common.ts';
import { discoveryAccess, entryFor, paced, searchEach, type DiscoveryAccess } from '../discovery.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { HerokuApi } from './api.ts';
import { HEROKU_TOKEN_ENV } from './index.ts';

/**
 * `keyrot discover` for Heroku: every app the token can read (`GET /apps`, all pages through
 * `Range` / `Next-Range`), then each app's config vars (`GET /apps/{app}/config-vars`). Config
 * vars read back: each place holds its value, compared by fingerprint in memory. Read-only.
 * Bounded: the first `maxApps` apps, the scope says when there were more.
 */

export interface HerokuDiscoverLimits {
  /** Apps per `GET /apps` page (Heroku's largest `max`). */
  pageSize: number;
  /** Apps searched per token: 2000 apps cost ~2000 of the account's 4500-request bucket. */
  maxApps: number;
}

export const HEROKU_DISCOVER_LIMITS: HerokuDiscoverLimits = { pageSize: 1000, maxApps: 2000 };

export function discoverHeroku(ctx: DiscoverContext, limits = HEROKU_DISCOVER_LIMITS): Promise<DiscoverResult> {
  return searchEach(discoveryAccess(ctx, HEROKU_TOKEN_ENV), (access) => searchWith(ctx, access, limits));
}

async function searchWith(ctx: DiscoverContext, access: DiscoveryAccess, limits: HerokuDiscoverLimits): Promise<DiscoverResult> {
  const api = new HerokuApi({ app: '', endpoint: access.endpoint, token: access.given }, { ...ctx, name: 'heroku' });
  const { apps, more } = await listApps(ctx, api, limits);
  const places: DiscoveredPlace[] = [];
  const refused: TargetError[] = [];
  for (const app of apps) {
    const vars = await paced(ctx, () => api.varsOf(app, 'discover', ctx.signal)).catch((err: unknown) => {
      // A collaborator without deploy rights may list an app but not read its config vars: passed over, counted.
      if (err instanceof TargetError && err.status === 403) return void refused.push(err);
      throw err;
    });
    for (const [name, value] of Object.entries(vars ?? {})) {
      if (!matchesVarName(name, ctx.varNames) || typeof value !== 'string' || value === '') continue;
      places.push({ location: `heroku app ${app} ${name}`, target: entryFor('heroku', { app }, name, ctx, access), holds: { kind: 'value', value: new Secret(value) } });
    }
  }
  // Every app refused: the token lacks the read-protected scope, which is the credential's fault.
  if (apps.length && refused.length === apps.length) throw refused[0];
  const who = access.token.kind === 'env' ? access.token.name : access.token.raw;
  const notes = [more ? `stopped at the first ${limits.maxApps}: the token reaches more` : '', refused.length ? `config vars of ${refused.length} refused (403)` : ''].filter(Boolean);
  return { scope: `${apps.length} Heroku app${apps.length === 1 ? '' : 's'} of ${who}${notes.length ? ` (${notes.join('; ')})` : ''}`, count: apps.length, places };
}

/** App names, page by page, until Heroku answers a complete page (200) or the bound is reached. */
async function listApps(ctx: DiscoverContext, api: HerokuApi, limits: HerokuDiscoverLimits): Promise<{ apps: string[]; more: boolean }> {
  const apps: string[] = [];
  let range: string | undefined = `id ..; max=${limits.pageSize}`;
  while (range !== undefined && apps.length < limits.maxApps) {
    const page = await paced(ctx, () => api.appsPage(range!, 'discover', ctx.signal));
    apps.push(...page.apps.map((a) => a.name));
    range = page.next;
  }
  return { apps: apps.slice(0, limits.maxApps), more: apps.length > limits.maxApps || range !== undefined };
}

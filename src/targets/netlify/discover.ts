import { Secret } from '../../core/secret.ts';
import { matchesVarName } from '../common.ts';
import { discoveryAccess, entryFor, paced, searchEach, type DiscoveryAccess } from '../discovery.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace, ReadResult } from '../types.ts';
import { NetlifyApi, type SiteInfo } from './api.ts';
import type { EnvValue, EnvVar } from './contexts.ts';
import { NETLIFY_TOKEN_ENV } from './index.ts';

/**
 * `keyrot discover` for Netlify: every site of every team the token's user is on (`GET /sites`,
 * all pages), then each site's own variables through the team's env API
 * (`GET /accounts/{team}/env?site_id=`). One place per deploy-context value, which is what a
 * netlify target's `context:` names. Secret variables return no value outside the `dev`
 * context: those values are `unreadable`. Bounded: the first `maxSites` sites.
 */

export interface NetlifyDiscoverLimits {
  /** Sites per `GET /sites` page (Netlify's largest `per_page`). */
  pageSize: number;
  maxSites: number;
}

export const NETLIFY_DISCOVER_LIMITS: NetlifyDiscoverLimits = { pageSize: 100, maxSites: 1000 };

export function discoverNetlify(ctx: DiscoverContext, limits = NETLIFY_DISCOVER_LIMITS): Promise<DiscoverResult> {
  return searchEach(discoveryAccess(ctx, NETLIFY_TOKEN_ENV), (access) => searchWith(ctx, access, limits));
}

async function searchWith(ctx: DiscoverContext, access: DiscoveryAccess, limits: NetlifyDiscoverLimits): Promise<DiscoverResult> {
  const api = new NetlifyApi({ site: '', endpoint: access.endpoint, token: access.given, redeploy: false }, { ...ctx, name: 'netlify' }, ctx.varName, undefined);
  const { sites, more } = await listSites(ctx, api, limits);
  const places: DiscoveredPlace[] = [];
  for (const site of sites) {
    const account = site.account_slug || site.account_id;
    if (!account) continue;
    const vars = await paced(ctx, () => api.siteVars(account, site.id, 'discover', ctx.signal));
    for (const v of vars.filter((x) => matchesVarName(x.key, ctx.varNames))) {
      for (const value of v.values ?? []) places.push(placeOf(ctx, access, site, v, value));
    }
  }
  const who = access.token.kind === 'env' ? access.token.name : access.token.raw;
  const note = more ? ` (stopped at the first ${limits.maxSites}: there are more)` : '';
  return { scope: `${sites.length} Netlify site${sites.length === 1 ? '' : 's'} of ${who}${note}`, count: sites.length, places };
}

/** Pages of sites until one comes back short (Netlify's Link header says the same) or the bound is reached. */
async function listSites(ctx: DiscoverContext, api: NetlifyApi, limits: NetlifyDiscoverLimits): Promise<{ sites: SiteInfo[]; more: boolean }> {
  const sites: SiteInfo[] = [];
  for (let page = 1; sites.length < limits.maxSites; page++) {
    const batch = await paced(ctx, () => api.sitesPage(page, limits.pageSize, 'discover', ctx.signal));
    sites.push(...batch);
    if (batch.length < limits.pageSize) return { sites, more: false };
  }
  return { sites: sites.slice(0, limits.maxSites), more: true };
}

/**
 * The entry for one context's value: `context:` as a netlify target writes it (`branch:NAME`), left
 * out for the value an omitted `context:` follows (`all`, or `production` when there is no `all`).
 */
function placeOf(ctx: DiscoverContext, access: DiscoveryAccess, site: SiteInfo, v: EnvVar, value: EnvValue): DiscoveredPlace {
  const context = value.context === 'branch' ? `branch:${value.context_parameter}` : String(value.context);
  const hasAll = (v.values ?? []).some((x) => x.context === 'all');
  const followed = context === 'all' || (context === 'production' && !hasAll);
  const target = entryFor('netlify', { site: site.id, ...(followed ? {} : { context }) }, v.key, ctx, access);
  const location = `netlify ${site.name ? `${site.name} (${site.id})` : site.id} ${v.key} [${context}]`;
  return { location, target, holds: holdsOf(v, value, context, site) };
}

function holdsOf(v: EnvVar, value: EnvValue, context: string, site: SiteInfo): ReadResult {
  // Netlify returns a secret variable's values only for the `dev` context (swagger `definitions.envVar`);
  // how it renders the others (omitted or empty) is undocumented: neither is read as a value.
  const readable = typeof value.value === 'string' && (!v.is_secret || value.context === 'dev');
  if (readable) return value.value === '' ? { kind: 'absent' } : { kind: 'value', value: new Secret(value.value!) };
  const what = `${v.key} [${context}] of Netlify site ${site.name ?? site.id}`;
  const reason = v.is_secret ? `${what} is a secret variable: Netlify returns its value only for the dev context` : `Netlify returned no value for ${what}`;
  return { kind: 'unreadable', reason };
}

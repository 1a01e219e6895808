import { TargetError } from '../../core/errors.ts';
import { plural } from '../../render/plural.ts';
import type { CredentialRef } from '../../inventory/credentials.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { DiscoverContext, DiscoveredPlace, DiscoverResult } from '../types.ts';
import { createGitHubClient, type CallAbout, type GitHubClient } from './client.ts';
import { describeGitHub } from './index.ts';

/**
 * `keyrot discover` for GitHub: every Actions, environment and Dependabot secret of the
 * repositories the token can list (`GET /user/repos`; an installation token — GITHUB_TOKEN —
 * `GET /installation/repositories`), and of the organisations it belongs to (`GET /user/orgs`),
 * plus those the inventory names, whose name is one of the variables. Values are write-only:
 * every place `holds` is `unreadable`. A store the token may not read (403/404) is passed over.
 * Bounded: the first MAX_REPOS repositories, with a note when there are more.
 */

export const MAX_REPOS = 200;
const PER_PAGE = 100;

type Entry = Record<string, unknown>;

export async function discoverGitHubActions(ctx: DiscoverContext): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  const scopes: string[] = [];
  let count = 0;
  for (const creds of credentialSets(ctx)) {
    const r = await discoverWith(creds, ctx);
    places.push(...r.places);
    scopes.push(r.scope);
    count += r.count;
  }
  return { scope: scopes.join('; '), count, places };
}

interface CredentialSet {
  endpoint?: string;
  token?: CredentialRef;
  requestTimeout?: string | number;
  repos: Set<string>;
  orgs: Set<string>;
}

/** One search per distinct endpoint + token among the inventory's github-actions targets (the defaults when none). */
function credentialSets(ctx: DiscoverContext): CredentialSet[] {
  const sets = new Map<string, CredentialSet>();
  for (const c of ctx.configs.length ? ctx.configs : [{}]) {
    const key = `${c.endpoint ?? ''} ${c.token?.raw ?? ''}`;
    const set = sets.get(key) ?? { endpoint: c.endpoint, token: c.token, requestTimeout: c.requestTimeout, repos: new Set(), orgs: new Set() };
    if (typeof c.repo === 'string') set.repos.add(c.repo);
    if (typeof c.org === 'string') set.orgs.add(c.org);
    sets.set(key, set);
  }
  return [...sets.values()];
}

async function discoverWith(creds: CredentialSet, ctx: DiscoverContext): Promise<{ scope: string; count: number; places: DiscoveredPlace[] }> {
  const client = createGitHubClient(creds, { ...ctx, name: 'discover:github-actions' });
  const get = paced(client, ctx);
  const listed = await listRepos(get);
  const repos = [...new Set([...listed.names, ...creds.repos])];
  const orgs = [...new Set([...(await listOrgs(get)), ...creds.orgs])];
  const common: Entry = { type: 'github-actions', ...(creds.endpoint ? { endpoint: creds.endpoint } : {}), ...(creds.token ? { token: creds.token.raw } : {}) };
  const found: Entry[] = [];
  let stores = 0;
  for (const repo of repos) {
    const [owner, name] = repo.split('/');
    const params = { owner, repo: name };
    for (const app of ['actions', 'dependabot'] as const) {
      stores++;
      for (const s of await secretNames(get, `GET /repos/{owner}/{repo}/${app}/secrets`, params)) found.push({ ...common, repo, ...(app === 'dependabot' ? { dependabot: true } : {}), var: s });
    }
    for (const env of await environments(get, params)) {
      stores++;
      for (const s of await secretNames(get, 'GET /repos/{owner}/{repo}/environments/{environment_name}/secrets', { ...params, environment_name: env })) {
        found.push({ ...common, repo, environment: env, var: s });
      }
    }
  }
  for (const org of orgs) {
    for (const app of ['actions', 'dependabot'] as const) {
      stores++;
      for (const s of await secretNames(get, `GET /orgs/{org}/${app}/secrets`, { org })) found.push({ ...common, org, ...(app === 'dependabot' ? { dependabot: true } : {}), var: s });
    }
  }
  const places = found.filter((e) => matches(e, ctx.varNames)).map((e) => place(e, ctx));
  const more = listed.more ? ` (stopped at the first ${MAX_REPOS}: the token reaches more)` : '';
  return { scope: `${plural(repos.length, 'GitHub repository', 'GitHub repositories')}${more} and ${plural(orgs.length, 'organisation')} of ${client.credName}`, count: stores, places };
}

function matches(entry: Entry, varNames: string[]): boolean {
  return varNames.some((v) => v.toUpperCase() === String(entry.var).toUpperCase());
}

/** The ready targets.yaml entry: `var:` only where it differs from key.name (GitHub upper-cases names). */
function place(entry: Entry, ctx: DiscoverContext): DiscoveredPlace {
  const varName = ctx.varNames.find((v) => v.toUpperCase() === String(entry.var).toUpperCase())!;
  const target: Entry = { ...entry };
  if (varName === ctx.varName) delete target.var;
  else target.var = varName;
  const reason = 'GitHub secrets are write-only: GitHub never returns their value';
  return { location: describeGitHub(target as Parameters<typeof describeGitHub>[0]), target, holds: { kind: 'unreadable', reason } };
}

type Get = <T>(route: string, params: Record<string, unknown>) => Promise<T | undefined>;

const ABOUT: CallAbout = {
  subject: 'the secrets the token can list',
  notFound: 'the token cannot see it',
  permission: 'read access to the secrets of the repositories and organisations to search ("Secrets", "Environments", "Dependabot secrets", "Actions": read)',
};

/**
 * A GET retried like a rotation's calls (rate limits, 5xx); undefined when the token may not
 * read it (403/404: passed over). A rejected token (401) ends the provider's search.
 */
function paced(client: GitHubClient, ctx: DiscoverContext): Get {
  return async <T>(route: string, params: Record<string, unknown>) => {
    try {
      return await withRetry(async () => (await client.call<T>('discover', route, params, ABOUT, ctx.signal)).data, { clock: ctx.clock, signal: ctx.signal });
    } catch (err) {
      if (err instanceof TargetError && (err.status === 403 || err.status === 404)) return undefined;
      throw err;
    }
  };
}

async function listRepos(get: Get): Promise<{ names: string[]; more: boolean }> {
  const names: string[] = [];
  let installation = false;
  for (let page = 1; names.length < MAX_REPOS; page++) {
    let batch = installation ? undefined : await get<Array<{ full_name: string }>>('GET /user/repos', { per_page: PER_PAGE, page });
    if (batch === undefined && page === 1) {
      // An installation token (GITHUB_TOKEN, a GitHub App) has no user: its repositories are the installation's.
      installation = true;
    }
    if (installation) batch = (await get<{ repositories: Array<{ full_name: string }> }>('GET /installation/repositories', { per_page: PER_PAGE, page }))?.repositories;
    if (!batch?.length) return { names, more: false };
    names.push(...batch.map((r) => r.full_name));
    if (batch.length < PER_PAGE) return { names, more: false };
  }
  return { names: names.slice(0, MAX_REPOS), more: true };
}

async function listOrgs(get: Get): Promise<string[]> {
  return ((await get<Array<{ login: string }>>('GET /user/orgs', { per_page: PER_PAGE })) ?? []).map((o) => o.login);
}

async function environments(get: Get, params: Record<string, unknown>): Promise<string[]> {
  const res = await get<{ environments: Array<{ name: string }> }>('GET /repos/{owner}/{repo}/environments', { ...params, per_page: PER_PAGE });
  return (res?.environments ?? []).map((e) => e.name);
}

async function secretNames(get: Get, route: string, params: Record<string, unknown>): Promise<string[]> {
  const names: string[] = [];
  for (let page = 1; page <= 10; page++) {
    const res = await get<{ secrets: Array<{ name: string }> }>(route, { ...params, per_page: PER_PAGE, page });
    names.push(...(res?.secrets ?? []).map((s) => s.name));
    if ((res?.secrets.length ?? 0) < PER_PAGE) break;
  }
  return names;
}

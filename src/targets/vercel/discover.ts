import { Secret } from '../../core/secret.ts';
import { matchesVarName } from '../common.ts';
import { discoveryAccess, entryFor, paced, searchEach, type DiscoveryAccess } from '../discovery.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace, ReadResult } from '../types.ts';
import { TARGETS, VercelApi, type EnvEntry } from './api.ts';
import { VERCEL_TOKEN_ENV } from './index.ts';

/**
 * `keyrot discover` for Vercel: every project of each team the inventory's Vercel targets name
 * (the token owner's personal scope when they name none: `GET /v10/projects`, all pages through
 * `pagination.next`), then each project's variables (`GET /v10/projects/{id}/env`) and, for an
 * entry named like one of interest, its decrypted value (`GET /v1/projects/{id}/env/{entry}`).
 * One place per entry: an entry is one value for a set of environments, which is what a vercel
 * target's `targets:` names. Sensitive entries never return their value: `unreadable`.
 * Bounded: the first `maxProjects` projects of each scope, the scope says when there were more.
 */

export interface VercelDiscoverLimits {
  /** Projects per `GET /v10/projects` page (Vercel's largest `limit`). */
  pageSize: number;
  maxProjects: number;
}

export const VERCEL_DISCOVER_LIMITS: VercelDiscoverLimits = { pageSize: 100, maxProjects: 1000 };

/** The team is part of where projects are listed: one search per (endpoint, token, team). */
type VercelScope = DiscoveryAccess & { team: string | undefined };

export function discoverVercel(ctx: DiscoverContext, limits = VERCEL_DISCOVER_LIMITS): Promise<DiscoverResult> {
  const scopes = discoveryAccess(ctx, VERCEL_TOKEN_ENV, (c) => ({ team: typeof c.team === 'string' ? c.team : undefined }));
  return searchEach(scopes, (scope) => searchScope(ctx, scope, limits));
}

async function searchScope(ctx: DiscoverContext, scope: VercelScope, limits: VercelDiscoverLimits): Promise<DiscoverResult> {
  const api = new VercelApi({ project: '', team: scope.team, endpoint: scope.endpoint, token: scope.given }, { ...ctx, name: 'vercel' });
  const { projects, more } = await listProjects(ctx, api, limits);
  const places: DiscoveredPlace[] = [];
  let branchOnly = 0;
  for (const project of projects) {
    const entries = (await paced(ctx, () => api.listEntries('discover', project.id, ctx.signal))).filter((e) => matchesVarName(e.key, ctx.varNames));
    // Branch-specific and custom-environment-only entries are not what a vercel target rotates: counted, not listed.
    const general = entries.filter((e) => !e.gitBranch && e.target.length > 0);
    branchOnly += entries.length - general.length;
    for (const e of general) places.push(await placeOf(ctx, api, scope, project, e));
  }
  const where = scope.team ? `team ${scope.team}` : 'the personal account';
  const notes = [more ? `stopped at the first ${limits.maxProjects}: there are more` : '', branchOnly ? `${branchOnly} branch-specific or custom-environment entr${branchOnly === 1 ? 'y' : 'ies'} not listed` : ''];
  const note = notes.filter(Boolean).join('; ');
  return { scope: `${projects.length} Vercel project${projects.length === 1 ? '' : 's'} of ${where}${note ? ` (${note})` : ''}`, count: projects.length, places };
}

async function listProjects(ctx: DiscoverContext, api: VercelApi, limits: VercelDiscoverLimits): Promise<{ projects: Array<{ id: string; name: string }>; more: boolean }> {
  const projects: Array<{ id: string; name: string }> = [];
  const seen = new Set<string>();
  let from: string | undefined;
  let more = true;
  while (more && projects.length < limits.maxProjects) {
    const page = await paced(ctx, () => api.projectsPage('discover', limits.pageSize, from, ctx.signal));
    const fresh = page.projects.filter((p) => !seen.has(p.id));
    fresh.forEach((p) => seen.add(p.id));
    projects.push(...fresh);
    // A cursor that brings nothing new ends the list (a server ignoring `from` cannot make keyrot loop).
    more = page.next !== undefined && fresh.length > 0;
    from = page.next;
  }
  return { projects: projects.slice(0, limits.maxProjects), more: more || projects.length > limits.maxProjects };
}

async function placeOf(ctx: DiscoverContext, api: VercelApi, scope: VercelScope, project: { id: string; name: string }, e: EnvEntry): Promise<DiscoveredPlace> {
  const targets = TARGETS.filter((t) => e.target.includes(t));
  const fields = { project: project.name, ...(scope.team ? { team: scope.team } : {}), ...(targets.join() === 'production' ? {} : { targets }) };
  const location = `vercel ${scope.team ? `${scope.team}/` : ''}${project.name} ${e.key} (${targets.join(', ')})`;
  return { location, target: entryFor('vercel', fields, e.key, ctx, scope), holds: await holdsOf(ctx, api, project, e) };
}

/** The decrypted value, or why there is none (a sensitive entry is never read: Vercel returns no value for it). */
async function holdsOf(ctx: DiscoverContext, api: VercelApi, project: { id: string; name: string }, e: EnvEntry): Promise<ReadResult> {
  const sensitive = { kind: 'unreadable', reason: `${e.key} of Vercel project ${project.name} is a sensitive variable: Vercel never returns its value` } as const;
  if (e.type === 'sensitive') return sensitive;
  const { entry, value } = await paced(ctx, () => api.readEntry('discover', project.id, e.id, `${e.key} of Vercel project ${project.name}`, ctx.signal));
  if (entry.type === 'sensitive') return sensitive;
  if (value === null) return { kind: 'unreadable', reason: `Vercel returned no decrypted value for ${e.key} of project ${project.name}` };
  return value === '' ? { kind: 'absent' } : { kind: 'value', value: new Secret(value) };
}

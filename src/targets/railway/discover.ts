import { Secret } from '../../core/secret.ts';
import { matchesVarName } from '../common.ts';
import { discoveryAccess, entryFor, paced, searchEach, type DiscoveryAccess } from '../discovery.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { RailwayApi, type ProjectInfo } from './api.ts';
import { railway } from './index.ts';

/**
 * `keyrot discover` for Railway: every project an account or workspace token reaches (the
 * `projects` connection, all pages, with their environments and services), or the one project
 * environment a project token is bound to (`projectToken`); then the variables of each service in
 * each environment (`variables(projectId, environmentId, serviceId)`). Sealed variables come back
 * without a value: `unreadable`. Shared (environment-wide) variables are not what a railway target
 * rotates and are not searched. Bounded: `maxProjects` projects and `maxInstances` service
 * variable reads per token (Railway's public API allows 100-1000 requests an hour per token).
 */

export interface RailwayDiscoverLimits {
  /** Projects per `projects` page. */
  pageSize: number;
  maxProjects: number;
  /** Service-in-environment variable reads per token: one request each. */
  maxInstances: number;
}

export const RAILWAY_DISCOVER_LIMITS: RailwayDiscoverLimits = { pageSize: 50, maxProjects: 200, maxInstances: 300 };

/** What the token is (account or project) decides what it can list: one search per (endpoint, token, tokenType). */
type RailwayAccess = DiscoveryAccess & { tokenType: 'account' | 'project' | undefined };

export function discoverRailway(ctx: DiscoverContext, limits = RAILWAY_DISCOVER_LIMITS): Promise<DiscoverResult> {
  const tokenTypeOf = (c: DiscoverContext['configs'][number]): Pick<RailwayAccess, 'tokenType'> => ({ tokenType: c.tokenType === 'account' || c.tokenType === 'project' ? c.tokenType : undefined });
  return searchEach(discoveryAccess(ctx, railway.credentialEnv!, tokenTypeOf), (access) => searchWith(ctx, access, limits));
}

type Project = ProjectInfo & { id: string };

async function searchWith(ctx: DiscoverContext, access: RailwayAccess, limits: RailwayDiscoverLimits): Promise<DiscoverResult> {
  const config = { project: '', environment: '', service: '', endpoint: access.endpoint, token: access.given, tokenType: access.tokenType };
  const api = new RailwayApi(config, { ...ctx, name: 'railway' });
  const { projects, more } = api.tokenType === 'project' ? await boundProject(ctx, api) : await listProjects(ctx, api, limits);
  const places: DiscoveredPlace[] = [];
  let reads = 0;
  search: for (const p of projects) {
    for (const env of p.environments.edges.map((e) => e.node)) {
      for (const svc of p.services.edges.map((e) => e.node)) {
        if (reads++ >= limits.maxInstances) break search;
        const ids = { projectId: p.id, environmentId: env.id, serviceId: svc.id };
        const vars = await paced(ctx, () => api.variablesOf('discover', ids, ctx.signal));
        for (const [name, value] of Object.entries(vars)) {
          if (!matchesVarName(name, ctx.varNames)) continue;
          const fields = { project: p.id, environment: env.id, service: svc.id, ...(access.tokenType ? { tokenType: access.tokenType } : {}) };
          const location = `railway ${p.name}/${env.name}/${svc.name} ${name}`;
          const reason = `${name} of Railway service ${svc.name} (${env.name}) is sealed: Railway never returns its value`;
          const holds = value === null ? { kind: 'unreadable' as const, reason } : value === '' ? { kind: 'absent' as const } : { kind: 'value' as const, value: new Secret(value) };
          places.push({ location, target: entryFor('railway', fields, name, ctx, access), holds });
        }
      }
    }
  }
  const notes = [more ? `stopped at the first ${limits.maxProjects} projects` : '', reads > limits.maxInstances ? `stopped at ${limits.maxInstances} services` : ''].filter(Boolean);
  const who = api.tokenRef.kind === 'env' ? api.tokenRef.name : api.tokenRef.raw;
  const what = `${projects.length} Railway project${projects.length === 1 ? '' : 's'} of ${who}`;
  return { scope: `${what}${notes.length ? ` (${notes.join('; ')}: the token reaches more)` : ''}`, count: projects.length, places };
}

/** A project token reaches one project environment: that project, with only that environment. */
async function boundProject(ctx: DiscoverContext, api: RailwayApi): Promise<{ projects: Project[]; more: boolean }> {
  const bound = await paced(ctx, () => api.projectToken(ctx.signal, 'discover'));
  const p = await paced(ctx, () => api.projectById(bound.project.id, ctx.signal));
  const environments = { edges: [{ node: bound.environment }] };
  return { projects: [{ ...p, id: bound.project.id, environments }], more: false };
}

async function listProjects(ctx: DiscoverContext, api: RailwayApi, limits: RailwayDiscoverLimits): Promise<{ projects: Project[]; more: boolean }> {
  const projects: Project[] = [];
  let after: string | undefined;
  do {
    const page = await paced(ctx, () => api.projectsPage(limits.pageSize, after, ctx.signal));
    projects.push(...page.projects);
    after = page.next;
  } while (after !== undefined && projects.length < limits.maxProjects);
  return { projects: projects.slice(0, limits.maxProjects), more: after !== undefined || projects.length > limits.maxProjects };
}

import { randomUUID } from 'node:crypto';
import { HttpEmulator, bearer, type EmuRequest, type EmuResponse } from '../server.ts';
import { GqlFieldError, GqlSyntaxError, parseDocument, project, resolveValue, type GqlObject, type Operation } from './graphql.ts';

/**
 * A loopback emulator of Railway's public GraphQL API (`POST /graphql/v2`, railway README "Provider facts"):
 * the queries and mutations keyrot and the Railway CLI use, with signatures from the CLI's
 * introspection dump (railwayapp/cli @df3838b src/gql/schema.json):
 *
 * - `me`, `projectToken`, `project(id)` (environments, services), `projects(first, after)` (a connection)
 * - `variables(projectId, environmentId, serviceId, unrendered)` / `variablesForServiceDeployment`
 *   → the `EnvironmentVariables` JSON scalar; sealed variables come back as `null` (CLI
 *   controllers/variables.rs: "its value cannot be read back by anyone")
 * - `variableUpsert(input)` (deploys the service unless `skipDeploys: true`), `variableDelete(input)`
 * - `serviceInstanceRedeploy(environmentId, serviceId)`, `deploymentRedeploy(id)`
 * - `deployments(input, first)`, `deployment(id)`, `serviceInstance(environmentId, serviceId)`
 *
 * Auth: `Authorization: Bearer <account or workspace token>` or `Project-Access-Token: <project
 * token>` (scoped to one project environment), exactly one of the two as the CLI sends (client.rs).
 * Errors come the GraphQL way: HTTP 200 with `{"data": null, "errors": [{message, locations, path,
 * extensions}]}` ("Not Authorized", "Project Token not found", not-found messages); malformed
 * documents and unknown fields are HTTP 400. Rate limits: `X-RateLimit-Limit/Remaining/Reset` on
 * every answer, 429 with `Retry-After` (seconds) when the window is spent (docs public-api; the CLI
 * reads Retry-After on every 429).
 * Deployments go INITIALIZING → BUILDING → DEPLOYING → SUCCESS (or FAILED / CRASHED when a failure
 * is injected) over time, take a snapshot of the service's variables when created, and a
 * deployment that succeeds moves the service's previous SUCCESS one to REMOVED.
 */

/**
 * The `DeploymentStatus` values this emulator produces (the enum, railwayapp/cli @df3838b
 * src/gql/schema.json, also has QUEUED, WAITING, NEEDS_APPROVAL, REMOVING, SKIPPED). SLEEPING is
 * a deployment that went live and was then put to sleep by App Sleeping: the CLI counts it with
 * SUCCESS and CRASHED as a settled, deployed state (src/commands/output/service_summary.rs
 * `is_stable_status`), not as one still in progress.
 */
export type RailwayDeploymentStatus = 'INITIALIZING' | 'BUILDING' | 'DEPLOYING' | 'SUCCESS' | 'SLEEPING' | 'FAILED' | 'CRASHED' | 'REMOVED';

export interface RailwayVariable {
  value: string;
  sealed: boolean;
}

export interface RailwayDeploymentRecord {
  id: string;
  projectId: string;
  environmentId: string;
  serviceId: string;
  createdAt: number;
  /** Rendered variables the deployment runs with (sealed values included). */
  snapshot: Record<string, string>;
  outcome: 'SUCCESS' | 'FAILED' | 'CRASHED';
  /** Set when a later deployment of the same service succeeded. */
  removedAt?: number;
  /** App Sleeping: once live, the deployment reports SLEEPING (an idle service put to sleep). */
  sleeps?: boolean;
  meta: Record<string, unknown>;
}

interface Project {
  id: string;
  name: string;
  createdAt: number;
  environments: Array<{ id: string; name: string }>;
  services: Array<{ id: string; name: string }>;
  /** environmentId → (serviceId | '' for shared) → name → variable */
  variables: Map<string, Map<string, Map<string, RailwayVariable>>>;
}

export interface RailwayProjectSeed {
  id?: string;
  name: string;
  environments: Array<{ id?: string; name: string }>;
  services: Array<{ id?: string; name: string }>;
  /** environment name or id → service name or id ('' = shared) → NAME → value or {value, sealed}. */
  variables?: Record<string, Record<string, Record<string, string | { value: string; sealed?: boolean }>>>;
  /** Give every service one SUCCESS deployment in every environment (default true). */
  deployed?: boolean;
}

export interface RailwayEmulatorOptions {
  /** Length of each of INITIALIZING, BUILDING, DEPLOYING (ms). */
  phaseMs?: number;
  /** Requests per window per token. */
  rateLimit?: { limit: number; windowMs: number };
}

interface Caller {
  kind: 'account' | 'project';
  projectId?: string;
  environmentId?: string;
}

class ResolverError extends Error {}

const USER = { id: randomUUID(), name: 'keyrot emulator', email: 'emulator@keyrot.invalid' };

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export class RailwayEmulator extends HttpEmulator {
  private readonly accountTokens = new Set<string>();
  private readonly projectTokens = new Map<string, { id: string; projectId: string; environmentId: string }>();
  private readonly projects: Project[] = [];
  private readonly deploymentList: RailwayDeploymentRecord[] = [];
  private readonly buckets = new Map<string, { count: number; resetAt: number }>();
  private readonly pendingDeployFailures: Array<'FAILED' | 'CRASHED'> = [];
  private pendingSleeps = 0;
  private readonly pendingErrors: string[] = [];
  private readonly opts: Required<RailwayEmulatorOptions>;
  /** Variable upserts and deletes that reached the store. */
  mutations = 0;

  constructor(opts: RailwayEmulatorOptions = {}) {
    super({
      name: 'railway',
      notFound: (req) => ({ status: 404, body: `Cannot ${req.method} ${req.path}` }),
    });
    this.opts = { phaseMs: opts.phaseMs ?? 150, rateLimit: opts.rateLimit ?? { limit: 1000, windowMs: 3_600_000 } };
    this.server.route('POST', '/graphql/v2', (req) => this.handle(req));
  }

  static async start(opts: RailwayEmulatorOptions = {}): Promise<RailwayEmulator> {
    const emu = new RailwayEmulator(opts);
    await emu.start();
    return emu;
  }

  /** The endpoint keyrot's `endpoint:` takes: the GraphQL URL itself. */
  get graphqlUrl(): string {
    return `${this.server.url}/graphql/v2`;
  }

  // ---------------------------------------------------------------- helpers for tests and demo

  addAccountToken(token: string): void {
    this.accountTokens.add(token);
  }

  addProjectToken(token: string, projectId: string, environmentId: string): void {
    this.projectTokens.set(token, { id: randomUUID(), projectId, environmentId });
  }

  revokeToken(token: string): void {
    this.accountTokens.delete(token);
    this.projectTokens.delete(token);
  }

  seedProject(seed: RailwayProjectSeed): { id: string; environments: Record<string, string>; services: Record<string, string> } {
    const p: Project = {
      id: seed.id ?? randomUUID(),
      name: seed.name,
      createdAt: Date.now(),
      environments: seed.environments.map((e) => ({ id: e.id ?? randomUUID(), name: e.name })),
      services: seed.services.map((s) => ({ id: s.id ?? randomUUID(), name: s.name })),
      variables: new Map(),
    };
    this.projects.push(p);
    for (const [envKey, byService] of Object.entries(seed.variables ?? {})) {
      const env = p.environments.find((e) => e.id === envKey || e.name === envKey);
      if (!env) throw new Error(`railway emulator: no environment ${envKey}`);
      for (const [svcKey, vars] of Object.entries(byService)) {
        const svc = svcKey === '' ? { id: '' } : p.services.find((s) => s.id === svcKey || s.name === svcKey);
        if (!svc) throw new Error(`railway emulator: no service ${svcKey}`);
        const store = this.store(p, env.id, svc.id);
        for (const [name, v] of Object.entries(vars)) store.set(name, typeof v === 'string' ? { value: v, sealed: false } : { value: v.value, sealed: v.sealed ?? false });
      }
    }
    if (seed.deployed !== false) {
      for (const env of p.environments) {
        for (const svc of p.services) {
          this.deploymentList.push({
            id: randomUUID(),
            projectId: p.id,
            environmentId: env.id,
            serviceId: svc.id,
            createdAt: Date.now() - 86_400_000,
            snapshot: this.rendered(p, env.id, svc.id),
            outcome: 'SUCCESS',
            meta: {},
          });
        }
      }
    }
    return {
      id: p.id,
      environments: Object.fromEntries(p.environments.map((e) => [e.name, e.id])),
      services: Object.fromEntries(p.services.map((s) => [s.name, s.id])),
    };
  }

  /** A service's (or, with serviceId '', the environment's shared) variables, plaintext copies. */
  getVariables(projectId: string, environmentId: string, serviceId: string): Record<string, RailwayVariable> {
    const p = this.projects.find((x) => x.id === projectId);
    if (!p) throw new Error(`railway emulator: no project ${projectId}`);
    return Object.fromEntries([...(p.variables.get(environmentId)?.get(serviceId) ?? new Map<string, RailwayVariable>())].map(([k, v]) => [k, { ...v }]));
  }

  /** Sets a variable directly (bypassing the API). */
  putVariable(projectId: string, environmentId: string, serviceId: string, name: string, value: string, sealed = false): void {
    const p = this.projects.find((x) => x.id === projectId);
    if (!p) throw new Error(`railway emulator: no project ${projectId}`);
    this.store(p, environmentId, serviceId).set(name, { value, sealed });
  }

  /** The service's deployments in an environment, newest first, with status and snapshot. */
  deployments(serviceId: string, environmentId?: string): Array<RailwayDeploymentRecord & { status: RailwayDeploymentStatus }> {
    return this.deploymentList
      .filter((d) => d.serviceId === serviceId && (!environmentId || d.environmentId === environmentId))
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((d) => ({ ...structuredClone(d), status: this.statusOf(d) }));
  }

  /** The next deployment created goes live, then SLEEPING (App Sleeping put the idle service to sleep). */
  sleepNextDeploy(): void {
    this.pendingSleeps++;
  }

  /** The next deployment created ends FAILED (build) or CRASHED (after starting). */
  failNextDeploy(status: 'FAILED' | 'CRASHED' = 'FAILED'): void {
    this.pendingDeployFailures.push(status);
  }

  /** The next authorized request answers a GraphQL error with this message (HTTP 200). */
  errorNext(message: string): void {
    this.pendingErrors.push(message);
  }

  /** The next request answers 429 with Railway's headers, as if the token's window were spent. */
  rateLimitNext(retryAfterSec = 2): void {
    const reset = Math.ceil(Date.now() / 1000) + retryAfterSec;
    this.server.failNext({
      path: '/graphql/v2',
      status: 429,
      headers: {
        'retry-after': String(retryAfterSec),
        'x-ratelimit-limit': String(this.opts.rateLimit.limit),
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(reset),
      },
      body: { errors: [{ message: 'Too many requests. Try again later.', extensions: { code: 'RATE_LIMITED' } }], data: null },
    });
  }

  // ---------------------------------------------------------------- internals

  private store(p: Project, environmentId: string, serviceId: string): Map<string, RailwayVariable> {
    let byService = p.variables.get(environmentId);
    if (!byService) p.variables.set(environmentId, (byService = new Map()));
    let vars = byService.get(serviceId);
    if (!vars) byService.set(serviceId, (vars = new Map()));
    return vars;
  }

  /** What a deployment of the service sees: shared variables, overridden by the service's own. */
  private rendered(p: Project, environmentId: string, serviceId: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of p.variables.get(environmentId)?.get('') ?? []) out[k] = v.value;
    for (const [k, v] of p.variables.get(environmentId)?.get(serviceId) ?? []) out[k] = v.value;
    return out;
  }

  private statusOf(d: RailwayDeploymentRecord): RailwayDeploymentStatus {
    const age = Date.now() - d.createdAt;
    const ph = this.opts.phaseMs;
    if (age < ph) return 'INITIALIZING';
    if (age < 2 * ph) return 'BUILDING';
    if (d.outcome === 'FAILED') return 'FAILED';
    if (age < 3 * ph) return 'DEPLOYING';
    if (d.outcome === 'CRASHED') return 'CRASHED';
    // Superseded once a newer deployment of the same service instance succeeded.
    const newer = this.deploymentList.some(
      (o) => o !== d && o.serviceId === d.serviceId && o.environmentId === d.environmentId && o.createdAt > d.createdAt && o.outcome === 'SUCCESS' && Date.now() - o.createdAt >= 3 * ph,
    );
    if (newer) return 'REMOVED';
    return d.sleeps ? 'SLEEPING' : 'SUCCESS';
  }

  private deploy(p: Project, environmentId: string, serviceId: string, meta: Record<string, unknown>): RailwayDeploymentRecord {
    const d: RailwayDeploymentRecord = {
      id: randomUUID(),
      projectId: p.id,
      environmentId,
      serviceId,
      createdAt: Date.now(),
      snapshot: this.rendered(p, environmentId, serviceId),
      outcome: this.pendingDeployFailures.shift() ?? 'SUCCESS',
      meta,
    };
    if (d.outcome === 'SUCCESS' && this.pendingSleeps > 0) {
      this.pendingSleeps--;
      d.sleeps = true;
    }
    this.deploymentList.push(d);
    return d;
  }

  private deploymentObject(d: RailwayDeploymentRecord): GqlObject {
    const status = this.statusOf(d);
    return {
      __typename: 'Deployment',
      id: d.id,
      status,
      createdAt: iso(d.createdAt),
      updatedAt: iso(Date.now()),
      statusUpdatedAt: iso(Date.now()),
      projectId: d.projectId,
      environmentId: d.environmentId,
      serviceId: d.serviceId,
      meta: d.meta,
      staticUrl: null,
      url: null,
      canRedeploy: true,
      canRollback: status === 'SUCCESS' || status === 'SLEEPING' || status === 'REMOVED',
      deploymentStopped: false,
      snapshotId: null,
    };
  }

  private caller(req: EmuRequest): Caller | 'missing' | 'bad-project-token' | 'bad-token' {
    const projectToken = req.headers['project-access-token'];
    if (typeof projectToken === 'string' && projectToken) {
      const t = this.projectTokens.get(projectToken);
      return t ? { kind: 'project', projectId: t.projectId, environmentId: t.environmentId } : 'bad-project-token';
    }
    const token = bearer(req);
    if (!token) return 'missing';
    return this.accountTokens.has(token) ? { kind: 'account' } : 'bad-token';
  }

  private rateHeaders(key: string): { headers: Record<string, string>; exceeded: boolean; retryAfter: number } {
    const now = Date.now();
    let b = this.buckets.get(key);
    if (!b || now >= b.resetAt) {
      b = { count: 0, resetAt: now + this.opts.rateLimit.windowMs };
      this.buckets.set(key, b);
    }
    b.count++;
    const limit = this.opts.rateLimit.limit;
    return {
      headers: {
        'x-ratelimit-limit': String(limit),
        'x-ratelimit-remaining': String(Math.max(0, limit - b.count)),
        'x-ratelimit-reset': String(Math.ceil(b.resetAt / 1000)),
      },
      exceeded: b.count > limit,
      retryAfter: Math.max(1, Math.ceil((b.resetAt - now) / 1000)),
    };
  }

  private handle(req: EmuRequest): EmuResponse {
    const who = String(req.headers['project-access-token'] ?? bearer(req) ?? 'anonymous');
    const rate = this.rateHeaders(who);
    const out = (status: number, body: unknown, extra: Record<string, string> = {}): EmuResponse => ({ status, body, headers: { ...rate.headers, ...extra } });
    if (rate.exceeded) {
      return out(429, { errors: [{ message: 'Too many requests. Try again later.', extensions: { code: 'RATE_LIMITED' } }], data: null }, { 'retry-after': String(rate.retryAfter) });
    }
    const body = req.body as { query?: unknown; variables?: unknown; operationName?: unknown } | string;
    if (!body || typeof body !== 'object' || typeof body.query !== 'string') {
      return out(400, { errors: [{ message: 'Must provide query string.', extensions: { code: 'BAD_REQUEST' } }] });
    }
    let ops: Operation[];
    try {
      ops = parseDocument(body.query);
    } catch (e) {
      if (e instanceof GqlSyntaxError) {
        return out(400, { errors: [{ message: e.message, locations: [{ line: e.line, column: e.column }], extensions: { code: 'GRAPHQL_PARSE_FAILED' } }] });
      }
      throw e;
    }
    const op = typeof body.operationName === 'string' ? ops.find((o) => o.name === body.operationName) : ops.length === 1 ? ops[0] : undefined;
    if (!op) return out(400, { errors: [{ message: 'Could not determine what operation to execute.', extensions: { code: 'BAD_REQUEST' } }] });
    const vars: Record<string, unknown> = { ...((body.variables && typeof body.variables === 'object' ? body.variables : {}) as Record<string, unknown>) };
    for (const v of op.variables) {
      if (vars[v.name] === undefined && v.default) vars[v.name] = resolveValue(v.default, {});
      if (v.type.endsWith('!') && (vars[v.name] === undefined || vars[v.name] === null)) {
        return out(400, { errors: [{ message: `Variable "$${v.name}" of required type "${v.type}" was not provided.`, extensions: { code: 'BAD_USER_INPUT' } }] });
      }
    }
    const resolvers = op.kind === 'query' ? this.queries() : this.mutationResolvers();
    for (const f of op.selections) {
      if (!resolvers[f.name]) {
        return out(400, {
          errors: [
            {
              message: `Cannot query field "${f.name}" on type "${op.kind === 'query' ? 'Query' : 'Mutation'}".`,
              locations: [{ line: f.line, column: f.column }],
              extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
            },
          ],
        });
      }
    }
    const caller = this.caller(req);
    const data: Record<string, unknown> = {};
    for (const f of op.selections) {
      const args = Object.fromEntries(Object.entries(f.args).map(([k, v]) => [k, resolveValue(v, vars)]));
      try {
        if (caller === 'bad-project-token') throw new ResolverError('Project Token not found');
        if (typeof caller === 'string') throw new ResolverError('Not Authorized');
        const injected = this.pendingErrors.shift();
        if (injected) throw new ResolverError(injected);
        data[f.alias ?? f.name] = project(resolvers[f.name]!(args, caller), f);
      } catch (e) {
        if (e instanceof GqlFieldError) {
          return out(400, { errors: [{ message: e.message, locations: [{ line: e.field.line, column: e.field.column }], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }] });
        }
        if (!(e instanceof ResolverError)) throw e;
        // Root fields are non-null, so one failing field nulls `data` (GraphQL null propagation).
        return out(200, {
          errors: [{ message: e.message, locations: [{ line: f.line, column: f.column }], path: [f.alias ?? f.name], extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
          data: null,
        });
      }
    }
    return out(200, { data });
  }

  // ---------------------------------------------------------------- resolvers

  private findProject(id: unknown, caller: Caller): Project {
    const p = this.projects.find((x) => x.id === id);
    if (caller.kind === 'project' && caller.projectId !== id) throw new ResolverError('Not Authorized');
    if (!p) throw new ResolverError('Project not found');
    return p;
  }

  private scoped(args: Record<string, unknown>, caller: Caller): { p: Project; environmentId: string; serviceId: string } {
    const p = this.findProject(args.projectId, caller);
    const environmentId = String(args.environmentId ?? '');
    if (caller.kind === 'project' && caller.environmentId !== environmentId) throw new ResolverError('Not Authorized');
    if (!p.environments.some((e) => e.id === environmentId)) throw new ResolverError('Environment not found');
    const serviceId = args.serviceId === undefined || args.serviceId === null ? '' : String(args.serviceId);
    if (serviceId && !p.services.some((s) => s.id === serviceId)) throw new ResolverError('Service not found');
    return { p, environmentId, serviceId };
  }

  /** A project as the API renders it: its environments (a project token sees its own) and services. */
  private projectObject(p: Project, caller: Caller): GqlObject {
    const envs = caller.kind === 'project' ? p.environments.filter((e) => e.id === caller.environmentId) : p.environments;
    const pageInfo = { __typename: 'PageInfo', hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null };
    return {
      __typename: 'Project',
      id: p.id,
      name: p.name,
      createdAt: iso(p.createdAt),
      deletedAt: null,
      environments: {
        __typename: 'ProjectEnvironmentsConnection',
        pageInfo,
        edges: envs.map((e) => ({ __typename: 'ProjectEnvironmentsConnectionEdge', cursor: e.id, node: { __typename: 'Environment', id: e.id, name: e.name, canAccess: true, deletedAt: null } })),
      },
      services: {
        __typename: 'ProjectServicesConnection',
        pageInfo,
        edges: p.services.map((s) => ({ __typename: 'ProjectServicesConnectionEdge', cursor: s.id, node: { __typename: 'Service', id: s.id, name: s.name, projectId: p.id } })),
      },
    };
  }

  private queries(): Record<string, (args: Record<string, unknown>, caller: Caller) => unknown> {
    return {
      me: (_a, caller) => {
        if (caller.kind !== 'account') throw new ResolverError('Not Authorized');
        return { __typename: 'User', id: USER.id, name: USER.name, email: USER.email };
      },
      projectToken: (_a, caller) => {
        if (caller.kind !== 'project') throw new ResolverError('Project Token not found');
        const p = this.projects.find((x) => x.id === caller.projectId)!;
        const env = p.environments.find((e) => e.id === caller.environmentId)!;
        return {
          __typename: 'ProjectToken',
          id: randomUUID(),
          name: 'keyrot',
          projectId: p.id,
          environmentId: env.id,
          project: { __typename: 'Project', id: p.id, name: p.name },
          environment: { __typename: 'Environment', id: env.id, name: env.name },
        };
      },
      project: (args, caller) => this.projectObject(this.findProject(args.id, caller), caller),
      // Every project an account or workspace token reaches, a Relay connection paged with
      // `first` / `after` (cursor: the project id); a project token is not authorized for it.
      projects: (args, caller) => {
        if (caller.kind !== 'account') throw new ResolverError('Not Authorized');
        const first = typeof args.first === 'number' ? Math.min(100, Math.max(1, args.first)) : 100;
        const start = typeof args.after === 'string' ? this.projects.findIndex((p) => p.id === args.after) + 1 : 0;
        const page = this.projects.slice(start, start + first);
        const hasNextPage = start + first < this.projects.length;
        return {
          __typename: 'QueryProjectsConnection',
          pageInfo: { __typename: 'PageInfo', hasNextPage, hasPreviousPage: start > 0, startCursor: page[0]?.id ?? null, endCursor: page.at(-1)?.id ?? null },
          edges: page.map((p) => ({ __typename: 'QueryProjectsConnectionEdge', cursor: p.id, node: this.projectObject(p, caller) })),
        };
      },
      variables: (args, caller) => {
        const { p, environmentId, serviceId } = this.scoped(args, caller);
        const out: Record<string, string | null> = {};
        for (const [k, v] of p.variables.get(environmentId)?.get(serviceId) ?? []) out[k] = v.sealed ? null : v.value;
        return out;
      },
      variablesForServiceDeployment: (args, caller) => {
        const { p, environmentId, serviceId } = this.scoped(args, caller);
        if (!serviceId) throw new ResolverError('Service not found');
        const out: Record<string, string | null> = {};
        for (const scope of ['', serviceId]) for (const [k, v] of p.variables.get(environmentId)?.get(scope) ?? []) out[k] = v.sealed ? null : v.value;
        return out;
      },
      deployments: (args, caller) => {
        const input = (args.input ?? {}) as Record<string, unknown>;
        if (input.projectId) this.findProject(input.projectId, caller);
        if (caller.kind === 'project' && input.environmentId && input.environmentId !== caller.environmentId) throw new ResolverError('Not Authorized');
        const first = typeof args.first === 'number' ? args.first : 50;
        const list = this.deploymentList
          .filter((d) => (!input.projectId || d.projectId === input.projectId) && (!input.environmentId || d.environmentId === input.environmentId) && (!input.serviceId || d.serviceId === input.serviceId))
          .filter((d) => caller.kind === 'account' || (d.projectId === caller.projectId && d.environmentId === caller.environmentId))
          .sort((a, b) => b.createdAt - a.createdAt)
          .slice(0, first);
        return {
          __typename: 'QueryDeploymentsConnection',
          pageInfo: { __typename: 'PageInfo', hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
          edges: list.map((d) => ({ __typename: 'QueryDeploymentsConnectionEdge', cursor: d.id, node: this.deploymentObject(d) })),
        };
      },
      deployment: (args, caller) => {
        const d = this.deploymentList.find((x) => x.id === args.id);
        if (!d) throw new ResolverError('Deployment not found');
        if (caller.kind === 'project' && (d.projectId !== caller.projectId || d.environmentId !== caller.environmentId)) throw new ResolverError('Not Authorized');
        return this.deploymentObject(d);
      },
      serviceInstance: (args, caller) => {
        const env = String(args.environmentId ?? '');
        const svc = String(args.serviceId ?? '');
        const p = this.projects.find((x) => x.services.some((s) => s.id === svc));
        if (!p || !p.environments.some((e) => e.id === env)) throw new ResolverError('ServiceInstance not found');
        if (caller.kind === 'project' && (caller.projectId !== p.id || caller.environmentId !== env)) throw new ResolverError('Not Authorized');
        const latest = this.deploymentList.filter((d) => d.serviceId === svc && d.environmentId === env).sort((a, b) => b.createdAt - a.createdAt)[0];
        return {
          __typename: 'ServiceInstance',
          id: `${svc}:${env}`,
          serviceId: svc,
          environmentId: env,
          serviceName: p.services.find((s) => s.id === svc)!.name,
          latestDeployment: latest ? this.deploymentObject(latest) : null,
        };
      },
    };
  }

  private mutationResolvers(): Record<string, (args: Record<string, unknown>, caller: Caller) => unknown> {
    return {
      variableUpsert: (args, caller) => {
        const input = (args.input ?? {}) as Record<string, unknown>;
        const { p, environmentId, serviceId } = this.scoped(input, caller);
        if (typeof input.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(input.name)) throw new ResolverError('Invalid variable name');
        if (typeof input.value !== 'string') throw new ResolverError('Invalid variable value');
        const store = this.store(p, environmentId, serviceId);
        const was = store.get(input.name);
        // A sealed variable stays sealed when its value changes (there is no unsealing).
        store.set(input.name, { value: input.value, sealed: was?.sealed ?? false });
        this.mutations++;
        // By default an upsert deploys the affected service (docs manage-variables); skipDeploys: true suppresses it.
        if (input.skipDeploys !== true && serviceId && this.deploymentList.some((d) => d.serviceId === serviceId && d.environmentId === environmentId)) {
          this.deploy(p, environmentId, serviceId, { reason: 'variableChange' });
        }
        return true;
      },
      variableDelete: (args, caller) => {
        const input = (args.input ?? {}) as Record<string, unknown>;
        const { p, environmentId, serviceId } = this.scoped(input, caller);
        const store = this.store(p, environmentId, serviceId);
        if (!store.delete(String(input.name))) throw new ResolverError('Variable not found');
        this.mutations++;
        return true;
      },
      serviceInstanceRedeploy: (args, caller) => {
        const environmentId = String(args.environmentId ?? '');
        const serviceId = String(args.serviceId ?? '');
        const p = this.projects.find((x) => x.services.some((s) => s.id === serviceId));
        if (!p || !p.environments.some((e) => e.id === environmentId)) throw new ResolverError('ServiceInstance not found');
        if (caller.kind === 'project' && (caller.projectId !== p.id || caller.environmentId !== environmentId)) throw new ResolverError('Not Authorized');
        if (!this.deploymentList.some((d) => d.serviceId === serviceId && d.environmentId === environmentId)) {
          throw new ResolverError('No deployment found for service instance');
        }
        this.deploy(p, environmentId, serviceId, { reason: 'redeploy' });
        return true;
      },
      deploymentRedeploy: (args, caller) => {
        const src = this.deploymentList.find((d) => d.id === args.id);
        if (!src) throw new ResolverError('Deployment not found');
        if (caller.kind === 'project' && (src.projectId !== caller.projectId || src.environmentId !== caller.environmentId)) throw new ResolverError('Not Authorized');
        const p = this.projects.find((x) => x.id === src.projectId)!;
        return this.deploymentObject(this.deploy(p, src.environmentId, src.serviceId, { reason: 'redeploy', redeployedFrom: src.id }));
      },
    };
  }
}


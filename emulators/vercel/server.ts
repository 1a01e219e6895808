import { createHash, randomBytes } from 'node:crypto';
import { HttpEmulator, bearer, type EmuHandler, type EmuRequest, type EmuResponse } from '../server.ts';

/**
 * A loopback emulator of the slice of the Vercel REST API keyrot uses (vercel README "Provider facts"; wire
 * shapes from vercel/sdk 1.28 src/models/*, error shapes from vercel.com/docs/rest-api/errors):
 *
 * - `GET  /v2/user`                              the token's owner
 * - `GET  /v10/projects`                         list the scope's projects (`limit`, `from` = `pagination.next`)
 * - `GET  /v9/projects/:idOrName`                a project
 * - `GET  /v10/projects/:idOrName/env`           list entries (ciphertext values, `pagination.next`)
 * - `GET  /v1/projects/:idOrName/env/:id`        one entry decrypted (no `value` for sensitive)
 * - `POST /v10/projects/:idOrName/env`           create (`?upsert=true`), 201 `{created, failed}`
 * - `PATCH /v9/projects/:idOrName/env/:id`       edit one entry
 * - `DELETE /v9/projects/:idOrName/env/:id`      remove one entry
 * - `GET  /v7/deployments`                       list deployments (projectId, target, state, limit)
 * - `POST /v13/deployments`                      redeploy (`deploymentId`), snapshot of the env
 * - `GET  /v13/deployments/:idOrUrl`             QUEUED → BUILDING → READY | ERROR | CANCELED
 *
 * Every answer carries `X-RateLimit-Limit/Remaining/Reset` (reset in epoch seconds); limits are
 * per endpoint, as Vercel's are, and exceeding one answers 429 `rate_limited` with a `limit` object.
 * Auth failures answer 403 `forbidden` "Not authorized" (Vercel's documented shape for a missing or
 * bad token; the CLI's getUser() maps a 403 to "The specified token is not valid").
 */

export const VERCEL_TARGETS = ['production', 'preview', 'development'] as const;
export type VercelTargetName = (typeof VERCEL_TARGETS)[number];
export type VercelEnvType = 'encrypted' | 'plain' | 'sensitive' | 'system' | 'secret';
/**
 * `readyState` values of a deployment. BLOCKED is part of the enum (vercel/sdk @426eb4b
 * src/models/getdeploymentresponsebody.ts `GetDeploymentResponseBodyDeploymentsReadyState`): a
 * deployment that will not build until someone acts on it, so it never reaches READY by itself.
 */
export type VercelReadyState = 'QUEUED' | 'BUILDING' | 'INITIALIZING' | 'READY' | 'ERROR' | 'CANCELED' | 'BLOCKED';

export interface VercelEnvRecord {
  id: string;
  key: string;
  /** Plaintext, as the emulator stores it (the API never returns it for sensitive entries). */
  value: string;
  type: VercelEnvType;
  target: VercelTargetName[];
  gitBranch?: string;
  comment?: string;
  createdAt: number;
  updatedAt: number;
  createdBy: string;
  updatedBy: string | null;
}

export interface VercelDeploymentRecord {
  id: string;
  projectId: string;
  name: string;
  url: string;
  target: 'production' | null;
  createdAt: number;
  /** The environment the build saw, taken when the deployment was created. */
  snapshot: Record<string, string>;
  /** Where the deployment ends: READY unless a failure was injected (BLOCKED: stops after QUEUED). */
  outcome: 'READY' | 'ERROR' | 'CANCELED' | 'BLOCKED';
  sourceDeploymentId?: string;
  meta: Record<string, string>;
}

interface Project {
  id: string;
  name: string;
  /** Team id, or null for the personal scope. */
  teamId: string | null;
  createdAt: number;
  /** Unique per emulator: the project list's order (newest first) and its continuation token. */
  listedAt: number;
  envs: VercelEnvRecord[];
}

interface Team {
  id: string;
  slug: string;
}

export interface VercelEnvSeed {
  key: string;
  value: string;
  type?: VercelEnvType;
  target?: VercelTargetName[];
  gitBranch?: string;
  comment?: string;
}

export interface VercelProjectSeed {
  id?: string;
  name: string;
  team?: Team;
  envs?: VercelEnvSeed[];
  /** Seed one READY production deployment (default true). */
  productionDeployment?: boolean;
}

export interface VercelEmulatorOptions {
  /** Entries per page of the env list (Vercel paginates with `pagination.next` / `until`). */
  pageSize?: number;
  /** How long a deployment stays QUEUED, then BUILDING (ms). */
  queuedMs?: number;
  buildingMs?: number;
  /** Per-endpoint request budget per window. */
  rateLimit?: { limit: number; windowMs: number };
  /**
   * Whether the env list honours the `until` cursor (default true). The documented request of
   * `GET /v10/projects/{idOrName}/env` has no cursor parameter (vercel/sdk @426eb4b
   * src/models/filterprojectenvsop.ts `FilterProjectEnvsRequest`) and the CLI reads the list in one
   * call (vercel/vercel packages/cli/src/util/env/get-env-records.ts): with false the emulator
   * ignores `until` and keeps answering the first page with its `pagination.next`, so a client
   * that trusts the cursor blindly would loop.
   */
  envListCursor?: boolean;
}

const USER = { id: 'usr_emulator', username: 'keyrot-emulator', email: 'emulator@keyrot.invalid' };

function err(status: number, code: string, message: string, extra: Record<string, unknown> = {}): EmuResponse {
  return { status, body: { error: { code, message, ...extra } } };
}

function newId(prefix: string): string {
  return prefix + randomBytes(12).toString('base64url').replace(/[-_]/g, 'x').slice(0, 16);
}

export class VercelEmulator extends HttpEmulator {
  private readonly tokens = new Map<string, { teams: Set<string> }>();
  private readonly teams = new Map<string, Team>();
  private readonly projects: Project[] = [];
  private readonly deploymentList: VercelDeploymentRecord[] = [];
  private readonly buckets = new Map<string, { count: number; resetAt: number }>();
  private readonly pendingDeployFailures: Array<'ERROR' | 'CANCELED' | 'BLOCKED'> = [];
  private readonly pendingCreateFailures: Array<{ code: string; message: string }> = [];
  private readonly opts: Required<VercelEmulatorOptions>;
  /** Number of env entries created, edited or removed: proves a second identical write is a no-op. */
  mutations = 0;

  constructor(opts: VercelEmulatorOptions = {}) {
    super({
      name: 'vercel',
      notFound: () => err(404, 'not_found', 'The requested path was not found'),
    });
    this.opts = {
      pageSize: opts.pageSize ?? 100,
      queuedMs: opts.queuedMs ?? 150,
      buildingMs: opts.buildingMs ?? 300,
      rateLimit: opts.rateLimit ?? { limit: 1000, windowMs: 60_000 },
      envListCursor: opts.envListCursor ?? true,
    };
    this.routes();
  }

  static async start(opts: VercelEmulatorOptions = {}): Promise<VercelEmulator> {
    const emu = new VercelEmulator(opts);
    await emu.start();
    return emu;
  }

  // ---------------------------------------------------------------- helpers for tests and demo

  /** A valid token, optionally a member of teams (team ids). */
  addToken(token: string, teams: string[] = []): void {
    this.tokens.set(token, { teams: new Set(teams) });
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** Creates a project with entries and (by default) one READY production deployment. */
  seedProject(seed: VercelProjectSeed): { id: string; name: string } {
    if (seed.team) this.teams.set(seed.team.id, seed.team);
    const now = Date.now();
    const project: Project = {
      id: seed.id ?? newId('prj_'),
      name: seed.name,
      teamId: seed.team?.id ?? null,
      createdAt: now,
      listedAt: Math.max(now, (this.projects.at(-1)?.listedAt ?? 0) + 1),
      envs: [],
    };
    for (const e of seed.envs ?? []) {
      const at = this.stamp(project);
      project.envs.push({
        id: newId(''),
        key: e.key,
        value: e.value,
        type: e.type ?? 'encrypted',
        target: [...(e.target ?? ['production', 'preview', 'development'])],
        ...(e.gitBranch ? { gitBranch: e.gitBranch } : {}),
        ...(e.comment ? { comment: e.comment } : {}),
        createdAt: at,
        updatedAt: at,
        createdBy: USER.id,
        updatedBy: null,
      });
    }
    this.projects.push(project);
    if (seed.productionDeployment !== false) {
      // An old deployment that finished long ago: READY at once.
      this.deploymentList.push({
        id: newId('dpl_'),
        projectId: project.id,
        name: project.name,
        url: `${project.name}-${randomBytes(4).toString('hex')}.vercel.app`,
        target: 'production',
        createdAt: now - 86_400_000,
        snapshot: this.snapshot(project, 'production'),
        outcome: 'READY',
        meta: {},
      });
    }
    return { id: project.id, name: project.name };
  }

  /**
   * Sets an entry directly (bypassing the API): the entry with the same key and targets gets the
   * value, or a new entry is added. Returns its id.
   */
  putEnv(projectIdOrName: string, seed: VercelEnvSeed): string {
    const p = this.projects.find((x) => x.id === projectIdOrName || x.name === projectIdOrName);
    if (!p) throw new Error(`vercel emulator: no project ${projectIdOrName}`);
    const target = [...(seed.target ?? ['production', 'preview', 'development'])];
    const same = p.envs.find((e) => e.key === seed.key && (e.gitBranch ?? '') === (seed.gitBranch ?? '') && e.target.join() === target.join());
    const at = this.stamp(p);
    if (same) {
      same.value = seed.value;
      if (seed.type) same.type = seed.type;
      same.updatedAt = at;
      return same.id;
    }
    const e: VercelEnvRecord = {
      id: newId(''),
      key: seed.key,
      value: seed.value,
      type: seed.type ?? 'encrypted',
      target,
      ...(seed.gitBranch ? { gitBranch: seed.gitBranch } : {}),
      ...(seed.comment ? { comment: seed.comment } : {}),
      createdAt: at,
      updatedAt: at,
      createdBy: USER.id,
      updatedBy: null,
    };
    p.envs.push(e);
    return e.id;
  }

  /** The entries of a project (plaintext, deep copies), optionally only one key's. */
  getEnv(projectIdOrName: string, key?: string): VercelEnvRecord[] {
    const p = this.projects.find((x) => x.id === projectIdOrName || x.name === projectIdOrName);
    if (!p) throw new Error(`vercel emulator: no project ${projectIdOrName}`);
    return structuredClone(p.envs.filter((e) => key === undefined || e.key === key));
  }

  /** The project's deployments, newest first, with their env snapshot and current state. */
  deployments(projectIdOrName: string): Array<VercelDeploymentRecord & { readyState: VercelReadyState }> {
    const p = this.projects.find((x) => x.id === projectIdOrName || x.name === projectIdOrName);
    if (!p) throw new Error(`vercel emulator: no project ${projectIdOrName}`);
    return this.deploymentList
      .filter((d) => d.projectId === p.id)
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((d) => ({ ...structuredClone(d), readyState: this.stateOf(d) }));
  }

  /** The next deployment created ends in ERROR (a failed build), CANCELED, or stays BLOCKED after QUEUED. */
  failNextDeploy(state: 'ERROR' | 'CANCELED' | 'BLOCKED' = 'ERROR'): void {
    this.pendingDeployFailures.push(state);
  }

  /**
   * The next env create answers 201 with a non-empty `failed` list and creates nothing: the
   * partial failure Vercel reports inside a success status (createprojectenvop.ts).
   */
  failNextCreate(error: { code: string; message: string } = { code: 'ENV_CREATION_FAILED', message: 'The environment variable could not be created' }): void {
    this.pendingCreateFailures.push(error);
  }

  /** The next matching request answers Vercel's 429 (headers + body), as if the endpoint's budget ran out. */
  rateLimitNext(opts: { path?: string | RegExp; method?: string; resetInSec?: number; times?: number } = {}): void {
    const reset = Math.ceil(Date.now() / 1000) + (opts.resetInSec ?? 1);
    this.server.failNext({
      path: opts.path,
      method: opts.method,
      times: opts.times,
      status: 429,
      headers: { 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
      body: {
        error: {
          code: 'rate_limited',
          message: `The rate limit of 100 exceeded for 'api-projects-env'. Try again in ${opts.resetInSec ?? 1} seconds`,
          limit: { remaining: 0, reset, resetMs: reset * 1000, total: 100 },
        },
      },
    });
  }

  // ---------------------------------------------------------------- internals

  private stateOf(d: VercelDeploymentRecord): VercelReadyState {
    const age = Date.now() - d.createdAt;
    if (age < this.opts.queuedMs) return 'QUEUED';
    if (d.outcome === 'BLOCKED') return 'BLOCKED';
    if (age < this.opts.queuedMs + this.opts.buildingMs) return 'BUILDING';
    return d.outcome;
  }

  /** A creation time unique within the project (the env list pages by createdAt). */
  private stamp(p: Project): number {
    return Math.max(Date.now(), ...p.envs.map((e) => e.createdAt + 1));
  }

  /** What a build for `target` sees: every entry covering it (branch-specific ones excluded). */
  private snapshot(p: Project, target: VercelTargetName): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of p.envs) if (e.target.includes(target) && !e.gitBranch) out[e.key] = e.value;
    return out;
  }

  /** Ciphertext-looking stand-in for what the list endpoint returns instead of values. */
  private cipher(e: VercelEnvRecord): string {
    return 'eyJ2IjoxfQ.' + createHash('sha256').update(`${e.id}:${e.value}`).digest('base64url');
  }

  /**
   * The env object as the API renders it; `decrypted` only from the v1 single-entry read.
   * Every shape except that read carries a `value` string, sensitive entries included: the list,
   * create and edit responses declare `value: string` as required (vercel/sdk @426eb4b
   * src/models/filterprojectenvsop.ts `Envs`, createprojectenvop.ts `Created1/2`,
   * editprojectenvop.ts `EditProjectEnvResponseBody`), while the v1 read has a shape without
   * `value` for what may not be read (getprojectenvop.ts `GetProjectEnvResponseBody1`). A
   * sensitive entry's `value` is therefore ciphertext here, never the plaintext.
   */
  private render(e: VercelEnvRecord, decrypted: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {
      type: e.type,
      id: e.id,
      key: e.key,
      target: e.target,
      configurationId: null,
      createdAt: e.createdAt,
      updatedAt: e.updatedAt,
      createdBy: e.createdBy,
      updatedBy: e.updatedBy,
      customEnvironmentIds: [],
      securityIssues: [],
      ...(e.gitBranch ? { gitBranch: e.gitBranch } : {}),
      ...(e.comment !== undefined ? { comment: e.comment } : {}),
    };
    // Sensitive values are write-only: the v1 read gives no value at all, whatever `decrypt` says
    // (vercel/sdk getprojectenvop); every other shape gives ciphertext.
    if (e.type === 'sensitive') {
      if (!decrypted) out.value = this.cipher(e);
      out.decrypted = false;
    } else if (decrypted || e.type === 'plain' || e.type === 'system') {
      out.value = e.value;
      out.decrypted = true;
    } else {
      out.value = this.cipher(e);
      out.decrypted = false;
    }
    return out;
  }

  private scope(req: EmuRequest, token: string): { teamId: string | null } | EmuResponse {
    const teamId = req.query.get('teamId');
    const slug = req.query.get('slug');
    if (!teamId && !slug) return { teamId: null };
    const team = [...this.teams.values()].find((t) => t.id === teamId || t.slug === slug);
    const member = team && this.tokens.get(token)?.teams.has(team.id);
    if (!team || !member) {
      const name = teamId ?? slug;
      return err(
        403,
        'forbidden',
        `Not authorized: Trying to access resource under scope "${name}". You must re-authenticate to this scope or use a token with access to this scope.`,
      );
    }
    return { teamId: team.id };
  }

  private project(req: EmuRequest, teamId: string | null): Project | EmuResponse {
    const idOrName = req.params.idOrName ?? '';
    const p = this.projects.find((x) => (x.id === idOrName || x.name === idOrName) && x.teamId === teamId);
    return p ?? err(404, 'not_found', 'Project not found');
  }

  /** Auth, team scope and the per-endpoint rate limit around every route. */
  private guarded(method: string, pattern: string, handler: (req: EmuRequest, teamId: string | null) => EmuResponse): void {
    const wrapped: EmuHandler = (req) => {
      const bucketKey = `${method} ${pattern}`;
      const now = Date.now();
      let b = this.buckets.get(bucketKey);
      if (!b || now >= b.resetAt) {
        b = { count: 0, resetAt: now + this.opts.rateLimit.windowMs };
        this.buckets.set(bucketKey, b);
      }
      b.count++;
      const resetSec = Math.ceil(b.resetAt / 1000);
      const limit = this.opts.rateLimit.limit;
      const headers = {
        'x-ratelimit-limit': String(limit),
        'x-ratelimit-remaining': String(Math.max(0, limit - b.count)),
        'x-ratelimit-reset': String(resetSec),
      };
      let out: EmuResponse;
      const token = bearer(req);
      if (b.count > limit) {
        out = err(429, 'rate_limited', `The rate limit of ${limit} exceeded for '${bucketKey}'. Try again in ${Math.max(1, resetSec - Math.floor(now / 1000))} seconds`, {
          limit: { remaining: 0, reset: resetSec, resetMs: b.resetAt, total: limit },
        });
      } else if (!token) {
        out = err(403, 'forbidden', 'The request is missing an authentication token', { missingToken: true });
      } else if (!this.tokens.has(token)) {
        out = err(403, 'forbidden', 'Not authorized', { invalidToken: true });
      } else {
        const scope = this.scope(req, token);
        out = 'status' in scope ? scope : handler(req, scope.teamId);
      }
      return { ...out, headers: { ...headers, ...out.headers } };
    };
    this.server.route(method, pattern, wrapped);
  }

  private routes(): void {
    this.guarded('GET', '/v2/user', () => ({ status: 200, body: { user: { ...USER, name: 'keyrot emulator' } } }));

    // Newest first, `limit` a page (default 20, at most 100); `pagination.next` is the token to pass
    // back as `from` (vercel/sdk src/funcs/projectsGetProjects.ts: GET /v10/projects, `from`, `limit`).
    this.guarded('GET', '/v10/projects', (req, teamId) => {
      const limit = Math.min(100, Math.max(1, Number(req.query.get('limit') ?? 20) || 20));
      const from = Number(req.query.get('from') ?? Infinity);
      const inScope = this.projects.filter((p) => p.teamId === teamId && p.listedAt < from).sort((a, b) => b.listedAt - a.listedAt);
      const page = inScope.slice(0, limit);
      const more = inScope.length > page.length;
      return {
        status: 200,
        body: {
          projects: page.map((p) => ({ id: p.id, name: p.name, accountId: p.teamId ?? USER.id, createdAt: p.createdAt, updatedAt: p.listedAt, framework: null })),
          pagination: { count: page.length, next: more ? page.at(-1)!.listedAt : null, prev: null },
        },
      };
    });

    this.guarded('GET', '/v9/projects/:idOrName', (req, teamId) => {
      const p = this.project(req, teamId);
      if ('status' in p) return p;
      return { status: 200, body: { id: p.id, name: p.name, accountId: p.teamId ?? USER.id, createdAt: p.createdAt, updatedAt: p.createdAt, framework: null } };
    });

    this.guarded('GET', '/v10/projects/:idOrName/env', (req, teamId) => {
      const p = this.project(req, teamId);
      if ('status' in p) return p;
      // Newest first; `until` is the createdAt cursor of the page's last entry (pagination.ts: "Timestamp
      // that must be used to request the next page"). `decrypt` is deprecated and ignored (SDK filterprojectenvsop).
      // createdAt values are unique per project here (see stamp()), so the cursor is exact.
      const until = this.opts.envListCursor ? Number(req.query.get('until') ?? Infinity) : Infinity;
      const sorted = [...p.envs].sort((a, b) => b.createdAt - a.createdAt).filter((e) => e.createdAt < until);
      const page = sorted.slice(0, this.opts.pageSize);
      const more = sorted.length > page.length;
      return {
        status: 200,
        body: {
          envs: page.map((e) => this.render(e, false)),
          pagination: { count: page.length, next: more ? page.at(-1)!.createdAt : null, prev: null },
        },
      };
    });

    this.guarded('GET', '/v1/projects/:idOrName/env/:id', (req, teamId) => {
      const p = this.project(req, teamId);
      if ('status' in p) return p;
      const e = p.envs.find((x) => x.id === req.params.id);
      if (!e) return err(404, 'not_found', 'Environment Variable not found');
      return { status: 200, body: this.render(e, true) };
    });

    this.guarded('POST', '/v10/projects/:idOrName/env', (req, teamId) => {
      const p = this.project(req, teamId);
      if ('status' in p) return p;
      const many = Array.isArray(req.body);
      const items = (many ? req.body : [req.body]) as Array<Record<string, unknown>>;
      const injected = this.pendingCreateFailures.shift();
      if (injected) {
        // Partial failure inside a 201: nothing created, `failed` names the key (and echoes the
        // value, as the error schema allows: an adapter must never print it).
        return {
          status: 201,
          body: {
            created: many ? [] : undefined,
            failed: items.map((it) => ({ error: { ...injected, key: it.key, envVarKey: it.key, value: it.value, target: it.target, project: p.id } })),
          },
        };
      }
      const upsert = req.query.get('upsert') === 'true';
      const created: unknown[] = [];
      const failed: unknown[] = [];
      for (const it of items) {
        const result = this.createOne(p, it, upsert);
        if ('error' in result) failed.push(result);
        else created.push(result.env);
      }
      if (!many && failed.length) {
        const e = (failed[0] as { error: { code: string; message: string } }).error;
        return err(400, e.code, e.message, { key: items[0]?.key });
      }
      return { status: 201, body: { created: many ? created : created[0], failed } };
    });

    this.guarded('PATCH', '/v9/projects/:idOrName/env/:id', (req, teamId) => {
      const p = this.project(req, teamId);
      if ('status' in p) return p;
      const e = p.envs.find((x) => x.id === req.params.id);
      if (!e) return err(404, 'not_found', 'Environment Variable not found');
      const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
      if (body.type !== undefined && body.type !== e.type) {
        if (body.type === 'sensitive') return err(400, 'bad_request', 'An existing Environment Variable cannot be changed to Sensitive. Remove it and add it again.');
        if (e.type === 'sensitive') return err(400, 'bad_request', 'A Sensitive Environment Variable cannot be changed to another type.');
        if (!['encrypted', 'plain'].includes(String(body.type))) return err(400, 'bad_request', `Invalid type "${String(body.type)}"`);
      }
      if (body.value !== undefined && typeof body.value !== 'string') return err(400, 'bad_request', '`value` must be a string');
      let target = e.target;
      if (body.target !== undefined) {
        const t = this.targets(body.target);
        if (!t) return err(400, 'bad_request', '`target` must be a non-empty list of production, preview, development');
        target = t;
        const clash = p.envs.find((o) => o.id !== e.id && o.key === e.key && (o.gitBranch ?? '') === (e.gitBranch ?? '') && o.target.some((x) => t.includes(x)));
        if (clash) return err(400, 'ENV_CONFLICT', `A variable with the name \`${e.key}\` already exists for the target ${clash.target.join(',')}`);
      }
      if ((body.type ?? e.type) === 'sensitive' && target.includes('development')) {
        return err(400, 'bad_request', 'Sensitive Environment Variables cannot be used in the Development environment');
      }
      if (body.value !== undefined) e.value = body.value as string;
      if (body.type !== undefined) e.type = body.type as VercelEnvType;
      if (typeof body.comment === 'string') e.comment = body.comment;
      e.target = target;
      e.updatedAt = Math.max(Date.now(), e.updatedAt + 1);
      e.updatedBy = USER.id;
      this.mutations++;
      return { status: 200, body: this.render(e, false) };
    });

    this.guarded('DELETE', '/v9/projects/:idOrName/env/:id', (req, teamId) => {
      const p = this.project(req, teamId);
      if ('status' in p) return p;
      const i = p.envs.findIndex((x) => x.id === req.params.id);
      if (i < 0) return err(404, 'not_found', 'Environment Variable not found');
      const [e] = p.envs.splice(i, 1);
      this.mutations++;
      return { status: 200, body: this.render(e!, false) };
    });

    this.guarded('GET', '/v7/deployments', (req, teamId) => {
      const projectId = req.query.get('projectId');
      const target = req.query.get('target');
      const state = req.query.get('state');
      const limit = Math.min(100, Number(req.query.get('limit') ?? 20) || 20);
      const inScope = new Set(this.projects.filter((p) => p.teamId === teamId && (!projectId || p.id === projectId || p.name === projectId)).map((p) => p.id));
      const all = this.deploymentList
        .filter((d) => inScope.has(d.projectId))
        .filter((d) => !target || d.target === target)
        .map((d) => ({ d, s: this.stateOf(d) }))
        .filter((x) => !state || state.split(',').includes(x.s))
        .sort((a, b) => b.d.createdAt - a.d.createdAt);
      const page = all.slice(0, limit);
      return {
        status: 200,
        body: {
          deployments: page.map(({ d, s }) => ({
            uid: d.id,
            name: d.name,
            projectId: d.projectId,
            url: d.url,
            created: d.createdAt,
            createdAt: d.createdAt,
            state: s,
            readyState: s,
            type: 'LAMBDAS',
            target: d.target,
            creator: { uid: USER.id, username: USER.username },
            meta: d.meta,
            ...(s === 'READY' ? { ready: d.createdAt + this.opts.queuedMs + this.opts.buildingMs, aliasAssigned: d.target === 'production' } : {}),
          })),
          pagination: { count: page.length, next: all.length > limit ? (page.at(-1)?.d.createdAt ?? null) : null, prev: null },
        },
      };
    });

    this.guarded('POST', '/v13/deployments', (req, teamId) => {
      const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
      if (typeof body.name !== 'string' || !body.name) return err(400, 'bad_request', 'Invalid request: missing required property `name`.');
      if (typeof body.deploymentId !== 'string') {
        return err(400, 'bad_request', 'This emulator only supports redeploys: send `deploymentId`.');
      }
      const src = this.deploymentList.find((d) => d.id === body.deploymentId);
      const project = src && this.projects.find((p) => p.id === src.projectId && p.teamId === teamId);
      if (!src || !project) return err(404, 'not_found', 'Deployment not found');
      const target = body.target === 'production' ? 'production' : null;
      const snapshot = this.snapshot(project, target ?? 'preview');
      // Without forceNew=1 an identical redeploy is deduplicated to the existing one (SDK createdeployment forceNew).
      if (req.query.get('forceNew') !== '1') {
        const same = this.deploymentList.find(
          (d) => d.sourceDeploymentId === src.id && d.target === target && this.stateOf(d) !== 'ERROR' && JSON.stringify(d.snapshot) === JSON.stringify(snapshot),
        );
        if (same) return { status: 200, body: this.renderDeployment(same) };
      }
      const d: VercelDeploymentRecord = {
        id: newId('dpl_'),
        projectId: project.id,
        name: project.name,
        url: `${project.name}-${randomBytes(4).toString('hex')}.vercel.app`,
        target,
        createdAt: Date.now(),
        snapshot,
        outcome: this.pendingDeployFailures.shift() ?? 'READY',
        sourceDeploymentId: src.id,
        meta: (body.meta && typeof body.meta === 'object' ? body.meta : {}) as Record<string, string>,
      };
      this.deploymentList.push(d);
      return { status: 200, body: this.renderDeployment(d) };
    });

    this.guarded('GET', '/v13/deployments/:idOrUrl', (req, teamId) => {
      const key = req.params.idOrUrl;
      const d = this.deploymentList.find((x) => x.id === key || x.url === key);
      const project = d && this.projects.find((p) => p.id === d.projectId && p.teamId === teamId);
      if (!d || !project) return err(404, 'not_found', 'The deployment was not found');
      return { status: 200, body: this.renderDeployment(d) };
    });
  }

  private renderDeployment(d: VercelDeploymentRecord): Record<string, unknown> {
    const s = this.stateOf(d);
    return {
      id: d.id,
      url: d.url,
      name: d.name,
      projectId: d.projectId,
      target: d.target,
      readyState: s,
      status: s,
      createdAt: d.createdAt,
      buildingAt: d.createdAt + this.opts.queuedMs,
      ...(s === 'READY' ? { ready: d.createdAt + this.opts.queuedMs + this.opts.buildingMs } : {}),
      aliasAssigned: s === 'READY' && d.target === 'production',
      ...(s === 'ERROR' ? { errorCode: 'BUILD_FAILED', errorMessage: 'Command "npm run build" exited with 1' } : {}),
      meta: d.meta,
      inspectorUrl: `https://vercel.com/emulator/${d.name}/${d.id}`,
    };
  }

  private targets(raw: unknown): VercelTargetName[] | null {
    const list = typeof raw === 'string' ? [raw] : raw;
    if (!Array.isArray(list) || list.length === 0) return null;
    if (!list.every((t) => (VERCEL_TARGETS as readonly string[]).includes(t))) return null;
    return [...new Set(list as VercelTargetName[])];
  }

  private createOne(
    p: Project,
    it: Record<string, unknown>,
    upsert: boolean,
  ): { env: Record<string, unknown> } | { error: Record<string, unknown> } {
    const fail = (code: string, message: string) => ({ error: { code, message, key: it.key, envVarKey: it.key, target: it.target, project: p.id } });
    if (typeof it.key !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(it.key)) return fail('bad_request', 'Invalid key: letters, digits and underscores, not starting with a digit');
    if (typeof it.value !== 'string') return fail('bad_request', 'Invalid request: missing required property `value`.');
    const type = String(it.type ?? '');
    if (!['encrypted', 'plain', 'sensitive', 'system'].includes(type)) return fail('bad_request', `Invalid type "${type}"`);
    const target = this.targets(it.target);
    if (!target) return fail('bad_request', '`target` must be a non-empty list of production, preview, development');
    if (type === 'sensitive' && target.includes('development')) {
      return fail('bad_request', 'Sensitive Environment Variables cannot be used in the Development environment');
    }
    const branch = typeof it.gitBranch === 'string' ? it.gitBranch : '';
    const overlapping = p.envs.filter((o) => o.key === it.key && (o.gitBranch ?? '') === branch && o.target.some((x) => target.includes(x)));
    if (overlapping.length) {
      const exact = overlapping.length === 1 && overlapping[0]!.target.length === target.length && overlapping[0]!.target.every((x) => target.includes(x));
      if (upsert && exact) {
        // upsert=true updates an entry with the same key and the same targets (docs create-one-or-more-environment-variables); a partial
        // overlap is ENV_CONFLICT (observed by getsentry/sentry#118490).
        const e = overlapping[0]!;
        e.value = it.value;
        e.updatedAt = Math.max(Date.now(), e.updatedAt + 1);
        e.updatedBy = USER.id;
        this.mutations++;
        return { env: this.render(e, false) };
      }
      return fail(
        upsert ? 'ENV_CONFLICT' : 'ENV_ALREADY_EXISTS',
        `A variable with the name \`${String(it.key)}\` already exists for the target ${overlapping[0]!.target.join(',')}${branch ? ` on branch ${branch}` : ''}`,
      );
    }
    const now = this.stamp(p);
    const e: VercelEnvRecord = {
      id: newId(''),
      key: it.key,
      value: it.value,
      type: type as VercelEnvType,
      target,
      ...(branch ? { gitBranch: branch } : {}),
      ...(typeof it.comment === 'string' ? { comment: it.comment } : {}),
      createdAt: now,
      updatedAt: now,
      createdBy: USER.id,
      updatedBy: null,
    };
    p.envs.push(e);
    this.mutations++;
    return { env: this.render(e, false) };
  }
}

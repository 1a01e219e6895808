import { randomBytes } from 'node:crypto';
import { HttpEmulator, bearer, type EmuRequest, type EmuResponse } from '../server.ts';
import { RateWindows, resetSeconds, type WindowState } from '../rate-window.ts';

/**
 * A loopback emulator of the Render REST API (`https://api.render.com/v1`) parts keyrot uses:
 * services, their environment variables and deploys. Sources: Render's OpenAPI as generated into
 * render-oss/cli pkg/client (paths, envVar/envVarWithCursor, deploy and deployStatus, error),
 * api-docs.render.com (pagination, rate limiting), and the answers recorded against the real API
 * in render-oss/terraform-provider-render cassettes. Faithful where a client can tell:
 *
 * - `Authorization: Bearer <API key>`; 401 `{"message":"unauthorized"}`; errors `{"id"?, "message"}`;
 *   a service the key cannot see is `404 {"message":"not found: <id>"}` (recorded shape).
 * - Lists page with `limit` (default 20, max 100) and `cursor` (the last item's), each item
 *   `{cursor, <resource>}`.
 * - `GET/PUT/DELETE /services/{id}/env-vars/{key}`: one variable (PUT is an upsert, DELETE 204);
 *   `PUT /services/{id}/env-vars` REPLACES every variable of the service (never what keyrot uses).
 * - `POST /services/{id}/deploys` → 201 with the deploy, or 202 with no body when the service is
 *   busy (the deploy is queued: `GET /services/{id}/deploys?status=queued` finds it, as the Render
 *   CLI does). A deploy goes queued → build_in_progress (not for `deployMode: deploy_only`) →
 *   update_in_progress → live (or build_failed / update_failed), each phase `phaseMs`; the live
 *   one before it becomes `deactivated`. A deploy runs the environment as it is when it is triggered.
 * - Rate limits per API key (`Ratelimit-Limit/Remaining/Reset`, the reset in seconds as recorded):
 *   GET 400/min, other writes 30/min, deploys 10/min per service; 429 past them.
 */

type Status = 'queued' | 'build_in_progress' | 'update_in_progress' | 'live' | 'deactivated' | 'build_failed' | 'update_failed' | 'canceled';
export type RenderServiceType = 'web_service' | 'private_service' | 'background_worker' | 'static_site' | 'cron_job';

interface Deploy {
  id: string;
  createdAt: number;
  /** When it leaves the queue (the previous deploy's end, or its creation). */
  startAt: number;
  build: boolean;
  fails: 'build_failed' | 'update_failed' | undefined;
  trigger: 'api' | 'new_commit';
  /** The environment the deploy runs. */
  env: Record<string, string>;
}

interface Service {
  id: string;
  name: string;
  type: RenderServiceType;
  ownerId: string;
  suspended: boolean;
  createdAt: number;
  env: Map<string, string>;
  deploys: Deploy[];
}

export interface RenderDeployView {
  id: string;
  status: Status;
  build: boolean;
  env: Record<string, string>;
}

export interface RenderEmulatorOptions {
  /** Length of each deploy phase in ms (default 0: live at once). */
  phaseMs?: number;
  /**
   * Requests per minute (Render's published limits by default: 400 GET, 30 other writes, 10
   * deploys per service). A suite that rotates one service dozens of times a minute raises them;
   * render.test.ts checks the published ones.
   */
  limits?: { reads?: number; writes?: number; deploys?: number };
}

const err = (status: number, message: string, id?: string): EmuResponse => ({ status, body: id ? { id, message } : { message } });
const iso = (ms: number) => new Date(ms).toISOString();
const rid = (prefix: string) => `${prefix}-${randomBytes(10).toString('hex').slice(0, 20)}`;
const isResponse = (x: unknown): x is EmuResponse => typeof x === 'object' && x !== null && typeof (x as { status?: unknown }).status === 'number';

export class RenderEmulator extends HttpEmulator {
  private readonly services = new Map<string, Service>();
  /** API key → owners (workspaces) it reaches; undefined = all. */
  private readonly tokens = new Map<string, Set<string> | undefined>();
  private readonly failDeploys: Array<{ service?: string; status: 'build_failed' | 'update_failed' }> = [];
  private readonly reads: RateWindows;
  private readonly writes: RateWindows;
  private readonly deployWindows: RateWindows;
  private readonly phaseMs: number;
  /** Env-var writes that reached a service: proves a no-op. */
  private readonly envWrites = new Map<string, number>();

  constructor(opts: RenderEmulatorOptions = {}) {
    super({ name: 'render', notFound: (req) => err(404, `not found: ${req.path}`) });
    this.phaseMs = opts.phaseMs ?? 0;
    this.reads = new RateWindows(opts.limits?.reads ?? 400, 60_000);
    this.writes = new RateWindows(opts.limits?.writes ?? 30, 60_000);
    this.deployWindows = new RateWindows(opts.limits?.deploys ?? 10, 60_000);
    this.routes();
  }

  // ---- helpers for tests and the demo -------------------------------------------------------

  /** An API key (`rnd_` + random, generated when omitted) reaching `owners` (default: every workspace). */
  addToken(opts: { token?: string; owners?: string[] } = {}): string {
    const token = opts.token ?? `rnd_${randomBytes(16).toString('base64url')}`;
    this.tokens.set(token, opts.owners ? new Set(opts.owners) : undefined);
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** A service with its variables and a first live deploy running them. */
  seedService(opts: { id?: string; name?: string; type?: RenderServiceType; owner?: string; env?: Record<string, string>; suspended?: boolean } = {}): string {
    const id = opts.id ?? rid('srv');
    const now = Date.now() - 3_600_000;
    const env = new Map(Object.entries(opts.env ?? {}));
    const first: Deploy = { id: rid('dep'), createdAt: now, startAt: now, build: true, fails: undefined, trigger: 'new_commit', env: Object.fromEntries(env) };
    this.services.set(id, {
      id,
      name: opts.name ?? id,
      type: opts.type ?? 'web_service',
      ownerId: opts.owner ?? 'tea-keyrotdemo',
      suspended: opts.suspended ?? false,
      createdAt: now,
      env,
      deploys: [first],
    });
    return id;
  }

  /** Sets (null: deletes) a variable directly, as someone in the dashboard would. */
  setVar(service: string, key: string, value: string | null): void {
    const s = this.mustService(service);
    if (value === null) s.env.delete(key);
    else s.env.set(key, value);
  }

  vars(service: string): Record<string, string> {
    return Object.fromEntries(this.mustService(service).env);
  }

  envWriteCount(service: string): number {
    return this.envWrites.get(service) ?? 0;
  }

  /** Deploys, oldest first, with their status now and the environment they run. */
  deploys(service: string): RenderDeployView[] {
    const s = this.mustService(service);
    return s.deploys.map((d) => ({ id: d.id, status: this.status(s, d), build: d.build, env: { ...d.env } }));
  }

  /** The environment the live deploy runs. */
  runningEnv(service: string): Record<string, string> | undefined {
    return this.deploys(service).find((d) => d.status === 'live')?.env;
  }

  /** The next deploy (of `service`, or any) fails in its build or update phase. */
  failNextDeploy(service?: string, status: 'build_failed' | 'update_failed' = 'update_failed'): void {
    this.failDeploys.push({ service, status });
  }

  /** Leaves only `remaining` GET requests in the key's current window. */
  setReadsRemaining(token: string, remaining: number): void {
    this.reads.setRemaining(token, remaining);
  }

  /** The next request(s) answer Render's 429 with its headers, the window spent. */
  failNextWithRateLimit(times = 1): void {
    this.server.failNext({
      times,
      status: 429,
      headers: { 'Ratelimit-Limit': '30', 'Ratelimit-Remaining': '0', 'Ratelimit-Reset': '4' },
      body: { message: 'rate limit exceeded' },
    });
  }

  // ---- internals ------------------------------------------------------------------------------

  private mustService(id: string): Service {
    const s = this.services.get(id);
    if (!s) throw new Error(`render emulator: no service ${id}`);
    return s;
  }

  /** A deploy's status now, from its timestamps: queue, build, update, then live until superseded. */
  private status(s: Service, d: Deploy): Status {
    const now = Date.now();
    if (now < d.startAt) return 'queued';
    const buildEnd = d.startAt + (d.build ? this.phaseMs : 0);
    if (d.build && now < buildEnd) return 'build_in_progress';
    if (d.fails === 'build_failed') return 'build_failed';
    if (now < buildEnd + this.phaseMs) return 'update_in_progress';
    if (d.fails) return d.fails;
    // Superseded by a deploy triggered after it (list order: two may share a millisecond) that went live.
    const later = s.deploys.slice(s.deploys.indexOf(d) + 1).filter((x) => !x.fails && this.endOf(x) <= now);
    return later.length ? 'deactivated' : 'live';
  }

  private endOf(d: Deploy): number {
    return d.startAt + (d.build ? this.phaseMs : 0) + this.phaseMs;
  }

  private deployJson(s: Service, d: Deploy): Record<string, unknown> {
    const status = this.status(s, d);
    const done = !['queued', 'build_in_progress', 'update_in_progress'].includes(status);
    return {
      id: d.id,
      commit: { id: 'a'.repeat(40), message: 'keyrot emulator commit', createdAt: iso(d.createdAt) },
      status,
      trigger: d.trigger,
      createdAt: iso(d.createdAt),
      startedAt: Date.now() >= d.startAt ? iso(d.startAt) : undefined,
      updatedAt: iso(Math.min(Date.now(), this.endOf(d))),
      finishedAt: done ? iso(this.endOf(d)) : null,
    };
  }

  private serviceJson(s: Service): Record<string, unknown> {
    return {
      id: s.id,
      name: s.name,
      type: s.type,
      ownerId: s.ownerId,
      slug: s.name,
      suspended: s.suspended ? 'suspended' : 'not_suspended',
      suspenders: s.suspended ? ['user'] : [],
      autoDeploy: 'yes',
      branch: 'main',
      repo: 'https://github.com/acme/app',
      rootDir: '',
      notifyOnFail: 'default',
      dashboardUrl: `https://dashboard.render.com/web/${s.id}`,
      createdAt: iso(s.createdAt),
      updatedAt: iso(s.createdAt),
      serviceDetails: { region: 'oregon', plan: 'starter', numInstances: 1 },
    };
  }

  /** Credentials, then the rate-limit window of the request's kind, with Render's headers. */
  private guard(handler: (req: EmuRequest, owners: Set<string> | undefined) => EmuResponse) {
    return (req: EmuRequest): EmuResponse => {
      const token = bearer(req);
      if (!token || !this.tokens.has(token)) return err(401, 'unauthorized');
      const deploy = req.method === 'POST' && /\/deploys$/.test(req.path);
      const w = deploy ? this.deployWindows.take(`${token}:${req.params.id}`) : (req.method === 'GET' ? this.reads : this.writes).take(token);
      const headers = rateHeaders(w);
      if (!w.ok) return { ...err(429, 'rate limit exceeded'), headers };
      const out = handler(req, this.tokens.get(token));
      return { ...out, headers: { ...headers, ...out.headers } };
    };
  }

  private service(req: EmuRequest, owners: Set<string> | undefined): Service | EmuResponse {
    const s = this.services.get(req.params.id!);
    if (!s || (owners && !owners.has(s.ownerId))) return err(404, `not found: ${req.params.id}`);
    return s;
  }

  private routes(): void {
    const s = this.server;
    s.route(
      'GET',
      '/v1/services',
      this.guard((req, owners) => {
        const all = [...this.services.values()].filter((x) => !owners || owners.has(x.ownerId));
        return page(req, all.map((x) => ({ key: x.id, item: { service: this.serviceJson(x) } })));
      }),
    );
    s.route('GET', '/v1/services/:id', this.guard((req, o) => this.withService(req, o, (x) => ({ status: 200, body: this.serviceJson(x) }))));
    s.route(
      'GET',
      '/v1/services/:id/env-vars',
      this.guard((req, o) => this.withService(req, o, (x) => page(req, [...x.env].map(([key, value]) => ({ key, item: { envVar: { key, value } } }))))),
    );
    s.route('PUT', '/v1/services/:id/env-vars', this.guard((req, o) => this.withService(req, o, (x) => this.replaceAll(req, x))));
    s.route(
      'GET',
      '/v1/services/:id/env-vars/:key',
      this.guard((req, o) =>
        this.withService(req, o, (x) => {
          const value = x.env.get(req.params.key!);
          return value === undefined ? err(404, `not found: ${req.params.key}`) : { status: 200, body: { key: req.params.key, value } };
        }),
      ),
    );
    s.route('PUT', '/v1/services/:id/env-vars/:key', this.guard((req, o) => this.withService(req, o, (x) => this.upsert(req, x))));
    s.route(
      'DELETE',
      '/v1/services/:id/env-vars/:key',
      this.guard((req, o) =>
        this.withService(req, o, (x) => {
          if (!x.env.delete(req.params.key!)) return err(404, `not found: ${req.params.key}`);
          this.envWrites.set(x.id, this.envWriteCount(x.id) + 1);
          return { status: 204 };
        }),
      ),
    );
    s.route('POST', '/v1/services/:id/deploys', this.guard((req, o) => this.withService(req, o, (x) => this.trigger(req, x))));
    s.route(
      'GET',
      '/v1/services/:id/deploys',
      this.guard((req, o) =>
        this.withService(req, o, (x) => {
          const wanted = req.query.getAll('status');
          const list = [...x.deploys].reverse().filter((d) => !wanted.length || wanted.includes(this.status(x, d)));
          return page(req, list.map((d) => ({ key: d.id, item: { deploy: this.deployJson(x, d) } })));
        }),
      ),
    );
    s.route(
      'GET',
      '/v1/services/:id/deploys/:deployId',
      this.guard((req, o) =>
        this.withService(req, o, (x) => {
          const d = x.deploys.find((y) => y.id === req.params.deployId);
          return d ? { status: 200, body: this.deployJson(x, d) } : err(404, `not found: ${req.params.deployId}`);
        }),
      ),
    );
  }

  private withService(req: EmuRequest, owners: Set<string> | undefined, fn: (s: Service) => EmuResponse): EmuResponse {
    const x = this.service(req, owners);
    return isResponse(x) ? x : fn(x);
  }

  private upsert(req: EmuRequest, x: Service): EmuResponse {
    const b = req.body as { value?: unknown; generateValue?: unknown } | undefined;
    let value: string;
    if (b && typeof b.value === 'string') value = b.value;
    else if (b && b.generateValue === true) value = randomBytes(24).toString('base64url');
    else return err(400, 'must provide either value or generateValue', 'invalid_request');
    x.env.set(req.params.key!, value);
    this.envWrites.set(x.id, this.envWriteCount(x.id) + 1);
    return { status: 200, body: { key: req.params.key, value } };
  }

  private replaceAll(req: EmuRequest, x: Service): EmuResponse {
    if (!Array.isArray(req.body)) return err(400, 'expected an array of environment variables', 'invalid_request');
    x.env.clear();
    for (const v of req.body as Array<{ key: string; value: string }>) x.env.set(v.key, v.value);
    this.envWrites.set(x.id, this.envWriteCount(x.id) + 1);
    return { status: 200, body: [...x.env].map(([key, value]) => ({ envVar: { key, value }, cursor: key })) };
  }

  private trigger(req: EmuRequest, x: Service): EmuResponse {
    if (x.suspended) return err(400, 'cannot deploy a suspended service', 'invalid_request');
    const body = (req.body ?? {}) as { deployMode?: unknown };
    const now = Date.now();
    const busy = x.deploys.filter((d) => this.endOf(d) > now);
    const startAt = Math.max(now, ...busy.map((d) => this.endOf(d)));
    const fi = this.failDeploys.findIndex((f) => !f.service || f.service === x.id);
    const fails = fi >= 0 ? this.failDeploys.splice(fi, 1)[0]!.status : undefined;
    const d: Deploy = { id: rid('dep'), createdAt: now, startAt, build: body.deployMode !== 'deploy_only', fails, trigger: 'api', env: Object.fromEntries(x.env) };
    x.deploys.push(d);
    // A busy service queues the deploy and answers 202 without a body.
    return busy.length ? { status: 202 } : { status: 201, body: this.deployJson(x, d) };
  }
}

/** Render's cursor paging: `limit` (default 20, max 100) items after the item whose cursor is `cursor`. */
function page(req: EmuRequest, items: Array<{ key: string; item: Record<string, unknown> }>): EmuResponse {
  const limitRaw = req.query.get('limit');
  const limit = limitRaw === null ? 20 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) return err(400, 'limit must be an integer between 1 and 100', 'invalid_request');
  const cursor = req.query.get('cursor');
  const start = cursor ? items.findIndex((x) => encodeCursor(x.key) === cursor) + 1 : 0;
  if (cursor && start === 0) return err(400, 'invalid cursor', 'invalid_request');
  return { status: 200, body: items.slice(start, start + limit).map((x) => ({ cursor: encodeCursor(x.key), ...x.item })) };
}

const encodeCursor = (key: string) => Buffer.from(key).toString('base64url');

function rateHeaders(w: WindowState): Record<string, string> {
  return { 'Ratelimit-Limit': String(w.limit), 'Ratelimit-Remaining': String(w.remaining), 'Ratelimit-Reset': resetSeconds(w) };
}

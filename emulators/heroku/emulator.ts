import { randomUUID } from 'node:crypto';
import { HttpEmulator, bearer, type EmuRequest, type EmuResponse } from '../server.ts';

/**
 * A loopback emulator of the parts of the Heroku Platform API keyrot uses: apps, config vars,
 * releases (with their config snapshots) and dynos. Faithful where it matters to a client:
 *
 * - Every request must carry `Accept: application/vnd.heroku+json; version=3`. Without it Heroku
 *   answers 400 `{"id":"missing_version","error":"Please specify a version ..."}` (note: `error`,
 *   not `message`, in that one body) — checked against real responses quoted in
 *   marc0der/gradle-heroku#4 and Growstuff/growstuff#1389. Versions 1/2 are sunset: 410 `gone`
 *   (toots/node-heroku#14).
 * - `Authorization: Bearer <token>`; the two real 401 bodies (no credentials / invalid credentials).
 * - Errors are `{"id","message"}` (heroku README "Provider facts"); 404 for apps carries `resource`.
 * - OAuth scopes: `read`/`write` do not reach config vars, `read-protected`/`write-protected`/`global`
 *   do (devcenter.heroku.com/articles/oauth#scopes); the 403 text is the one Heroku gives for a scope miss
 *   (martyzz1/heroku3.py#120).
 * - A token bucket per token (4500, ~75/min refill): `RateLimit-Remaining` on every
 *   response, 429 `rate_limit` when empty; Heroku sends no Retry-After.
 * - `GET /apps` lists the apps the token can see (all pages through `Range`, like releases).
 * - Every config-var change creates a release that SNAPSHOTS the config vars; the release is
 *   `pending` for `releaseMs` (the release phase), then `succeeded` or `failed`. Lists are paged
 *   with `Range` / `Next-Range` (206), in `id` order unless the Range says otherwise.
 */

export const HEROKU_ACCEPT = 'application/vnd.heroku+json; version=3';

const ALL_SCOPES = ['global', 'identity', 'read', 'write', 'read-protected', 'write-protected'] as const;
export type HerokuScope = (typeof ALL_SCOPES)[number];

export interface HerokuEmulatorOptions {
  /** How long a release stays `pending` (its release phase) before it settles. Default 0 (settles at once). */
  releaseMs?: number;
  /** Token bucket per token. Defaults to Heroku's: 4500 tokens, 75 per minute. */
  rateLimit?: { capacity?: number; refillPerMinute?: number };
}

export interface HerokuReleaseView {
  id: string;
  version: number;
  status: 'pending' | 'succeeded' | 'failed';
  description: string;
  current: boolean;
  /** The config vars this release runs with (snapshot taken when the release started). */
  configVars: Record<string, string>;
}

interface Release {
  id: string;
  version: number;
  description: string;
  createdAt: number;
  settlesAt: number;
  outcome: 'succeeded' | 'failed';
  configVars: Record<string, string>;
  user: { id: string; email: string };
}

interface App {
  id: string;
  name: string;
  createdAt: number;
  configVars: Record<string, string>;
  releases: Release[];
}

interface TokenInfo {
  scopes: Set<HerokuScope>;
  /** App names the token's account can see; undefined = all. */
  apps: Set<string> | undefined;
  /** Apps the token sees with the team `view` permission only: listed, but config vars refused (devcenter.heroku.com/articles/app-permissions). */
  viewOnly: Set<string>;
  remaining: number;
  refilledAt: number;
  user: { id: string; email: string };
}

function herokuError(status: number, id: string, message: string, extra: Record<string, unknown> = {}): EmuResponse {
  return { status, body: { ...extra, id, message } };
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class HerokuEmulator extends HttpEmulator {
  private readonly apps = new Map<string, App>();
  private readonly tokens = new Map<string, TokenInfo>();
  private readonly failReleases: Array<{ app?: string }> = [];
  private readonly releaseMs: number;
  private readonly capacity: number;
  private readonly refillPerMinute: number;

  constructor(opts: HerokuEmulatorOptions = {}) {
    super({
      name: 'heroku',
      notFound: () =>
        herokuError(
          404,
          'not_found',
          'The requested API endpoint was not found. Are you using the right HTTP verb (i.e. `GET` vs. `POST`), and did you specify your intended version with the `Accept` header?',
        ),
    });
    this.releaseMs = opts.releaseMs ?? 0;
    this.capacity = opts.rateLimit?.capacity ?? 4500;
    this.refillPerMinute = opts.rateLimit?.refillPerMinute ?? 75;
    this.routes();
  }

  // ---- helpers for tests and the demo -------------------------------------------------------

  /** Registers a token (generated when omitted) with its OAuth scopes and, optionally, the apps it can see. */
  addToken(opts: { token?: string; scopes?: HerokuScope[]; apps?: string[]; viewOnly?: string[]; email?: string } = {}): string {
    const token = opts.token ?? `HRKU-${randomUUID()}`;
    this.tokens.set(token, {
      scopes: new Set(opts.scopes ?? ['global']),
      apps: opts.apps ? new Set(opts.apps) : undefined,
      viewOnly: new Set(opts.viewOnly ?? []),
      remaining: this.capacity,
      refilledAt: Date.now(),
      user: { id: randomUUID(), email: opts.email ?? 'operator@example.com' },
    });
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** Sets a token's bucket (e.g. low, to exercise pacing; 0 to get 429s until it refills). */
  setRateLimitRemaining(token: string, remaining: number): void {
    const t = this.tokens.get(token);
    if (!t) throw new Error('unknown token');
    t.remaining = remaining;
    t.refilledAt = Date.now();
  }

  /** Creates an app with config vars and a first release (v1) that runs them. */
  seedApp(name: string, vars: Record<string, string> = {}): { id: string } {
    const now = Date.now();
    const app: App = { id: randomUUID(), name, createdAt: now, configVars: { ...vars }, releases: [] };
    app.releases.push({
      id: randomUUID(),
      version: 1,
      description: 'Initial release',
      createdAt: now,
      settlesAt: now,
      outcome: 'succeeded',
      configVars: { ...vars },
      user: { id: randomUUID(), email: 'operator@example.com' },
    });
    this.apps.set(name, app);
    return { id: app.id };
  }

  /** Sets config vars directly (no release), as if changed long ago; `null` deletes. */
  setVars(app: string, vars: Record<string, string | null>): void {
    const a = this.mustApp(app);
    for (const [k, v] of Object.entries(vars)) {
      if (v === null) delete a.configVars[k];
      else a.configVars[k] = v;
    }
  }

  /** A copy of the app's config vars (key order preserved). */
  getVars(app: string): Record<string, string> {
    return { ...this.mustApp(app).configVars };
  }

  /** Releases, oldest first, with their current status and config snapshot. */
  releases(app: string): HerokuReleaseView[] {
    const a = this.mustApp(app);
    const current = this.currentRelease(a);
    return a.releases.map((r) => ({
      id: r.id,
      version: r.version,
      status: this.status(r),
      description: r.description,
      current: r === current,
      configVars: { ...r.configVars },
    }));
  }

  /** The next release (of `app`, or of any app) fails its release phase. */
  failNextRelease(app?: string): void {
    this.failReleases.push({ app });
  }

  /** The next matching request(s) answer Heroku's real 429 (RateLimit-Remaining: 0, no Retry-After). */
  failNextWithRateLimit(times = 1): void {
    this.server.failNext({
      times,
      status: 429,
      headers: { 'RateLimit-Remaining': '0', 'Content-Type': 'application/json' },
      body: { id: 'rate_limit', message: 'Your account reached the API rate limit\nPlease wait a few minutes before making new requests' },
    });
  }

  // ---- internals ------------------------------------------------------------------------------

  private mustApp(name: string): App {
    const a = this.apps.get(name);
    if (!a) throw new Error(`heroku emulator: no app ${name}`);
    return a;
  }

  private findApp(idOrName: string): App | undefined {
    return this.apps.get(idOrName) ?? [...this.apps.values()].find((a) => a.id === idOrName);
  }

  private status(r: Release): HerokuReleaseView['status'] {
    return Date.now() >= r.settlesAt ? r.outcome : 'pending';
  }

  /** The newest release that succeeded is the one the dynos run. */
  private currentRelease(a: App): Release | undefined {
    for (let i = a.releases.length - 1; i >= 0; i--) if (this.status(a.releases[i]!) === 'succeeded') return a.releases[i];
    return undefined;
  }

  private releaseJson(a: App, r: Release): Record<string, unknown> {
    const status = this.status(r);
    return {
      addon_plan_names: [],
      artifacts: [],
      app: { id: a.id, name: a.name },
      created_at: iso(r.createdAt),
      description: r.description,
      status,
      id: r.id,
      slug: null,
      updated_at: iso(status === 'pending' ? r.createdAt : r.settlesAt),
      user: r.user,
      version: r.version,
      current: this.currentRelease(a) === r,
      output_stream_url: null,
      eligible_for_rollback: true,
    };
  }

  private appJson(a: App): Record<string, unknown> {
    const current = this.currentRelease(a);
    return {
      id: a.id,
      name: a.name,
      created_at: iso(a.createdAt),
      updated_at: iso(a.releases[a.releases.length - 1]!.createdAt),
      released_at: current ? iso(current.settlesAt) : null,
      region: { id: '59accabd-516d-4f0e-83e6-6e3757701145', name: 'us' },
      stack: { id: 'ee582d3c-717d-4a57-ba5f-8b3a39f3a817', name: 'heroku-24' },
      web_url: `https://${a.name}.herokuapp.com/`,
      maintenance: false,
    };
  }

  private createRelease(a: App, description: string, user: TokenInfo['user']): Release {
    const now = Date.now();
    const fi = this.failReleases.findIndex((f) => !f.app || f.app === a.name);
    const fails = fi >= 0;
    if (fails) this.failReleases.splice(fi, 1);
    const r: Release = {
      id: randomUUID(),
      version: a.releases[a.releases.length - 1]!.version + 1,
      description,
      createdAt: now,
      // A failing release phase still takes its time before it reports.
      settlesAt: now + this.releaseMs,
      outcome: fails ? 'failed' : 'succeeded',
      configVars: { ...a.configVars },
      user,
    };
    a.releases.push(r);
    return r;
  }

  /**
   * Accept header, credentials, rate limit: in Heroku's order (the version check comes before
   * authentication — the real API answers missing_version to an unauthenticated request).
   */
  private guard(need: 'any' | 'read-protected' | 'write-protected', handler: (req: EmuRequest, t: TokenInfo) => EmuResponse) {
    return (req: EmuRequest): EmuResponse => {
      const accept = String(req.headers.accept ?? '');
      const m = /application\/vnd\.heroku\+json\s*;\s*version=([\w.-]+)/i.exec(accept);
      if (!m) {
        return {
          status: 400,
          body: {
            id: 'missing_version',
            error: "Please specify a version along with Heroku's API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`.\n",
          },
        };
      }
      if (m[1] === '1' || m[1] === '2') {
        return {
          status: 410,
          body: { id: 'gone', error: 'This version of the API has been Sunset.\nPlease see https://devcenter.heroku.com/changelog-items/1147 for more information.\n' },
        };
      }
      if (!/^3(\.|$)/.test(m[1]!)) return herokuError(406, 'not_acceptable', `Version ${m[1]} of the API is not supported.`);
      const token = bearer(req);
      if (!token) {
        return herokuError(
          401,
          'unauthorized',
          'There were no credentials in your `Authorization` header. Try `Authorization: Bearer <OAuth access token>` or `Authorization: Basic <base64-encoded email + ":" + password>`.',
        );
      }
      const t = this.tokens.get(token);
      if (!t) return herokuError(401, 'unauthorized', 'Invalid credentials provided.');
      // Token bucket: refill, then spend one token (the 429 itself costs nothing).
      const now = Date.now();
      const refill = Math.floor(((now - t.refilledAt) / 60_000) * this.refillPerMinute);
      if (refill > 0) {
        t.remaining = Math.min(this.capacity, t.remaining + refill);
        t.refilledAt = now;
      }
      if (t.remaining <= 0) {
        return {
          status: 429,
          headers: { 'RateLimit-Remaining': '0' },
          body: { id: 'rate_limit', message: 'Your account reached the API rate limit\nPlease wait a few minutes before making new requests' },
        };
      }
      t.remaining -= 1;
      const scopeOk =
        t.scopes.has('global') ||
        (need === 'any' && [...t.scopes].some((s) => s !== 'identity')) ||
        (need === 'read-protected' && t.scopes.has('read-protected')) ||
        (need === 'write-protected' && t.scopes.has('write-protected'));
      let out: EmuResponse;
      if (!scopeOk) {
        out = herokuError(403, 'forbidden', 'The scope of this OAuth authorization does not allow access to this resource.');
      } else {
        const appParam = req.params.app;
        if (appParam !== undefined) {
          const a = this.findApp(appParam);
          if (a && ((t.apps && !t.apps.has(a.name)) || (need !== 'any' && t.viewOnly.has(a.name)))) {
            out = herokuError(403, 'forbidden', `You do not have access to the app ${a.name}.`);
            return this.finish(out, t);
          }
        }
        out = handler(req, t);
      }
      return this.finish(out, t);
    };
  }

  private finish(out: EmuResponse, t: TokenInfo): EmuResponse {
    return {
      ...out,
      headers: {
        'RateLimit-Remaining': String(t.remaining),
        'Request-Id': randomUUID(),
        'Content-Type': 'application/json',
        ...out.headers,
      },
    };
  }

  private withApp(req: EmuRequest, fn: (a: App) => EmuResponse): EmuResponse {
    const a = this.findApp(req.params.app!);
    if (!a) return herokuError(404, 'not_found', "Couldn't find that app.", { resource: 'app' });
    return fn(a);
  }

  private findRelease(a: App, idOrVersion: string): Release | undefined {
    return /^\d+$/.test(idOrVersion)
      ? a.releases.find((r) => r.version === Number(idOrVersion))
      : a.releases.find((r) => r.id === idOrVersion);
  }

  private routes(): void {
    const s = this.server;
    // The apps the token's account can see, paged with Range like every Heroku list (ranges: id, name).
    s.route(
      'GET',
      '/apps',
      this.guard('any', (req, t) => {
        const visible = [...this.apps.values()].filter((a) => !t.apps || t.apps.has(a.name));
        return paginate(
          visible.map((a) => ({ a, json: this.appJson(a) })),
          String(req.headers.range ?? ''),
          ['id', 'name'],
          (x, f) => (f === 'name' ? x.a.name : x.a.id),
        );
      }),
    );
    s.route('GET', '/apps/:app', this.guard('any', (req) => this.withApp(req, (a) => ({ status: 200, body: this.appJson(a) }))));

    s.route(
      'GET',
      '/apps/:app/config-vars',
      this.guard('read-protected', (req) => this.withApp(req, (a) => ({ status: 200, body: { ...a.configVars } }))),
    );

    s.route(
      'PATCH',
      '/apps/:app/config-vars',
      this.guard('write-protected', (req, t) =>
        this.withApp(req, (a) => {
          const body = req.body;
          if (!body || typeof body !== 'object' || Array.isArray(body)) {
            return herokuError(400, 'bad_request', 'Invalid JSON body: expected an object of config vars.');
          }
          const entries = Object.entries(body as Record<string, unknown>);
          for (const [k, v] of entries) {
            if (!/^\w+$/.test(k)) return herokuError(422, 'invalid_params', `Invalid config var name: ${k}.`);
            if (v !== null && typeof v !== 'string') return herokuError(422, 'invalid_params', `Config var ${k} must be a string or null.`);
          }
          // A merge: keys not in the body are untouched; null removes.
          const set: string[] = [];
          const removed: string[] = [];
          for (const [k, v] of entries) {
            if (v === null) {
              delete a.configVars[k];
              removed.push(k);
            } else {
              a.configVars[k] = v as string;
              set.push(k);
            }
          }
          const description = [set.length ? `Set ${set.join(', ')} config vars` : '', removed.length ? `Remove ${removed.join(', ')} config vars` : '']
            .filter(Boolean)
            .join('; ');
          this.createRelease(a, description || 'Set config vars', t.user);
          return { status: 200, body: { ...a.configVars } };
        }),
      ),
    );

    s.route(
      'GET',
      '/apps/:app/releases',
      this.guard('any', (req) =>
        this.withApp(req, (a) => {
          const items = a.releases.map((r) => ({ r, json: this.releaseJson(a, r) }));
          return paginate(items, String(req.headers.range ?? ''), ['id', 'version'], (x, f) => (f === 'version' ? x.r.version : x.r.id));
        }),
      ),
    );

    s.route(
      'GET',
      '/apps/:app/releases/:release',
      this.guard('any', (req) =>
        this.withApp(req, (a) => {
          const r = this.findRelease(a, req.params.release!);
          if (!r) return herokuError(404, 'not_found', "Couldn't find that release.", { resource: 'release' });
          return { status: 200, body: this.releaseJson(a, r) };
        }),
      ),
    );

    // The config vars a given release runs with (platform-api schema.json, `config-var`).
    s.route(
      'GET',
      '/apps/:app/releases/:release/config-vars',
      this.guard('read-protected', (req) =>
        this.withApp(req, (a) => {
          const r = this.findRelease(a, req.params.release!);
          if (!r) return herokuError(404, 'not_found', "Couldn't find that release.", { resource: 'release' });
          return { status: 200, body: { ...r.configVars } };
        }),
      ),
    );

    // One web dyno that restarts on every succeeded release: `starting` while the newest release is pending.
    s.route(
      'GET',
      '/apps/:app/dynos',
      this.guard('any', (req) =>
        this.withApp(req, (a) => {
          const current = this.currentRelease(a);
          const newest = a.releases[a.releases.length - 1]!;
          const state = this.status(newest) === 'pending' ? 'starting' : 'up';
          return {
            status: 200,
            body: [
              {
                id: randomUUID(),
                name: 'web.1',
                type: 'web',
                state,
                size: 'Basic',
                command: 'npm start',
                app: { id: a.id, name: a.name },
                release: current ? { id: current.id, version: current.version } : null,
                created_at: iso(current?.settlesAt ?? a.createdAt),
                updated_at: iso(current?.settlesAt ?? a.createdAt),
              },
            ],
          };
        }),
      ),
    );

    s.route('GET', '/account/rate-limits', (req) => {
      // Does not consume a token (platform-api reference, rate limits).
      const token = bearer(req);
      const t = token ? this.tokens.get(token) : undefined;
      if (!t) return herokuError(401, 'unauthorized', 'Invalid credentials provided.');
      return { status: 200, headers: { 'RateLimit-Remaining': String(t.remaining) }, body: { remaining: t.remaining } };
    });
  }
}

/**
 * Heroku's `Range` paging: `<field> [start]..[end][; max=N[, order=asc|desc]]`, `]` excludes the
 * start. A truncated page answers 206 with `Next-Range`; a complete one 200. Default: field `id`,
 * ascending, 200 per page (max 1000).
 */
export function paginate<T extends { json: unknown }>(
  items: T[],
  range: string,
  fields: string[],
  key: (item: T, field: string) => string | number,
): EmuResponse {
  let field = 'id';
  let order: 'asc' | 'desc' = 'asc';
  let max = 200;
  let start: string | undefined;
  let exclusive = false;
  let end: string | undefined;
  if (range.trim()) {
    const m = /^\s*(\w+)\s+(\]?)([^\s.;\]]*)\.\.([^\s;[]*)\[?\s*(?:;\s*(.*))?$/.exec(range);
    if (!m || !fields.includes(m[1]!)) {
      return {
        status: 416,
        body: { id: 'requested_range_not_satisfiable', message: `Invalid Range header. Acceptable ranges are: ${fields.join(', ')}.` },
      };
    }
    field = m[1]!;
    exclusive = m[2] === ']';
    start = m[3] || undefined;
    end = m[4] || undefined;
    for (const p of (m[5] ?? '').split(/[;,]/)) {
      const [k, v] = p.split('=').map((x) => x.trim());
      if (k === 'max' && v && /^\d+$/.test(v)) max = Math.min(1000, Math.max(1, Number(v)));
      if (k === 'order' && (v === 'asc' || v === 'desc')) order = v;
    }
  }
  const cmp = (a: string | number, b: string | number) => (typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b)));
  const coerce = (v: string) => (field === 'version' ? Number(v) : v);
  const sorted = [...items].sort((a, b) => cmp(key(a, field), key(b, field)) * (order === 'asc' ? 1 : -1));
  const dir = order === 'asc' ? 1 : -1;
  const inRange = sorted.filter((it) => {
    const k = key(it, field);
    if (start !== undefined) {
      const c = cmp(k, coerce(start)) * dir;
      if (c < 0 || (exclusive && c === 0)) return false;
    }
    if (end !== undefined && cmp(k, coerce(end)) * dir > 0) return false;
    return true;
  });
  const page = inRange.slice(0, max);
  const headers: Record<string, string> = { 'Accept-Ranges': fields.join(', ') };
  if (page.length) {
    headers['Content-Range'] = `${field} ${key(page[0]!, field)}..${key(page[page.length - 1]!, field)}; max=${max}, order=${order}`;
  }
  if (inRange.length > page.length) {
    headers['Next-Range'] = `${field} ]${key(page[page.length - 1]!, field)}..; max=${max}, order=${order}`;
    return { status: 206, headers, body: page.map((p) => p.json) };
  }
  return { status: 200, headers, body: page.map((p) => p.json) };
}

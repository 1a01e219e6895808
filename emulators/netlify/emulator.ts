import { randomBytes, randomUUID } from 'node:crypto';
import { HttpEmulator, bearer, type EmuRequest, type EmuResponse } from '../server.ts';

/**
 * A loopback emulator of the Netlify API (`/api/v1`) parts keyrot uses: sites, environment
 * variables ("Envelope": per-context values, secrets), builds and deploys. Sources:
 * netlify/open-api swagger.yml 2.55.0 (paths, envVar/envVarValue/build/deploy/error definitions)
 * and the netlify README "Provider facts". Faithful where a client can tell:
 *
 * - `Authorization: Bearer`; a missing or wrong token gets the real `401 {"code":401,"message":"Access Denied"}`.
 * - Errors are `{"code","message"}` (swagger `definitions.error`); unknown routes (including the
 *   `/api/v1/api/v1/...` path @netlify/api's getSiteEnvVars builds, netlify/cli#7709) are a 404.
 * - `is_secret` values are write-only outside the `dev` context: the API omits their `value`
 *   (the exact rendering on the real service is undocumented).
 * - `PATCH /accounts/{account_id}/env/{key}?site_id=` sets ONE context's value (setEnvVarValue).
 * - Builds create a deploy that goes enqueued → building → processing → ready (or error), each
 *   phase `phaseMs` long; the deploy SNAPSHOTS the environment when the build starts.
 * - Rate limits: 500 requests/minute per token with `X-RateLimit-Limit/Remaining/Reset` (epoch
 *   seconds) on every answer, and 3 deploys/minute per site; 429 when exceeded.
 * - Lists of sites, builds and deploys page with `page`/`per_page` and a `Link` header.
 */

export const NETLIFY_CONTEXTS = ['all', 'dev', 'dev-server', 'branch-deploy', 'deploy-preview', 'production', 'branch'] as const;
export type NetlifyContext = (typeof NETLIFY_CONTEXTS)[number];
const SCOPES = ['builds', 'functions', 'runtime', 'post-processing'] as const;

export interface NetlifyEnvValue {
  id: string;
  value: string;
  context: NetlifyContext;
  context_parameter?: string;
}

export interface NetlifyEnvVar {
  key: string;
  scopes: string[];
  values: NetlifyEnvValue[];
  is_secret: boolean;
  updated_at: string;
  updated_by: { id: string; full_name: string; email: string; avatar_url: string };
}

export interface NetlifyDeployView {
  id: string;
  buildId: string;
  state: string;
  context: 'production' | 'branch-deploy';
  branch: string;
  errorMessage: string | null;
  /** The environment the build saw (resolved for its context), captured when it started. */
  env: Record<string, string>;
}

interface Deploy {
  id: string;
  buildId: string;
  siteId: string;
  branch: string;
  context: 'production' | 'branch-deploy';
  createdAt: number;
  fails: boolean;
  failMessage: string | undefined;
  env: Record<string, string>;
}

interface Site {
  id: string;
  name: string;
  accountId: string;
  mainBranch: string;
  createdAt: number;
  env: Map<string, NetlifyEnvVar>;
  deploys: Deploy[];
  buildTimes: number[];
}

interface Account {
  id: string;
  slug: string;
  name: string;
  env: Map<string, NetlifyEnvVar>;
}

interface TokenInfo {
  /** Reviewers can look but not change (Netlify team roles); owners and developers can. */
  role: 'owner' | 'developer' | 'reviewer';
  /** Account ids the user belongs to; undefined = every account. */
  accounts: Set<string> | undefined;
  windowStart: number;
  used: number;
  user: NetlifyEnvVar['updated_by'];
}

export interface NetlifyEmulatorOptions {
  /** Length of each deploy phase (enqueued, building, processing) in ms. Default 0: ready at once. */
  phaseMs?: number;
  /** Requests per minute per token (default 500). */
  requestsPerMinute?: number;
  /** Builds per minute per site (default 3). */
  deploysPerMinute?: number;
}

const hexId = () => randomBytes(12).toString('hex');
const isResponse = (x: unknown): x is EmuResponse => typeof x === 'object' && x !== null && 'status' in x;
const nerr = (status: number, message: string): EmuResponse => ({ status, body: { code: status, message } });

export class NetlifyEmulator extends HttpEmulator {
  private readonly accounts = new Map<string, Account>();
  private readonly sites = new Map<string, Site>();
  private readonly tokens = new Map<string, TokenInfo>();
  private readonly failDeploys: Array<{ site?: string; message: string }> = [];
  private readonly phaseMs: number;
  private readonly perMinute: number;
  private readonly deploysPerMinute: number;
  private readonly failValueWrites: Array<{ context: NetlifyContext; status: number; message: string }> = [];
  /** Number of env writes (create/update/set/delete) per site: lets tests prove a no-op. */
  private readonly writes = new Map<string, number>();

  constructor(opts: NetlifyEmulatorOptions = {}) {
    super({ name: 'netlify', notFound: () => nerr(404, 'Not Found') });
    this.phaseMs = opts.phaseMs ?? 0;
    this.perMinute = opts.requestsPerMinute ?? 500;
    this.deploysPerMinute = opts.deploysPerMinute ?? 3;
    this.routes();
  }

  // ---- helpers for tests and the demo -------------------------------------------------------

  addToken(opts: { token?: string; role?: TokenInfo['role']; accounts?: string[] } = {}): string {
    // Personal access tokens look like `nfp_` + 40 characters.
    const token = opts.token ?? `nfp_${randomBytes(30).toString('base64url').slice(0, 40)}`;
    this.tokens.set(token, {
      role: opts.role ?? 'owner',
      accounts: opts.accounts ? new Set(opts.accounts) : undefined,
      windowStart: Date.now(),
      used: 0,
      user: { id: hexId(), full_name: 'Ops Person', email: 'ops@example.com', avatar_url: '' },
    });
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  addAccount(slug: string, name = slug): { id: string; slug: string } {
    const a: Account = { id: hexId(), slug, name, env: new Map() };
    this.accounts.set(a.id, a);
    return { id: a.id, slug };
  }

  /** A site with environment variables, in an account (created when the slug is new). */
  seedSite(opts: {
    id?: string;
    name: string;
    account: string;
    mainBranch?: string;
    env?: Array<{ key: string; values: Array<{ context: NetlifyContext; value: string; context_parameter?: string }>; is_secret?: boolean; scopes?: string[] }>;
  }): { id: string; accountId: string; accountSlug: string } {
    const acct = [...this.accounts.values()].find((a) => a.slug === opts.account) ?? this.accounts.get(this.addAccount(opts.account).id)!;
    const site: Site = {
      id: opts.id ?? randomUUID(),
      name: opts.name,
      accountId: acct.id,
      mainBranch: opts.mainBranch ?? 'main',
      createdAt: Date.now(),
      env: new Map(),
      deploys: [],
      buildTimes: [],
    };
    for (const e of opts.env ?? []) site.env.set(e.key, this.makeVar(e.key, e.values, e.is_secret ?? false, e.scopes, undefined));
    this.sites.set(site.id, site);
    return { id: site.id, accountId: acct.id, accountSlug: acct.slug };
  }

  /** An account-level (team-wide) variable. */
  seedAccountVar(slug: string, key: string, values: Array<{ context: NetlifyContext; value: string }>): void {
    const acct = [...this.accounts.values()].find((a) => a.slug === slug);
    if (!acct) throw new Error(`netlify emulator: no account ${slug}`);
    acct.env.set(key, this.makeVar(key, values, false, undefined, undefined));
  }

  /** A deep copy of a site's variables INCLUDING secret values (what Netlify's systems see). */
  getVars(siteId: string): NetlifyEnvVar[] {
    return structuredClone([...this.mustSite(siteId).env.values()]);
  }

  getVar(siteId: string, key: string): NetlifyEnvVar | undefined {
    const v = this.mustSite(siteId).env.get(key);
    return v ? structuredClone(v) : undefined;
  }

  getAccountVars(slug: string): NetlifyEnvVar[] {
    const acct = [...this.accounts.values()].find((a) => a.slug === slug);
    return structuredClone([...(acct?.env.values() ?? [])]);
  }

  /** Changes one context's value directly (as if done in the UI). */
  setValue(siteId: string, key: string, context: NetlifyContext, value: string): void {
    const v = this.mustSite(siteId).env.get(key);
    if (!v) throw new Error(`netlify emulator: no var ${key}`);
    const e = v.values.find((x) => x.context === context);
    if (e) e.value = value;
    else v.values.push({ id: randomUUID(), context, value });
    v.updated_at = this.stamp();
  }

  writeCount(siteId: string): number {
    return this.writes.get(siteId) ?? 0;
  }

  deploys(siteId: string): NetlifyDeployView[] {
    const s = this.mustSite(siteId);
    return s.deploys.map((d) => ({
      id: d.id,
      buildId: d.buildId,
      state: this.deployState(d),
      context: d.context,
      branch: d.branch,
      errorMessage: this.deployState(d) === 'error' ? this.errorMessage(d) : null,
      env: { ...d.env },
    }));
  }

  /** The next build (of `site`, or any) fails. */
  failNextDeploy(site?: string, message = 'Build script returned non-zero exit code: 2'): void {
    this.failDeploys.push({ site, message });
  }

  /**
   * The next setEnvVarValue (PATCH) for `context` answers `status` without changing anything: a
   * write of several contexts that fails part-way (the earlier contexts' PATCHes went through).
   */
  failNextValueWrite(context: NetlifyContext, status = 502, message = 'Bad Gateway'): void {
    this.failValueWrites.push({ context, status, message });
  }

  /** The next matching request(s) answer Netlify's 429 with its X-RateLimit-* headers. */
  failNextWithRateLimit(times = 1): void {
    const reset = Math.ceil(Date.now() / 1000) + 1;
    this.server.failNext({
      times,
      status: 429,
      headers: { 'X-RateLimit-Limit': String(this.perMinute), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(reset) },
      body: { code: 429, message: 'Too Many Requests' },
    });
  }

  // ---- internals ------------------------------------------------------------------------------

  private lastStamp = 0;
  /** Strictly increasing ISO timestamps (two writes in one millisecond still differ). */
  private stamp(): string {
    const t = Math.max(Date.now(), this.lastStamp + 1);
    this.lastStamp = t;
    return new Date(t).toISOString();
  }

  private makeVar(
    key: string,
    values: Array<{ context: NetlifyContext; value: string; context_parameter?: string }>,
    isSecret: boolean,
    scopes: string[] | undefined,
    user: TokenInfo['user'] | undefined,
  ): NetlifyEnvVar {
    return {
      key,
      scopes: scopes ?? [...SCOPES],
      values: values.map((v) => ({ id: randomUUID(), value: v.value, context: v.context, ...(v.context_parameter ? { context_parameter: v.context_parameter } : {}) })),
      is_secret: isSecret,
      updated_at: this.stamp(),
      updated_by: user ?? { id: hexId(), full_name: 'Site Owner', email: 'owner@example.com', avatar_url: '' },
    };
  }

  private mustSite(id: string): Site {
    const s = this.sites.get(id);
    if (!s) throw new Error(`netlify emulator: no site ${id}`);
    return s;
  }

  private countWrite(site: Site | undefined): void {
    if (site) this.writes.set(site.id, (this.writes.get(site.id) ?? 0) + 1);
  }

  /** What the API shows: secret values outside `dev` have no `value`. */
  private varJson(v: NetlifyEnvVar): Record<string, unknown> {
    return {
      key: v.key,
      scopes: v.scopes,
      values: v.values.map((x) => {
        const base: Record<string, unknown> = { id: x.id, context: x.context };
        if (x.context_parameter) base.context_parameter = x.context_parameter;
        if (!v.is_secret || x.context === 'dev') base.value = x.value;
        return base;
      }),
      is_secret: v.is_secret,
      updated_at: v.updated_at,
      updated_by: v.updated_by,
    };
  }

  private siteJson(s: Site): Record<string, unknown> {
    const acct = this.accounts.get(s.accountId)!;
    const published = [...s.deploys].reverse().find((d) => this.deployState(d) === 'ready' && d.context === 'production');
    return {
      id: s.id,
      site_id: s.id,
      name: s.name,
      state: 'current',
      url: `https://${s.name}.netlify.app`,
      ssl_url: `https://${s.name}.netlify.app`,
      admin_url: `https://app.netlify.com/sites/${s.name}`,
      account_id: acct.id,
      account_slug: acct.slug,
      account_name: acct.name,
      created_at: new Date(s.createdAt).toISOString(),
      updated_at: new Date(s.createdAt).toISOString(),
      published_deploy: published ? this.deployJson(s, published) : null,
      build_settings: { repo_branch: s.mainBranch, cmd: 'npm run build', dir: 'dist' },
    };
  }

  private deployState(d: Deploy): string {
    const elapsed = Date.now() - d.createdAt;
    const p = this.phaseMs;
    if (p > 0 && elapsed < p) return 'enqueued';
    if (p > 0 && elapsed < 2 * p) return 'building';
    if (p > 0 && elapsed < 3 * p) return 'processing';
    return d.fails ? 'error' : 'ready';
  }

  private errorMessage(d: Deploy): string {
    return d.failMessage ?? 'Build script returned non-zero exit code: 2';
  }

  private deployJson(s: Site, d: Deploy): Record<string, unknown> {
    const state = this.deployState(d);
    const done = state === 'ready' || state === 'error';
    return {
      id: d.id,
      site_id: s.id,
      build_id: d.buildId,
      state,
      name: s.name,
      url: `https://${s.name}.netlify.app`,
      ssl_url: `https://${s.name}.netlify.app`,
      admin_url: `https://app.netlify.com/sites/${s.name}`,
      deploy_url: state === 'ready' ? `https://${d.id}--${s.name}.netlify.app` : null,
      deploy_ssl_url: state === 'ready' ? `https://${d.id}--${s.name}.netlify.app` : null,
      error_message: state === 'error' ? this.errorMessage(d) : null,
      branch: d.branch,
      context: d.context,
      skipped: null,
      created_at: new Date(d.createdAt).toISOString(),
      updated_at: new Date(done ? d.createdAt + 3 * this.phaseMs : Date.now()).toISOString(),
      published_at: state === 'ready' && d.context === 'production' ? new Date(d.createdAt + 3 * this.phaseMs).toISOString() : null,
      title: null,
    };
  }

  private buildJson(d: Deploy): Record<string, unknown> {
    const state = this.deployState(d);
    // The build is done once its deploy left `building`; its error is the deploy's.
    const done = state === 'processing' || state === 'ready' || state === 'error';
    return {
      id: d.buildId,
      deploy_id: d.id,
      sha: null,
      done,
      error: state === 'error' ? this.errorMessage(d) : null,
      created_at: new Date(d.createdAt).toISOString(),
    };
  }

  /** The value a build in `context` (and `branch`) sees: branch override, then context, then `all`; site over account. */
  private resolveEnv(s: Site, context: 'production' | 'branch-deploy', branch: string): Record<string, string> {
    const out: Record<string, string> = {};
    const pick = (v: NetlifyEnvVar): string | undefined => {
      const find = (c: string, p?: string) => v.values.find((x) => x.context === c && (p === undefined || x.context_parameter === p));
      const hit = (context === 'branch-deploy' ? find('branch', branch) : undefined) ?? find(context) ?? find('all');
      return hit?.value;
    };
    const acct = this.accounts.get(s.accountId)!;
    for (const v of [...acct.env.values(), ...s.env.values()]) {
      const val = pick(v);
      if (val !== undefined) out[v.key] = val;
    }
    return out;
  }

  private guard(handler: (req: EmuRequest, t: TokenInfo) => EmuResponse) {
    return (req: EmuRequest): EmuResponse => {
      const token = bearer(req);
      const t = token ? this.tokens.get(token) : undefined;
      // A missing and a wrong token get the identical body on the real API.
      if (!t) return nerr(401, 'Access Denied');
      const now = Date.now();
      if (now - t.windowStart >= 60_000) {
        t.windowStart = now;
        t.used = 0;
      }
      const reset = String(Math.ceil((t.windowStart + 60_000) / 1000));
      const rl = (remaining: number) => ({
        'X-RateLimit-Limit': String(this.perMinute),
        'X-RateLimit-Remaining': String(Math.max(0, remaining)),
        'X-RateLimit-Reset': reset,
      });
      if (t.used >= this.perMinute) return { ...nerr(429, 'Too Many Requests'), headers: rl(0) };
      t.used++;
      const out = handler(req, t);
      return { ...out, headers: { ...rl(this.perMinute - t.used), ...out.headers } };
    };
  }

  /** The site a request is about, if the token's user can see it (Netlify answers 404 otherwise). */
  private visibleSite(id: string | null | undefined, t: TokenInfo): Site | undefined {
    const s = id ? this.sites.get(id) : undefined;
    if (!s) return undefined;
    if (t.accounts && !t.accounts.has(s.accountId)) return undefined;
    return s;
  }

  /** Resolves `/accounts/{account_id}/env...?site_id=`: the env map addressed (site or account level). */
  private envScope(req: EmuRequest, t: TokenInfo): { env: Map<string, NetlifyEnvVar>; site?: Site } | EmuResponse {
    const acct = [...this.accounts.values()].find((a) => a.id === req.params.account || a.slug === req.params.account);
    if (!acct || (t.accounts && !t.accounts.has(acct.id))) return nerr(404, 'Not Found');
    const siteId = req.query.get('site_id');
    if (!siteId) return { env: acct.env };
    const site = this.visibleSite(siteId, t);
    if (!site || site.accountId !== acct.id) return nerr(404, 'Not Found');
    return { env: site.env, site };
  }

  /** The env scope of a write: found and visible to the token (404), and the token may write (403). */
  private writableEnvScope(req: EmuRequest, t: TokenInfo): ReturnType<NetlifyEmulator['envScope']> {
    const sc = this.envScope(req, t);
    if (isResponse(sc)) return sc;
    return this.canWrite(t) ?? sc;
  }

  private canWrite(t: TokenInfo): EmuResponse | undefined {
    // Unverified wording: the real service's text for a reviewer is not documented.
    return t.role === 'reviewer' ? nerr(403, "You don't have permission to perform this action") : undefined;
  }

  private routes(): void {
    const s = this.server;
    const validValue = (b: Record<string, unknown>): string | undefined => {
      if (typeof b.context !== 'string' || !(NETLIFY_CONTEXTS as readonly string[]).includes(b.context)) return 'invalid context';
      if (b.context === 'branch' && (typeof b.context_parameter !== 'string' || !b.context_parameter)) return 'context_parameter is required for the branch context';
      if (typeof b.value !== 'string') return 'value must be a string';
      return undefined;
    };

    // listSites: the sites of every team the token's user is on, paged (`page` / `per_page`, Link header).
    s.route(
      'GET',
      '/api/v1/sites',
      this.guard((req, t) => {
        const visible = [...this.sites.values()].filter((site) => this.visibleSite(site.id, t));
        return paginate(req, visible.map((site) => this.siteJson(site)), this.url);
      }),
    );

    s.route(
      'GET',
      '/api/v1/sites/:site',
      this.guard((req, t) => {
        const site = this.visibleSite(req.params.site, t);
        return site ? { status: 200, body: this.siteJson(site) } : nerr(404, 'Not Found');
      }),
    );

    // getEnvVars
    s.route(
      'GET',
      '/api/v1/accounts/:account/env',
      this.guard((req, t) => {
        const sc = this.envScope(req, t);
        if (isResponse(sc)) return sc;
        return { status: 200, body: [...sc.env.values()].map((v) => this.varJson(v)) };
      }),
    );

    // getSiteEnvVars (the real path: the JS client's double /api/v1 prefix is a 404 here as there)
    s.route(
      'GET',
      '/api/v1/sites/:site/env',
      this.guard((req, t) => {
        const site = this.visibleSite(req.params.site, t);
        if (!site) return nerr(404, 'Not Found');
        return { status: 200, body: [...site.env.values()].map((v) => this.varJson(v)) };
      }),
    );

    // createEnvVars
    s.route(
      'POST',
      '/api/v1/accounts/:account/env',
      this.guard((req, t) => {
        const sc = this.writableEnvScope(req, t);
        if (isResponse(sc)) return sc;
        if (!Array.isArray(req.body)) return nerr(400, 'Request body must be an array of environment variables');
        const created: NetlifyEnvVar[] = [];
        for (const raw of req.body as Array<Record<string, unknown>>) {
          if (typeof raw.key !== 'string' || !raw.key) return nerr(422, 'key is required');
          // Unverified wording; the service refuses to create a key that exists (updateEnvVar exists for that).
          if (sc.env.has(raw.key)) return nerr(409, `Environment variable ${raw.key} already exists`);
          const values = Array.isArray(raw.values) ? (raw.values as Array<Record<string, unknown>>) : [];
          for (const v of values) {
            const bad = validValue(v);
            if (bad) return nerr(422, bad);
          }
          const scopes = Array.isArray(raw.scopes) ? (raw.scopes as string[]) : undefined;
          created.push(
            this.makeVar(
              raw.key,
              values.map((v) => ({ context: v.context as NetlifyContext, value: v.value as string, context_parameter: v.context_parameter as string | undefined })),
              raw.is_secret === true,
              scopes,
              t.user,
            ),
          );
        }
        for (const v of created) sc.env.set(v.key, v);
        this.countWrite(sc.site);
        return { status: 201, body: created.map((v) => this.varJson(v)) };
      }),
    );

    // getEnvVar
    s.route(
      'GET',
      '/api/v1/accounts/:account/env/:key',
      this.guard((req, t) => {
        const sc = this.envScope(req, t);
        if (isResponse(sc)) return sc;
        const v = sc.env.get(req.params.key!);
        return v ? { status: 200, body: this.varJson(v) } : nerr(404, 'Not Found');
      }),
    );

    // updateEnvVar: replaces all values (and scopes / is_secret)
    s.route(
      'PUT',
      '/api/v1/accounts/:account/env/:key',
      this.guard((req, t) => {
        const sc = this.writableEnvScope(req, t);
        if (isResponse(sc)) return sc;
        const old = sc.env.get(req.params.key!);
        if (!old) return nerr(404, 'Not Found');
        const b = (req.body ?? {}) as Record<string, unknown>;
        const values = Array.isArray(b.values) ? (b.values as Array<Record<string, unknown>>) : [];
        for (const v of values) {
          const bad = validValue(v);
          if (bad) return nerr(422, bad);
        }
        const next = this.makeVar(
          typeof b.key === 'string' && b.key ? b.key : old.key,
          values.map((v) => ({ context: v.context as NetlifyContext, value: v.value as string, context_parameter: v.context_parameter as string | undefined })),
          typeof b.is_secret === 'boolean' ? b.is_secret : old.is_secret,
          Array.isArray(b.scopes) ? (b.scopes as string[]) : old.scopes,
          t.user,
        );
        sc.env.delete(old.key);
        sc.env.set(next.key, next);
        this.countWrite(sc.site);
        return { status: 200, body: this.varJson(next) };
      }),
    );

    // setEnvVarValue: one context's value; the others are untouched.
    s.route(
      'PATCH',
      '/api/v1/accounts/:account/env/:key',
      this.guard((req, t) => {
        const sc = this.writableEnvScope(req, t);
        if (isResponse(sc)) return sc;
        const v = sc.env.get(req.params.key!);
        if (!v) return nerr(404, 'Not Found');
        const b = (req.body ?? {}) as Record<string, unknown>;
        const bad = validValue(b);
        if (bad) return nerr(422, bad);
        const context = b.context as NetlifyContext;
        const fi = this.failValueWrites.findIndex((f) => f.context === context);
        if (fi >= 0) {
          const f = this.failValueWrites.splice(fi, 1)[0]!;
          return nerr(f.status, f.message);
        }
        const param = context === 'branch' ? (b.context_parameter as string) : undefined;
        const hit = v.values.find((x) => x.context === context && (context !== 'branch' || x.context_parameter === param));
        if (hit) hit.value = b.value as string;
        else v.values.push({ id: randomUUID(), value: b.value as string, context, ...(param ? { context_parameter: param } : {}) });
        v.updated_at = this.stamp();
        v.updated_by = t.user;
        this.countWrite(sc.site);
        return { status: 201, body: this.varJson(v) };
      }),
    );

    // deleteEnvVar
    s.route(
      'DELETE',
      '/api/v1/accounts/:account/env/:key',
      this.guard((req, t) => {
        const sc = this.writableEnvScope(req, t);
        if (isResponse(sc)) return sc;
        if (!sc.env.delete(req.params.key!)) return nerr(404, 'Not Found');
        this.countWrite(sc.site);
        return { status: 204 };
      }),
    );

    // deleteEnvVarValue
    s.route(
      'DELETE',
      '/api/v1/accounts/:account/env/:key/value/:id',
      this.guard((req, t) => {
        const sc = this.writableEnvScope(req, t);
        if (isResponse(sc)) return sc;
        const v = sc.env.get(req.params.key!);
        const i = v ? v.values.findIndex((x) => x.id === req.params.id) : -1;
        if (!v || i < 0) return nerr(404, 'Not Found');
        v.values.splice(i, 1);
        v.updated_at = this.stamp();
        v.updated_by = t.user;
        this.countWrite(sc.site);
        return { status: 204 };
      }),
    );

    // createSiteBuild: an empty POST rebuilds; `branch` picks a branch deploy.
    s.route(
      'POST',
      '/api/v1/sites/:site/builds',
      this.guard((req, t) => {
        const site = this.visibleSite(req.params.site, t);
        if (!site) return nerr(404, 'Not Found');
        const denied = this.canWrite(t);
        if (denied) return denied;
        const now = Date.now();
        site.buildTimes = site.buildTimes.filter((x) => now - x < 60_000);
        if (site.buildTimes.length >= this.deploysPerMinute) {
          const reset = Math.ceil((site.buildTimes[0]! + 60_000) / 1000);
          return {
            ...nerr(429, 'Deploy rate limit exceeded'),
            headers: { 'X-RateLimit-Limit': String(this.deploysPerMinute), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(reset) },
          };
        }
        site.buildTimes.push(now);
        const branch = req.query.get('branch') || site.mainBranch;
        const context = branch === site.mainBranch ? 'production' : 'branch-deploy';
        const fi = this.failDeploys.findIndex((f) => !f.site || f.site === site.id);
        const fail = fi >= 0 ? this.failDeploys.splice(fi, 1)[0] : undefined;
        const d: Deploy = {
          id: hexId(),
          buildId: hexId(),
          siteId: site.id,
          branch,
          context,
          createdAt: now,
          fails: fail !== undefined,
          failMessage: fail?.message,
          // The snapshot: what this build will bake in, fixed when it starts.
          env: this.resolveEnv(site, context, branch),
        };
        site.deploys.push(d);
        return { status: 200, body: this.buildJson(d) };
      }),
    );

    s.route(
      'GET',
      '/api/v1/sites/:site/builds',
      this.guard((req, t) => {
        const site = this.visibleSite(req.params.site, t);
        if (!site) return nerr(404, 'Not Found');
        return paginate(req, [...site.deploys].reverse().map((d) => this.buildJson(d)), this.url);
      }),
    );

    s.route(
      'GET',
      '/api/v1/builds/:build',
      this.guard((req, t) => {
        for (const site of this.sites.values()) {
          const d = site.deploys.find((x) => x.buildId === req.params.build);
          if (d && this.visibleSite(site.id, t)) return { status: 200, body: this.buildJson(d) };
        }
        return nerr(404, 'Not Found');
      }),
    );

    s.route(
      'GET',
      '/api/v1/sites/:site/deploys',
      this.guard((req, t) => {
        const site = this.visibleSite(req.params.site, t);
        if (!site) return nerr(404, 'Not Found');
        return paginate(req, [...site.deploys].reverse().map((d) => this.deployJson(site, d)), this.url);
      }),
    );

    s.route(
      'GET',
      '/api/v1/sites/:site/deploys/:deploy',
      this.guard((req, t) => {
        const site = this.visibleSite(req.params.site, t);
        const d = site?.deploys.find((x) => x.id === req.params.deploy);
        return site && d ? { status: 200, body: this.deployJson(site, d) } : nerr(404, 'Not Found');
      }),
    );

    s.route(
      'GET',
      '/api/v1/deploys/:deploy',
      this.guard((req, t) => {
        for (const site of this.sites.values()) {
          const d = site.deploys.find((x) => x.id === req.params.deploy);
          if (d && this.visibleSite(site.id, t)) return { status: 200, body: this.deployJson(site, d) };
        }
        return nerr(404, 'Not Found');
      }),
    );
  }
}

/** `page` (1-based) / `per_page` (default 100) with a `Link` header (rel next/last), as Netlify's lists. */
function paginate(req: EmuRequest, items: unknown[], base: string): EmuResponse {
  const perPage = Math.min(100, Math.max(1, Number(req.query.get('per_page') ?? 100) || 100));
  const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p: number) => `<${base}${req.path}?page=${p}&per_page=${perPage}>`;
  const links: string[] = [];
  if (page < last) links.push(`${link(page + 1)}; rel="next"`);
  if (page > 1) links.push(`${link(page - 1)}; rel="prev"`);
  links.push(`${link(last)}; rel="last"`);
  return { status: 200, headers: { Link: links.join(', ') }, body: items.slice((page - 1) * perPage, page * perPage) };
}

import { randomBytes } from 'node:crypto';
import { HttpEmulator, type EmuRequest, type EmuResponse } from '../server.ts';
import { isResponse, type EmuApi, type Handler } from './api.ts';
import { registerSecretRoutes } from './secret-routes.ts';
import { registerWorkflowRoutes, runView } from './workflow-routes.ts';
import { ghError, iso, paginate, SecretStore, type Access, type Org, type Permission, type Repo, type StoredSecret, type TokenInfo, type WorkflowRun } from './state.ts';

/**
 * A loopback emulator of the GitHub REST API parts keyrot uses for Actions (and Dependabot)
 * secrets: repositories, environments, organisations, their secret stores and public keys,
 * workflows, dispatches and runs, and the token listings discovery walks. Faithful where a
 * client depends on it:
 * - `Authorization: token X` or `Bearer X`; 401 `Requires authentication` / `Bad credentials`;
 *   errors are `{message, documentation_url, status}` (docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api).
 * - Fine-grained permissions per token (403 `Resource not accessible by personal access token`,
 *   with `x-accepted-github-permissions`), and 404 for repositories the token cannot see (GitHub
 *   does not reveal private repositories).
 * - Values are write-only: sealed with the store's public key (libsodium sealed box), opened by
 *   the emulator (GitHub's side), never returned.
 * - The primary rate limit on every answer (`x-ratelimit-limit/remaining/used/reset/resource`);
 *   403 with `x-ratelimit-remaining: 0` once spent; secondary limits as 403/429 with `retry-after`
 *   (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api).
 * - Pagination with `per_page`/`page` and a `Link` header.
 * `prefix: '/api/v3'` serves the same API the way GitHub Enterprise Server does.
 */

export interface GitHubEmulatorOptions {
  /** GHES serves the API under /api/v3. */
  prefix?: string;
  /** How long a dispatched run takes from dispatch to completion (default 300 ms). */
  runMs?: number;
  /** Whether dispatches know `return_run_details` (GitHub.com does; GHES 3.20 and older refuse the field). Default true. */
  runDetails?: boolean;
  /** Primary rate limit per token per hour (default 5000). */
  rateLimit?: number;
  now?: () => number;
}

export type SecretRef = { repo: string; environment?: string; dependabot?: boolean } | { org: string; dependabot?: boolean };

export interface TokenOptions {
  kind?: 'pat' | 'installation';
  /** Fine-grained permissions; default: write on everything. */
  permissions?: Partial<Record<Permission, Access>>;
  repos?: string[];
  orgs?: string[];
}

const ALL_WRITE: Record<Permission, Access> = {
  secrets: 'write',
  environments: 'write',
  dependabot_secrets: 'write',
  actions: 'write',
  organization_secrets: 'write',
  organization_dependabot_secrets: 'write',
};

export class GitHubEmulator extends HttpEmulator {
  private readonly repos = new Map<string, Repo>();
  private readonly orgs = new Map<string, Org>();
  private readonly tokens = new Map<string, TokenInfo>();
  private readonly prefix: string;
  private readonly limit: number;
  private id = 1_000;
  private failRuns = 0;
  private writes = 0;
  readonly now: () => number;
  readonly runOptions: { durationMs: number; details: boolean };

  constructor(opts: GitHubEmulatorOptions = {}) {
    super({ name: 'github', notFound: () => ghError(404, 'Not Found') });
    this.prefix = opts.prefix ?? '';
    this.limit = opts.rateLimit ?? 5000;
    this.now = opts.now ?? (() => Date.now());
    this.runOptions = { durationMs: opts.runMs ?? 300, details: opts.runDetails ?? true };
    const api = this.api();
    registerSecretRoutes(api);
    registerWorkflowRoutes(api);
    this.listingRoutes(api);
  }

  /** What `endpoint:` points at: the API root (with /api/v3 for a GHES-style emulator). */
  override get url(): string {
    return this.server.url + this.prefix;
  }

  // ---- helpers for tests and the demo -------------------------------------------------------

  addToken(opts: TokenOptions = {}): string {
    const token = `${opts.kind === 'installation' ? 'ghs' : 'github_pat'}_${randomBytes(20).toString('hex')}`;
    this.tokens.set(token, {
      kind: opts.kind ?? 'pat',
      permissions: new Map(Object.entries(opts.permissions ?? ALL_WRITE) as Array<[Permission, Access]>),
      repos: opts.repos ? new Set(opts.repos.map((r) => r.toLowerCase())) : undefined,
      orgs: opts.orgs ? new Set(opts.orgs.map((o) => o.toLowerCase())) : undefined,
      userId: this.nextId(),
      remaining: this.limit,
      resetAt: this.now() + 3_600_000,
    });
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** Spends a token's primary rate limit: 403 with `x-ratelimit-remaining: 0` until `resetInMs` passes. */
  exhaustRateLimit(token: string, resetInMs = 60_000): void {
    const t = this.tokens.get(token)!;
    t.remaining = 0;
    t.resetAt = this.now() + resetInMs;
  }

  /** The next matching request(s) hit a secondary rate limit: 403 (or 429) with `retry-after`. */
  failNextWithSecondaryLimit(opts: { retryAfterSeconds?: number; status?: 403 | 429; times?: number; method?: string; path?: RegExp } = {}): void {
    const reset = Math.ceil((this.now() + 3_600_000) / 1000);
    this.server.failNext({
      times: opts.times ?? 1,
      method: opts.method,
      path: opts.path,
      status: opts.status ?? 403,
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'retry-after': String(opts.retryAfterSeconds ?? 1),
        'x-ratelimit-limit': String(this.limit),
        'x-ratelimit-remaining': String(this.limit - 1),
        'x-ratelimit-reset': String(reset),
      },
      body: {
        message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
        documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        status: String(opts.status ?? 403),
      },
    });
  }

  seedRepo(fullName: string, opts: { private?: boolean; environments?: string[]; branches?: string[]; workflows?: Array<{ file: string; name?: string; dispatchable?: boolean; environment?: string }> } = {}): Repo {
    const [owner, name] = fullName.split('/') as [string, string];
    const repo: Repo = {
      id: this.nextId(),
      owner,
      name,
      private: opts.private ?? true,
      branches: new Set(opts.branches ?? ['main']),
      actions: new SecretStore(),
      dependabot: new SecretStore(),
      environments: new Map(),
      workflows: (opts.workflows ?? []).map((w) => ({ id: this.nextId(), name: w.name ?? w.file, path: `.github/workflows/${w.file}`, dispatchable: w.dispatchable ?? true, environment: w.environment })),
      runs: [],
    };
    for (const env of opts.environments ?? []) repo.environments.set(env, { id: this.nextId(), name: env, createdAt: this.now(), store: new SecretStore() });
    this.repos.set(fullName.toLowerCase(), repo);
    return repo;
  }

  seedOrg(login: string): Org {
    const org: Org = { id: this.nextId(), login, actions: new SecretStore(), dependabot: new SecretStore() };
    this.orgs.set(login.toLowerCase(), org);
    return org;
  }

  /** Sets a secret directly (no API call, no write counted), as if set long ago. */
  setSecret(ref: SecretRef, name: string, value: string, opts: { visibility?: StoredSecret['visibility']; selectedRepositoryIds?: number[]; at?: number } = {}): void {
    const at = opts.at ?? this.now() - 86_400_000;
    const store = this.store(ref);
    const prev = store.get(name);
    store.secrets.set(name.toUpperCase(), {
      name: name.toUpperCase(),
      value,
      createdAt: prev?.createdAt ?? at,
      updatedAt: at,
      ...('org' in ref ? { visibility: opts.visibility ?? prev?.visibility ?? 'private', selectedRepositoryIds: opts.selectedRepositoryIds ?? prev?.selectedRepositoryIds } : {}),
    });
  }

  /** What a secret holds (GitHub's side), or undefined when it does not exist. */
  peekSecret(ref: SecretRef, name: string): StoredSecret | undefined {
    const s = this.store(ref).get(name);
    return s ? { ...s } : undefined;
  }

  deleteSecret(ref: SecretRef, name: string): void {
    this.store(ref).secrets.delete(name.toUpperCase());
  }

  /** GitHub rotates a store's public key: values sealed to the old one no longer open. */
  rotatePublicKey(ref: SecretRef): void {
    this.store(ref).rotateKey();
  }

  /** The next dispatched run concludes `failure`. */
  failNextRun(): void {
    this.failRuns++;
  }

  /** A repository's runs with their current status, oldest first, and the secrets each saw. */
  runs(fullName: string): Array<Record<string, unknown> & { secretsSeen: Record<string, string> }> {
    const repo = this.mustRepo(fullName);
    return repo.runs.map((r: WorkflowRun) => ({ ...runView(this.api(), repo, r), secretsSeen: { ...r.secretsSeen } }));
  }

  /** Secrets created, changed or deleted through the API so far. */
  writeCount(): number {
    return this.writes;
  }

  /** The plaintext a request body's `encrypted_value` carries (for matching faults to the write of a key). */
  openSealed(rawBody: string): string {
    let sealed: unknown;
    try {
      sealed = (JSON.parse(rawBody) as { encrypted_value?: unknown }).encrypted_value;
    } catch {
      return '';
    }
    if (typeof sealed !== 'string') return '';
    for (const store of this.allStores()) {
      const v = store.openAny(sealed);
      if (v !== undefined) return v;
    }
    return '';
  }

  // ---- internals ------------------------------------------------------------------------------

  private nextId(): number {
    return ++this.id;
  }

  private mustRepo(fullName: string): Repo {
    const r = this.repos.get(fullName.toLowerCase());
    if (!r) throw new Error(`github emulator: no repository ${fullName}`);
    return r;
  }

  private store(ref: SecretRef): SecretStore {
    if ('org' in ref) {
      const org = this.orgs.get(ref.org.toLowerCase());
      if (!org) throw new Error(`github emulator: no organisation ${ref.org}`);
      return ref.dependabot ? org.dependabot : org.actions;
    }
    const repo = this.mustRepo(ref.repo);
    if (ref.environment) {
      const env = repo.environments.get(ref.environment);
      if (!env) throw new Error(`github emulator: no environment ${ref.environment} in ${ref.repo}`);
      return env.store;
    }
    return ref.dependabot ? repo.dependabot : repo.actions;
  }

  private *allStores(): Generator<SecretStore> {
    for (const r of this.repos.values()) {
      yield r.actions;
      yield r.dependabot;
      for (const e of r.environments.values()) yield e.store;
    }
    for (const o of this.orgs.values()) {
      yield o.actions;
      yield o.dependabot;
    }
  }

  private api(): EmuApi {
    return {
      on: (method, pattern, handler) => this.server.route(method, this.prefix + pattern, (req) => this.authed(req, handler)),
      repo: (req, tok) => {
        const full = `${req.params.owner}/${req.params.repo}`.toLowerCase();
        const repo = this.repos.get(full);
        return repo && (!tok.repos || tok.repos.has(full)) ? repo : ghError(404, 'Not Found');
      },
      org: (req, tok) => {
        const login = req.params.org!.toLowerCase();
        const org = this.orgs.get(login);
        return org && (!tok.orgs || tok.orgs.has(login)) ? org : ghError(404, 'Not Found');
      },
      need: (tok, perm, access, docs) => {
        const has = tok.permissions.get(perm);
        if (has === 'write' || has === access) return undefined;
        const who = tok.kind === 'installation' ? 'integration' : 'personal access token';
        return ghError(403, `Resource not accessible by ${who}`, { docs, headers: { 'x-accepted-github-permissions': `${perm}=${access}` } });
      },
      repoById: (id) => [...this.repos.values()].find((r) => r.id === id),
      orgNamed: (login) => this.orgs.get(login.toLowerCase()),
      now: () => this.now(),
      nextId: () => this.nextId(),
      baseUrl: () => this.url,
      countWrite: () => void this.writes++,
      runs: {
        durationMs: this.runOptions.durationMs,
        details: this.runOptions.details,
        takeFailure: () => (this.failRuns > 0 ? (this.failRuns--, true) : false),
      },
    };
  }

  /** Authentication, then the primary rate limit, then the route; every answer carries the rate-limit headers. */
  private async authed(req: EmuRequest, handler: Handler): Promise<EmuResponse> {
    const auth = req.headers.authorization;
    const token = auth?.replace(/^(token|bearer)\s+/i, '');
    if (!token) return ghError(401, 'Requires authentication');
    const tok = this.tokens.get(token);
    if (!tok) return ghError(401, 'Bad credentials');
    if (this.now() >= tok.resetAt) {
      tok.remaining = this.limit;
      tok.resetAt = this.now() + 3_600_000;
    }
    const headers = () => ({
      'x-ratelimit-limit': String(this.limit),
      'x-ratelimit-remaining': String(tok.remaining),
      'x-ratelimit-used': String(this.limit - tok.remaining),
      'x-ratelimit-reset': String(Math.ceil(tok.resetAt / 1000)),
      'x-ratelimit-resource': 'core',
    });
    if (tok.remaining <= 0) {
      return ghError(403, `API rate limit exceeded for user ID ${tok.userId}.`, { headers: headers(), docs: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit' });
    }
    tok.remaining--;
    const res = await handler(req, tok);
    return { ...res, headers: { ...headers(), ...res.headers } };
  }

  /** What discovery walks: the token's repositories and organisations, a repository's environments. */
  private listingRoutes(api: EmuApi): void {
    const repoJson = (r: Repo) => ({ id: r.id, name: r.name, full_name: `${r.owner}/${r.name}`, owner: { login: r.owner }, private: r.private });
    const visible = (tok: TokenInfo) => [...this.repos.entries()].filter(([k]) => !tok.repos || tok.repos.has(k)).map(([, r]) => r);
    api.on('GET', '/user/repos', (req, tok) => {
      if (tok.kind !== 'pat') return ghError(403, 'Resource not accessible by integration');
      const page = paginate(req, visible(tok));
      return { status: 200, headers: page.headers, body: page.items.map(repoJson) };
    });
    api.on('GET', '/installation/repositories', (req, tok) => {
      if (tok.kind !== 'installation') return ghError(403, 'You must authenticate with an installation access token in order to list repositories for an installation.');
      const all = visible(tok);
      const page = paginate(req, all);
      return { status: 200, headers: page.headers, body: { total_count: all.length, repositories: page.items.map(repoJson) } };
    });
    api.on('GET', '/user/orgs', (req, tok) => {
      if (tok.kind !== 'pat') return ghError(403, 'Resource not accessible by integration');
      const orgs = [...this.orgs.entries()].filter(([k]) => !tok.orgs || tok.orgs.has(k)).map(([, o]) => ({ id: o.id, login: o.login }));
      const page = paginate(req, orgs);
      return { status: 200, headers: page.headers, body: page.items };
    });
    api.on('GET', '/repos/:owner/:repo', (req, tok) => {
      const repo = api.repo(req, tok);
      return isResponse(repo) ? repo : { status: 200, body: repoJson(repo) };
    });
    api.on('GET', '/repos/:owner/:repo/environments', (req, tok) => {
      const repo = api.repo(req, tok);
      if (isResponse(repo)) return repo;
      const denied = api.need(tok, 'actions', 'read', 'https://docs.github.com/rest/deployments/environments#list-environments');
      if (denied) return denied;
      const all = [...repo.environments.values()];
      const page = paginate(req, all);
      return { status: 200, headers: page.headers, body: { total_count: all.length, environments: page.items.map((e) => ({ id: e.id, name: e.name, created_at: iso(e.createdAt) })) } };
    });
  }
}

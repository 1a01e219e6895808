import { randomBytes, randomUUID } from 'node:crypto';
import { HttpEmulator, bearer, type EmuRequest, type EmuResponse } from '../server.ts';

/**
 * A loopback emulator of the Cloudflare API parts keyrot uses for Worker secrets: accounts,
 * scripts, their secrets, versions and deployments. Faithful where a client depends on it:
 * - The v4 envelope: `{success, errors: [{code, message}], messages, result}` (+ `result_info`
 *   on lists); `10007` "This Worker does not exist on your account." (404).
 * - `Authorization: Bearer <token>`; a token the API does not know, or one without access to the
 *   account, gets code `10000` "Authentication error" (401 for an unknown token, 403 for one
 *   without the permission: assumed split; Cloudflare documents only the code).
 * - Secrets are write-only: `GET …/secrets` lists `{name, type}`; a version's bindings name them
 *   without their text.
 * - A secret change (PUT, DELETE) creates a new version from the latest one and deploys it to
 *   100% of traffic (`workers/triggered_by: secret`); refused with `10215` when the latest
 *   version is not the one deployed at 100% (wrangler src/secret/index.ts).
 * - Deployments list newest first (`result.deployments`), versions newest first (`result.items`).
 * - Rate limit: 1200 requests per 5 minutes per token; `Ratelimit: "default";r=…;t=…` and
 *   `Ratelimit-Policy` on every answer, 429 with `retry-after` (code 971) when spent
 *   (developers.cloudflare.com/fundamentals/api/reference/limits).
 */

export const CF_LIMIT = 1200;
const WINDOW_MS = 5 * 60_000;

interface Binding {
  name: string;
  type: string;
  text?: string;
}

interface Version {
  id: string;
  number: number;
  createdOn: number;
  source: string;
  triggeredBy: string;
  bindings: Binding[];
}

interface Deployment {
  id: string;
  createdOn: number;
  triggeredBy: string;
  versions: Array<{ version_id: string; percentage: number }>;
}

interface Worker {
  name: string;
  createdOn: number;
  versions: Version[];
  deployments: Deployment[];
}

interface TokenInfo {
  accounts: Set<string> | undefined;
  access: 'edit' | 'read';
  remaining: number;
  windowEnds: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function cfEnvelope(result: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { success: true, errors: [], messages: [], result, ...extra };
}

export function cfError(status: number, code: number, message: string, headers?: Record<string, string>): EmuResponse {
  return { status, headers, body: { success: false, errors: [{ code, message }], messages: [], result: null } };
}

export class CloudflareEmulator extends HttpEmulator {
  private readonly accounts = new Map<string, { name: string; workers: Map<string, Worker> }>();
  private readonly tokens = new Map<string, TokenInfo>();
  private writes = 0;

  constructor() {
    super({ name: 'cloudflare', notFound: () => cfError(404, 7003, 'Could not route to /, perhaps your object identifier is invalid?') });
    this.routes();
  }

  /** The API root, as `endpoint:` takes it (…/client/v4). */
  override get url(): string {
    return `${this.server.url}/client/v4`;
  }

  // ---- helpers for tests and the demo -------------------------------------------------------

  /** A token for `accounts` (all when omitted) with Workers Scripts Edit (or only Read). */
  addToken(opts: { accounts?: string[]; access?: 'edit' | 'read' } = {}): string {
    const token = randomBytes(30).toString('base64url');
    this.tokens.set(token, { accounts: opts.accounts ? new Set(opts.accounts) : undefined, access: opts.access ?? 'edit', remaining: CF_LIMIT, windowEnds: Date.now() + WINDOW_MS });
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** Leaves `remaining` requests in a token's window (0: 429 until it resets in `resetMs`). */
  setRemaining(token: string, remaining: number, resetMs = WINDOW_MS): void {
    const t = this.tokens.get(token)!;
    t.remaining = remaining;
    t.windowEnds = Date.now() + resetMs;
  }

  /** The next matching request(s) answer Cloudflare's 429 (code 971, `retry-after`). */
  failNextWithRateLimit(opts: { times?: number; retryAfterSeconds?: number } = {}): void {
    this.server.failNext({
      times: opts.times ?? 1,
      ...cfError(429, 971, 'Please wait and consider throttling your request speed', {
        'retry-after': String(opts.retryAfterSeconds ?? 1),
        ratelimit: `"default";r=0;t=${opts.retryAfterSeconds ?? 1}`,
        'ratelimit-policy': `"default";q=${CF_LIMIT};w=300`,
      }),
    });
  }

  seedAccount(id: string, name = `${id}'s Account`): void {
    this.accounts.set(id, { name, workers: new Map() });
  }

  /** A Worker with a first version (its secrets and plain vars) deployed to all traffic. */
  seedWorker(account: string, name: string, opts: { secrets?: Record<string, string>; vars?: Record<string, string> } = {}): void {
    const acct = this.accounts.get(account) ?? (this.seedAccount(account), this.accounts.get(account)!);
    const worker: Worker = { name, createdOn: Date.now(), versions: [], deployments: [] };
    const bindings: Binding[] = [
      ...Object.entries(opts.vars ?? {}).map(([n, text]) => ({ name: n, type: 'plain_text', text })),
      ...Object.entries(opts.secrets ?? {}).map(([n, text]) => ({ name: n, type: 'secret_text', text })),
    ];
    acct.workers.set(name, worker);
    this.deploy(worker, this.newVersion(worker, bindings, 'upload'), 'upload');
  }

  /** Uploads a version without deploying it (`wrangler versions upload`). */
  uploadVersion(account: string, script: string): string {
    const w = this.mustWorker(account, script);
    return this.newVersion(w, structuredClone(w.versions.at(-1)!.bindings), 'version_upload').id;
  }

  /** Deploys versions with percentages (a gradual deployment when two). */
  deployVersions(account: string, script: string, versions: Array<{ version_id: string; percentage: number }>): void {
    const w = this.mustWorker(account, script);
    w.deployments.push({ id: randomUUID(), createdOn: Date.now(), triggeredBy: 'deployment', versions });
  }

  /** What the Worker runs for `name` (the text in the version serving all traffic), or undefined. */
  peekSecret(account: string, script: string, name: string): string | undefined {
    const w = this.mustWorker(account, script);
    const serving = w.deployments.at(-1)?.versions.find((v) => v.percentage === 100)?.version_id ?? w.deployments.at(-1)?.versions[0]?.version_id;
    return w.versions.find((v) => v.id === serving)?.bindings.find((b) => b.name === name && b.type === 'secret_text')?.text;
  }

  versions(account: string, script: string): Array<{ id: string; number: number; triggeredBy: string }> {
    return this.mustWorker(account, script).versions.map((v) => ({ id: v.id, number: v.number, triggeredBy: v.triggeredBy }));
  }

  deployments(account: string, script: string): Array<{ id: string; triggeredBy: string; versions: Array<{ version_id: string; percentage: number }> }> {
    return this.mustWorker(account, script).deployments.map((d) => ({ id: d.id, triggeredBy: d.triggeredBy, versions: d.versions }));
  }

  /** Secret changes made through the API (each one a new version and deployment). */
  writeCount(): number {
    return this.writes;
  }

  // ---- internals ------------------------------------------------------------------------------

  private mustWorker(account: string, script: string): Worker {
    const w = this.accounts.get(account)?.workers.get(script);
    if (!w) throw new Error(`cloudflare emulator: no Worker ${script} in account ${account}`);
    return w;
  }

  private newVersion(w: Worker, bindings: Binding[], triggeredBy: string): Version {
    const v: Version = { id: randomUUID(), number: (w.versions.at(-1)?.number ?? 0) + 1, createdOn: Date.now(), source: 'api', triggeredBy, bindings };
    w.versions.push(v);
    return v;
  }

  private deploy(w: Worker, v: Version, triggeredBy: string): void {
    w.deployments.push({ id: randomUUID(), createdOn: Date.now(), triggeredBy, versions: [{ version_id: v.id, percentage: 100 }] });
  }

  /** Authentication, the account, the permission and the rate limit, then the route; every answer carries the Ratelimit headers. */
  private on(method: string, pattern: string, handler: (req: EmuRequest, acct: { name: string; workers: Map<string, Worker> }) => EmuResponse, need: 'read' | 'edit' = 'read'): void {
    this.server.route(method, `/client/v4${pattern}`, (req) => {
      const token = bearer(req);
      const tok = token ? this.tokens.get(token) : undefined;
      if (!tok) return cfError(token ? 401 : 400, 10000, 'Authentication error');
      if (Date.now() >= tok.windowEnds) Object.assign(tok, { remaining: CF_LIMIT, windowEnds: Date.now() + WINDOW_MS });
      const headers = { ratelimit: `"default";r=${Math.max(0, tok.remaining - 1)};t=${Math.ceil((tok.windowEnds - Date.now()) / 1000)}`, 'ratelimit-policy': `"default";q=${CF_LIMIT};w=300` };
      if (tok.remaining <= 0) return cfError(429, 971, 'Please wait and consider throttling your request speed', { ...headers, 'retry-after': String(Math.ceil((tok.windowEnds - Date.now()) / 1000)) });
      tok.remaining--;
      const account = req.params.account;
      const acct = account ? this.accounts.get(account) : { name: '', workers: new Map<string, Worker>() };
      const allowed = !account || !tok.accounts || tok.accounts.has(account);
      let res: EmuResponse;
      if (!acct || !allowed || (need === 'edit' && tok.access !== 'edit')) res = cfError(403, 10000, 'Authentication error');
      else res = handler(req, acct);
      return { ...res, headers: { ...headers, ...res.headers } };
    });
  }

  private routes(): void {
    const script = '/accounts/:account/workers/scripts/:script';
    const withWorker = (fn: (req: EmuRequest, w: Worker) => EmuResponse) => (req: EmuRequest, acct: { workers: Map<string, Worker> }) => {
      const w = acct.workers.get(req.params.script!);
      return w ? fn(req, w) : cfError(404, 10007, 'This Worker does not exist on your account.');
    };
    this.on('GET', '/accounts', (req) => this.listAccounts(req));
    this.on('GET', '/accounts/:account/workers/scripts', (_req, acct) => ({
      status: 200,
      body: cfEnvelope([...acct.workers.values()].map((w) => ({ id: w.name, created_on: iso(w.createdOn), modified_on: iso(w.versions.at(-1)!.createdOn), handlers: ['fetch'] }))),
    }));
    this.on('GET', `${script}/secrets`, withWorker((_req, w) => ({ status: 200, body: cfEnvelope(secretsOf(w.versions.at(-1)!)) })));
    this.on('GET', `${script}/secrets/:name`, withWorker((req, w) => {
      const s = secretsOf(w.versions.at(-1)!).find((b) => b.name === req.params.name);
      return s ? { status: 200, body: cfEnvelope(s) } : cfError(404, 10056, 'Secret not found');
    }));
    this.on('PUT', `${script}/secrets`, withWorker((req, w) => this.putSecret(req, w)), 'edit');
    this.on('DELETE', `${script}/secrets/:name`, withWorker((req, w) => this.deleteSecret(req, w)), 'edit');
    this.on('GET', `${script}/versions`, withWorker((req, w) => this.listVersions(req, w)));
    this.on('GET', `${script}/versions/:version`, withWorker((req, w) => {
      const v = w.versions.find((x) => x.id === req.params.version);
      return v ? { status: 200, body: cfEnvelope(versionView(v, true)) } : cfError(404, 10235, 'Version not found');
    }));
    this.on('GET', `${script}/deployments`, withWorker((_req, w) => ({ status: 200, body: cfEnvelope({ deployments: [...w.deployments].reverse().map(deploymentView) }) })));
  }

  private listAccounts(req: EmuRequest): EmuResponse {
    const tok = this.tokens.get(bearer(req)!)!;
    const all = [...this.accounts.entries()].filter(([id]) => !tok.accounts || tok.accounts.has(id));
    const perPage = Number(req.query.get('per_page') ?? 20) || 20;
    const page = Number(req.query.get('page') ?? 1) || 1;
    const items = all.slice((page - 1) * perPage, page * perPage).map(([id, a]) => ({ id, name: a.name, type: 'standard' }));
    const resultInfo = { page, per_page: perPage, count: items.length, total_count: all.length, total_pages: Math.ceil(all.length / perPage) };
    return { status: 200, body: cfEnvelope(items, { result_info: resultInfo }) };
  }

  /** Cloudflare refuses a secret change unless the latest version is the one serving all traffic (10215). */
  private latestIsDeployed(w: Worker): boolean {
    const d = w.deployments.at(-1);
    return !!d && d.versions.length === 1 && d.versions[0]!.percentage === 100 && d.versions[0]!.version_id === w.versions.at(-1)!.id;
  }

  private putSecret(req: EmuRequest, w: Worker): EmuResponse {
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
    if (typeof body.name !== 'string' || typeof body.text !== 'string' || body.type !== 'secret_text') return cfError(400, 10021, 'Invalid secret binding: name, text and type secret_text are required');
    if (!this.latestIsDeployed(w)) {
      return cfError(400, 10215, "Secret edit failed. You attempted to modify a secret, but the latest version of your Worker isn't currently deployed.");
    }
    const bindings = w.versions.at(-1)!.bindings.filter((b) => b.name !== body.name);
    bindings.push({ name: body.name, type: 'secret_text', text: body.text });
    this.deploy(w, this.newVersion(w, bindings, 'secret'), 'secret');
    this.writes++;
    return { status: 200, body: cfEnvelope({ name: body.name, type: 'secret_text' }) };
  }

  private deleteSecret(req: EmuRequest, w: Worker): EmuResponse {
    const latest = w.versions.at(-1)!;
    if (!latest.bindings.some((b) => b.name === req.params.name && b.type === 'secret_text')) return cfError(404, 10056, 'Secret not found');
    if (!this.latestIsDeployed(w)) return cfError(400, 10215, "Secret edit failed. You attempted to modify a secret, but the latest version of your Worker isn't currently deployed.");
    this.deploy(w, this.newVersion(w, latest.bindings.filter((b) => b.name !== req.params.name), 'secret'), 'secret');
    this.writes++;
    return { status: 200, body: cfEnvelope(null) };
  }

  private listVersions(req: EmuRequest, w: Worker): EmuResponse {
    const perPage = Math.min(100, Number(req.query.get('per_page') ?? 10) || 10);
    const page = Number(req.query.get('page') ?? 1) || 1;
    const newest = [...w.versions].reverse();
    const items = newest.slice((page - 1) * perPage, page * perPage).map((v) => versionView(v, false));
    return { status: 200, body: cfEnvelope({ items }, { result_info: { page, per_page: perPage, count: items.length, total_count: newest.length } }) };
  }
}

function secretsOf(v: Version): Array<{ name: string; type: string }> {
  return v.bindings.filter((b) => b.type === 'secret_text').map((b) => ({ name: b.name, type: b.type }));
}

/** A version as the API shows it: secret bindings named, never their text. */
function versionView(v: Version, withResources: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: v.id,
    number: v.number,
    metadata: { created_on: iso(v.createdOn), modified_on: iso(v.createdOn), source: v.source, author_email: 'operator@example.com' },
    annotations: { 'workers/triggered_by': v.triggeredBy },
  };
  if (withResources) out.resources = { bindings: v.bindings.map((b) => (b.type === 'secret_text' ? { name: b.name, type: b.type } : { ...b })), script: { handlers: ['fetch'] } };
  return out;
}

function deploymentView(d: Deployment): Record<string, unknown> {
  return { id: d.id, created_on: iso(d.createdOn), source: 'api', strategy: 'percentage', versions: d.versions, annotations: { 'workers/triggered_by': d.triggeredBy }, author_email: 'operator@example.com' };
}

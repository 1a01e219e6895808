import { createHash, createHmac, randomBytes } from 'node:crypto';
import { HttpEmulator, type EmuRequest, type EmuResponse } from '../server.ts';
import { RateWindows } from '../rate-window.ts';

/**
 * A loopback emulator of the Fly Machines API (`https://api.machines.dev/v1`) parts keyrot uses:
 * apps, app secrets and machines. Sources: superfly/fly-go flaps/flaps_secrets.go and
 * secrets_types.go (the secrets endpoints flyctl uses), superfly/flyctl internal/appsecrets and
 * internal/command/secrets (set = update secrets, then update every machine with
 * `min_secrets_version`), superfly/docs machines/api/* (apps, machines, wait, rate limits) and
 * apps/secrets.html.markerb (the digest). Faithful where a client can tell:
 *
 * - `Authorization: FlyV1 fm2_...` for macaroon tokens (what `fly tokens deploy|org` print),
 *   `Bearer` for others (fly-go tokens.go); errors are `{"error": "..."}` (fly-go flaps_error.go).
 * - Secrets are write-only: `GET /apps/{app}/secrets` lists `{name, digest, created_at,
 *   updated_at}`; the digest is the MD5 hex of the value, as in Fly's docs example.
 *   `POST /apps/{app}/secrets` `{"values": {"NAME": "value" | null}}` sets and unsets (null),
 *   answering `{secrets, version}`: every change bumps the app's secrets `version`.
 * - Machines run the secrets they booted with. `POST /apps/{app}/machines/{id}` (update) with
 *   `min_secrets_version` boots a new `instance_id` with secrets at least that recent; without it
 *   a machine may boot with an older replica (`staleReplicas`, what min_secrets_version exists for).
 *   A running machine goes replacing → starting → started (`phaseMs` each); a stopped one stays
 *   stopped with `skip_launch`. A leased machine refuses an update without its nonce (409).
 * - Rate limits: 1 request per second per action and machine (or app), bursts of 3; Get Machine
 *   5/s, bursts of 10 (docs: working-with-machines-api) — 429 past them.
 */

export interface FlyMachineView {
  id: string;
  state: string;
  instanceId: string;
  /** The secrets this machine booted with, and their version. */
  env: Record<string, string>;
  secretsVersion: number;
}

interface Machine {
  id: string;
  name: string;
  region: string;
  config: Record<string, unknown>;
  /** Steps of the current instance: [state, from-ms] in order; the last one reached is the state. */
  timeline: Array<[string, number]>;
  instanceId: string;
  env: Record<string, string>;
  secretsVersion: number;
  lease?: string;
  createdAt: number;
}

interface App {
  id: string;
  name: string;
  org: string;
  secrets: Map<string, { value: string; createdAt: string; updatedAt: string }>;
  version: number;
  /** Secret values per version, for machines booting at an older replica. */
  history: Array<Record<string, string>>;
  machines: Map<string, Machine>;
}

interface TokenInfo {
  /** Apps the token reaches (a deploy token: one); undefined = every app of its orgs. */
  apps: Set<string> | undefined;
  orgs: Set<string>;
}

export interface FlyEmulatorOptions {
  /** Length of each machine start phase in ms (default 0: started at once). */
  phaseMs?: number;
  /** A machine updated without min_secrets_version boots with the secrets before the latest change. */
  staleReplicas?: boolean;
  /**
   * Requests per second per action and app or machine (default 3, Fly's documented burst). The
   * conformance suite raises it: it fires a rotation's calls back to back, which a real rotation
   * spreads over seconds; test/targets/fly.test.ts checks the documented limit.
   */
  actionBurst?: number;
  /**
   * `opaque`: digests keyed with a secret of the emulator's, as a provider that changed its digest
   * scheme would list them (default `md5`, as in Fly's docs example).
   */
  digest?: 'md5' | 'opaque';
}

const ferr = (status: number, error: string): EmuResponse => ({ status, body: { error } });
const md5 = (v: string) => createHash('md5').update(v, 'utf8').digest('hex');
const hex = (n: number) => randomBytes(n).toString('hex');
const ulid = () => randomBytes(13).toString('base64url').toUpperCase().replace(/[^A-Z0-9]/g, '0').slice(0, 26);
const STOPPED = new Set(['stopped', 'suspended', 'created']);

export class FlyEmulator extends HttpEmulator {
  private readonly apps = new Map<string, App>();
  private readonly tokens = new Map<string, TokenInfo>();
  private readonly actions: RateWindows;
  private readonly gets = new RateWindows(10, 1_000);
  private readonly failStarts: Array<{ app?: string }> = [];
  private readonly phaseMs: number;
  private readonly staleReplicas: boolean;
  private readonly digestOf: (value: string) => string;
  /** Secret changes that reached an app: proves a no-op. */
  private readonly secretWrites = new Map<string, number>();

  constructor(opts: FlyEmulatorOptions = {}) {
    super({ name: 'fly', notFound: () => ferr(404, 'Not Found') });
    this.phaseMs = opts.phaseMs ?? 0;
    this.actions = new RateWindows(opts.actionBurst ?? 3, 1_000);
    this.staleReplicas = opts.staleReplicas ?? false;
    const pepper = randomBytes(16);
    this.digestOf = opts.digest === 'opaque' ? (v) => createHmac('sha256', pepper).update(v).digest('hex').slice(0, 32) : md5;
    this.routes();
  }

  // ---- helpers for tests and the demo -------------------------------------------------------

  /**
   * A token as `fly tokens deploy` (one app) or `fly tokens org` (every app of the org) prints it:
   * `FlyV1 fm2_...`. `macaroon: false` gives an OAuth-style token sent as `Bearer`.
   */
  addToken(opts: { apps?: string[]; orgs?: string[]; macaroon?: boolean } = {}): string {
    const raw = opts.macaroon === false ? `fo1_${randomBytes(24).toString('base64url')}` : `fm2_${randomBytes(48).toString('base64url')}`;
    this.tokens.set(raw, { apps: opts.apps ? new Set(opts.apps) : undefined, orgs: new Set(opts.orgs ?? ['personal']) });
    return opts.macaroon === false ? raw : `FlyV1 ${raw}`;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token.replace(/^FlyV1\s+|^Bearer\s+/i, ''));
  }

  /** An app with secrets and `machines` started machines running them (plus `stopped` stopped ones). */
  seedApp(name: string, opts: { org?: string; secrets?: Record<string, string>; machines?: number; stopped?: number } = {}): void {
    const now = new Date().toISOString();
    const secrets = new Map(Object.entries(opts.secrets ?? {}).map(([k, v]) => [k, { value: v, createdAt: now, updatedAt: now }]));
    const app: App = { id: hex(8), name, org: opts.org ?? 'personal', secrets, version: 1, history: [], machines: new Map() };
    app.history[1] = this.values(app);
    this.apps.set(name, app);
    const add = (state: string) => {
      const m: Machine = {
        id: hex(7),
        name: `${name}-${hex(2)}`,
        region: 'ord',
        config: { image: `registry.fly.io/${name}:deployment-01`, guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 }, metadata: { fly_process_group: 'app' } },
        timeline: [[state, 0]],
        instanceId: ulid(),
        env: this.values(app),
        secretsVersion: app.version,
        createdAt: Date.now() - 3_600_000,
      };
      app.machines.set(m.id, m);
    };
    for (let i = 0; i < (opts.machines ?? 1); i++) add('started');
    for (let i = 0; i < (opts.stopped ?? 0); i++) add('stopped');
  }

  /** Sets (null: unsets) a secret directly, as `fly secrets set --stage` would: the version moves. */
  setSecret(app: string, name: string, value: string | null): void {
    this.change(this.mustApp(app), { [name]: value });
  }

  /** The stored value (Fly never returns it). */
  secret(app: string, name: string): string | undefined {
    return this.mustApp(app).secrets.get(name)?.value;
  }

  secretsVersion(app: string): number {
    return this.mustApp(app).version;
  }

  secretWriteCount(app: string): number {
    return this.secretWrites.get(app) ?? 0;
  }

  machines(app: string): FlyMachineView[] {
    return [...this.mustApp(app).machines.values()].map((m) => ({ id: m.id, state: this.state(m), instanceId: m.instanceId, env: { ...m.env }, secretsVersion: m.secretsVersion }));
  }

  /** The next machine start (of `app`, or any) fails: the machine ends `failed`. */
  failNextStart(app?: string): void {
    this.failStarts.push({ app });
  }

  /** Someone else (a running `fly deploy`) holds the machine's lease. */
  leaseMachine(app: string, id: string): void {
    this.mustApp(app).machines.get(id)!.lease = hex(8);
  }

  /** The next request(s) answer 429, as a spent per-action limit does. */
  failNextWithRateLimit(times = 1): void {
    this.server.failNext({ times, status: 429, body: { error: 'rate limit exceeded' } });
  }

  // ---- internals ------------------------------------------------------------------------------

  private mustApp(name: string): App {
    const a = this.apps.get(name);
    if (!a) throw new Error(`fly emulator: no app ${name}`);
    return a;
  }

  private values(app: App): Record<string, string> {
    return Object.fromEntries([...app.secrets].map(([k, v]) => [k, v.value]));
  }

  private change(app: App, values: Record<string, string | null>): void {
    const now = new Date().toISOString();
    for (const [k, v] of Object.entries(values)) {
      if (v === null) app.secrets.delete(k);
      else app.secrets.set(k, { value: v, createdAt: app.secrets.get(k)?.createdAt ?? now, updatedAt: now });
    }
    app.version += 1;
    app.history[app.version] = this.values(app);
  }

  private state(m: Machine): string {
    const now = Date.now();
    let state = m.timeline[0]![0];
    for (const [s, at] of m.timeline) if (now >= at) state = s;
    return state;
  }

  private secretJson(name: string, s: { value: string; createdAt: string; updatedAt: string }): Record<string, unknown> {
    return { name, digest: this.digestOf(s.value), created_at: s.createdAt, updated_at: s.updatedAt };
  }

  private machineJson(m: Machine): Record<string, unknown> {
    return {
      id: m.id,
      name: m.name,
      state: this.state(m),
      region: m.region,
      instance_id: m.instanceId,
      private_ip: 'fdaa:0:18:a7b:196:e274:9ce1:2',
      config: m.config,
      image_ref: { registry: 'registry.fly.io', repository: 'app', tag: 'deployment-01', digest: `sha256:${'0'.repeat(64)}` },
      created_at: new Date(m.createdAt).toISOString(),
      updated_at: new Date().toISOString(),
      events: [],
    };
  }

  /** Credentials (FlyV1 for macaroons, Bearer otherwise), the app the token may reach, the rate limit. */
  private guard(action: string, handler: (req: EmuRequest, t: TokenInfo) => EmuResponse) {
    return (req: EmuRequest): EmuResponse => {
      const m = /^(FlyV1|Bearer)\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''));
      const t = m ? this.tokens.get(m[2]!) : undefined;
      if (!m || !t || (m[2]!.startsWith('fm2_') !== (m[1]!.toLowerCase() === 'flyv1'))) return ferr(401, 'unauthorized');
      const appName = req.params.app;
      if (appName !== undefined) {
        const a = this.apps.get(appName);
        if (!a || (t.apps && !t.apps.has(a.name)) || !t.orgs.has(a.org)) return ferr(404, `app not found`);
      }
      const windows = action === 'get_machine' ? this.gets : this.actions;
      if (!windows.take(`${action}:${req.params.id ?? appName ?? 'org'}`).ok) return ferr(429, 'rate limit exceeded');
      return handler(req, t);
    };
  }

  private routes(): void {
    const s = this.server;
    s.route(
      'GET',
      '/v1/apps',
      this.guard('list_apps', (req, t) => {
        const org = req.query.get('org_slug');
        if (!org) return ferr(400, 'org_slug is required');
        if (!t.orgs.has(org) || t.apps) return ferr(403, 'unauthorized');
        const apps = [...this.apps.values()].filter((a) => a.org === org);
        return { status: 200, body: { total_apps: apps.length, apps: apps.map((a) => ({ id: a.id, name: a.name, machine_count: a.machines.size, volume_count: 0, network: 'default' })) } };
      }),
    );
    s.route('GET', '/v1/apps/:app', this.guard('get_app', (req) => this.withApp(req, (a) => ({ status: 200, body: { id: a.id, name: a.name, status: 'deployed', organization: { name: a.org, slug: a.org } } }))));
    s.route(
      'GET',
      '/v1/apps/:app/secrets',
      this.guard('list_secrets', (req) => this.withApp(req, (a) => ({ status: 200, body: { secrets: [...a.secrets].map(([n, x]) => this.secretJson(n, x)) } }))),
    );
    s.route('POST', '/v1/apps/:app/secrets', this.guard('update_secrets', (req) => this.withApp(req, (a) => this.updateSecrets(req, a))));
    s.route('GET', '/v1/apps/:app/machines', this.guard('list_machines', (req) => this.withApp(req, (a) => ({ status: 200, body: [...a.machines.values()].map((m) => this.machineJson(m)) }))));
    s.route('GET', '/v1/apps/:app/machines/:id', this.guard('get_machine', (req) => this.withMachine(req, (_a, m) => ({ status: 200, body: this.machineJson(m) }))));
    s.route('POST', '/v1/apps/:app/machines/:id', this.guard('update_machine', (req) => this.withMachine(req, (a, m) => this.updateMachine(req, a, m))));
  }

  private withApp(req: EmuRequest, fn: (a: App) => EmuResponse): EmuResponse {
    return fn(this.apps.get(req.params.app!)!);
  }

  private withMachine(req: EmuRequest, fn: (a: App, m: Machine) => EmuResponse): EmuResponse {
    const a = this.apps.get(req.params.app!)!;
    const m = a.machines.get(req.params.id!);
    return m ? fn(a, m) : ferr(404, 'machine not found');
  }

  private updateSecrets(req: EmuRequest, a: App): EmuResponse {
    const values = (req.body as { values?: unknown } | undefined)?.values;
    if (!values || typeof values !== 'object' || Array.isArray(values)) return ferr(400, 'values is required');
    for (const [k, v] of Object.entries(values)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) return ferr(400, `invalid secret name ${k}`);
      if (v !== null && typeof v !== 'string') return ferr(400, `invalid value for secret ${k}`);
    }
    this.change(a, values as Record<string, string | null>);
    this.secretWrites.set(a.name, this.secretWriteCount(a.name) + 1);
    const changed = Object.keys(values).flatMap((k) => (a.secrets.has(k) ? [this.secretJson(k, a.secrets.get(k)!)] : []));
    return { status: 200, body: { secrets: changed, version: a.version } };
  }

  private updateMachine(req: EmuRequest, a: App, m: Machine): EmuResponse {
    const body = (req.body ?? {}) as { config?: unknown; skip_launch?: unknown; min_secrets_version?: unknown };
    if (m.lease && req.headers['fly-machine-lease-nonce'] !== m.lease) return ferr(409, `machine ${m.id} has an active lease held by another process`);
    if (!body.config || typeof body.config !== 'object') return ferr(400, 'config is required');
    const min = typeof body.min_secrets_version === 'number' ? body.min_secrets_version : undefined;
    if (min !== undefined && min > a.version) return ferr(400, `min_secrets_version ${min} is newer than the app's secrets`);
    // Without a minimum the host may read an older replica of the secrets.
    const version = min ?? (this.staleReplicas ? Math.max(1, a.version - 1) : a.version);
    const wasStopped = STOPPED.has(this.state(m));
    const now = Date.now();
    m.config = body.config as Record<string, unknown>;
    m.instanceId = ulid();
    m.env = { ...(a.history[version] ?? this.values(a)) };
    m.secretsVersion = version;
    if (body.skip_launch === true || wasStopped) {
      m.timeline = [['stopped', now]];
    } else {
      const fi = this.failStarts.findIndex((f) => !f.app || f.app === a.name);
      const fails = fi >= 0 && this.failStarts.splice(fi, 1).length > 0;
      m.timeline = [['replacing', now], ['starting', now + this.phaseMs], [fails ? 'failed' : 'started', now + 2 * this.phaseMs]];
    }
    return { status: 200, body: this.machineJson(m) };
  }
}

import { createHash, randomBytes } from 'node:crypto';
import { HttpEmulator, bearer, type EmuRequest, type EmuResponse } from '../server.ts';
import { RateWindows, resetSeconds, type WindowState } from '../rate-window.ts';

/**
 * A loopback emulator of the Supabase Management API (`https://api.supabase.com`) parts keyrot
 * uses: projects and Edge Function secrets. Sources: supabase/cli
 * packages/api/src/generated/openapi.json (paths, SecretResponse, CreateSecretBody,
 * DeleteSecretsBody, V1ProjectWithDatabaseResponse) and the answers recorded against the real
 * service in supabase/cli apps/cli-e2e/fixtures/recorded. Faithful where a client can tell:
 *
 * - `Authorization: Bearer <token>`; errors are `{"message": "..."}` (recorded answers).
 * - `GET /v1/projects/{ref}/secrets` → `[{name, value, updated_at}]` where `value` is the
 *   SHA-256 hex digest of the secret, never the secret (supabase/terraform-provider-supabase
 *   edge_function_secrets_resource.go compares it with sha256Hex(value)); the defaults
 *   `SUPABASE_*` are listed too and cannot be changed.
 * - `POST /v1/projects/{ref}/secrets` `[{name, value}]` → 201, no body (an upsert);
 *   `DELETE` `["NAME"]` → 200, `null`; names starting with `SUPABASE_` are refused.
 * - Rate limit: 120 requests per minute per token and per project (the organization scope for
 *   `/v1/projects`), `X-RateLimit-Limit/Remaining/Reset` (seconds left) on every answer, 429 past it
 *   (supabase docs `_partials/api_rate_limits.mdx`; recorded headers).
 * - Token scopes as the OpenAPI names them: `secrets:read`, `secrets:write`, `projects:read`.
 */

export type SupabaseScope = 'secrets:read' | 'secrets:write' | 'projects:read';
const ALL_SCOPES: SupabaseScope[] = ['secrets:read', 'secrets:write', 'projects:read'];
/** The secrets every project has and nobody can set (supabase docs guides/functions/secrets). */
const DEFAULT_SECRETS = ['SUPABASE_URL', 'SUPABASE_ANON_KEY', 'SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_DB_URL'];
const NAME_MAX = 256;
const VALUE_MAX = 24576;

interface Project {
  ref: string;
  name: string;
  orgSlug: string;
  status: string;
  createdAt: string;
  secrets: Map<string, { value: string; updatedAt: string }>;
}

interface TokenInfo {
  scopes: Set<SupabaseScope>;
  /** Project refs the token reaches; undefined = all. */
  projects: Set<string> | undefined;
}

export interface SupabaseEmulatorOptions {
  /** Requests per minute per token and scope (default 120). */
  requestsPerMinute?: number;
}

const sha256 = (v: string) => createHash('sha256').update(v, 'utf8').digest('hex');
const err = (status: number, message: string): EmuResponse => ({ status, body: { message } });
const isResponse = (x: unknown): x is EmuResponse => typeof x === 'object' && x !== null && typeof (x as { status?: unknown }).status === 'number';

export class SupabaseEmulator extends HttpEmulator {
  private readonly projects = new Map<string, Project>();
  private readonly tokens = new Map<string, TokenInfo>();
  private readonly windows: RateWindows;
  /** Secret writes (POST/DELETE that reached a project) per project: proves a no-op. */
  private readonly writes = new Map<string, number>();

  constructor(opts: SupabaseEmulatorOptions = {}) {
    super({ name: 'supabase', notFound: () => err(404, 'Not Found') });
    this.windows = new RateWindows(opts.requestsPerMinute ?? 120, 60_000);
    this.routes();
  }

  // ---- helpers for tests and the demo -------------------------------------------------------

  /** A personal access token (`sbp_` + 40 hex, generated when omitted) with its scopes and projects. */
  addToken(opts: { token?: string; scopes?: SupabaseScope[]; projects?: string[] } = {}): string {
    const token = opts.token ?? `sbp_${randomBytes(20).toString('hex')}`;
    this.tokens.set(token, { scopes: new Set(opts.scopes ?? ALL_SCOPES), projects: opts.projects ? new Set(opts.projects) : undefined });
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** A project (ref: 20 lowercase letters, generated when omitted) with its own secrets besides the defaults. */
  seedProject(opts: { ref?: string; name?: string; org?: string; status?: string; secrets?: Record<string, string> } = {}): string {
    const ref = opts.ref ?? Array.from(randomBytes(20), (b) => String.fromCharCode(97 + (b % 26))).join('');
    const now = new Date().toISOString();
    const secrets = new Map<string, { value: string; updatedAt: string }>();
    for (const name of DEFAULT_SECRETS) secrets.set(name, { value: randomBytes(24).toString('base64url'), updatedAt: now });
    for (const [name, value] of Object.entries(opts.secrets ?? {})) secrets.set(name, { value, updatedAt: now });
    this.projects.set(ref, { ref, name: opts.name ?? ref, orgSlug: opts.org ?? 'acme-org', status: opts.status ?? 'ACTIVE_HEALTHY', createdAt: now, secrets });
    return ref;
  }

  /** Sets (or, with null, deletes) a secret directly, as someone else would. */
  setSecret(ref: string, name: string, value: string | null): void {
    const p = this.mustProject(ref);
    if (value === null) p.secrets.delete(name);
    else p.secrets.set(name, { value, updatedAt: new Date().toISOString() });
  }

  /** The secret's value, as the Edge Functions see it (the API never shows it). */
  secret(ref: string, name: string): string | undefined {
    return this.mustProject(ref).secrets.get(name)?.value;
  }

  /** How many secret writes reached the project. */
  writeCount(ref: string): number {
    return this.writes.get(ref) ?? 0;
  }

  setStatus(ref: string, status: string): void {
    this.mustProject(ref).status = status;
  }

  /** Leaves only `remaining` requests in the token's current window for `scope` (a project ref, or `org`). */
  setRateLimitRemaining(token: string, scope: string, remaining: number): void {
    this.windows.setRemaining(`${token}:${scope}`, remaining);
  }

  /** The next matching request(s) answer Supabase's 429 with its headers, the budget spent. */
  failNextWithRateLimit(times = 1): void {
    this.server.failNext({
      times,
      status: 429,
      headers: { 'x-ratelimit-limit': String(this.windows.limit), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '7' },
      body: { message: 'Too Many Requests' },
    });
  }

  // ---- internals ------------------------------------------------------------------------------

  private mustProject(ref: string): Project {
    const p = this.projects.get(ref);
    if (!p) throw new Error(`supabase emulator: no project ${ref}`);
    return p;
  }

  private projectJson(p: Project): Record<string, unknown> {
    return {
      id: p.ref,
      ref: p.ref,
      organization_id: p.orgSlug,
      organization_slug: p.orgSlug,
      name: p.name,
      region: 'us-east-1',
      status: p.status,
      database: { host: `db.${p.ref}.supabase.co`, version: '17.6.1.111', postgres_engine: '17', release_channel: 'ga' },
      created_at: p.createdAt,
    };
  }

  /** Credentials, rate limit (per token and scope), then the scope the route needs. */
  private guard(need: SupabaseScope, handler: (req: EmuRequest, t: TokenInfo) => EmuResponse) {
    return (req: EmuRequest): EmuResponse => {
      const token = bearer(req);
      const t = token ? this.tokens.get(token) : undefined;
      if (!token || !t) return err(401, 'Unauthorized');
      const w = this.windows.take(`${token}:${req.params.ref ?? 'org'}`);
      const headers = rateHeaders(w);
      if (!w.ok) return { ...err(429, 'Too Many Requests'), headers };
      if (!t.scopes.has(need)) return { ...err(403, 'Your account does not have the necessary privileges to access this endpoint.'), headers };
      const out = handler(req, t);
      return { ...out, headers: { ...headers, ...out.headers } };
    };
  }

  /** The project of `:ref`, if the token reaches it (one it cannot see is not found). */
  private project(req: EmuRequest, t: TokenInfo): Project | EmuResponse {
    const p = this.projects.get(req.params.ref!);
    if (!p || (t.projects && !t.projects.has(p.ref))) return err(404, 'Project not found');
    return p;
  }

  private routes(): void {
    const s = this.server;
    s.route(
      'GET',
      '/v1/projects',
      this.guard('projects:read', (_req, t) => ({
        status: 200,
        body: [...this.projects.values()].filter((p) => !t.projects || t.projects.has(p.ref)).map((p) => this.projectJson(p)),
      })),
    );
    s.route(
      'GET',
      '/v1/projects/:ref',
      this.guard('projects:read', (req, t) => {
        const p = this.project(req, t);
        return isResponse(p) ? p : { status: 200, body: this.projectJson(p) };
      }),
    );
    s.route(
      'GET',
      '/v1/projects/:ref/secrets',
      this.guard('secrets:read', (req, t) => {
        const p = this.project(req, t);
        if (isResponse(p)) return p;
        return { status: 200, body: [...p.secrets].map(([name, x]) => ({ name, value: sha256(x.value), updated_at: x.updatedAt })) };
      }),
    );
    s.route('POST', '/v1/projects/:ref/secrets', this.guard('secrets:write', (req, t) => this.create(req, t)));
    s.route('DELETE', '/v1/projects/:ref/secrets', this.guard('secrets:write', (req, t) => this.remove(req, t)));
  }

  private create(req: EmuRequest, t: TokenInfo): EmuResponse {
    const p = this.project(req, t);
    if (isResponse(p)) return p;
    const body = req.body;
    if (!Array.isArray(body)) return err(400, 'Invalid request body: expected an array of secrets');
    for (const x of body as Array<Record<string, unknown>>) {
      if (typeof x?.name !== 'string' || typeof x?.value !== 'string') return err(400, 'Invalid request body: every secret needs a name and a value');
      if (x.name.startsWith('SUPABASE_')) return err(422, 'Env name cannot start with SUPABASE_');
      if (x.name.length > NAME_MAX || x.value.length > VALUE_MAX) return err(422, 'Secret name or value is too long');
    }
    const now = new Date().toISOString();
    for (const x of body as Array<{ name: string; value: string }>) p.secrets.set(x.name, { value: x.value, updatedAt: now });
    this.writes.set(p.ref, this.writeCount(p.ref) + 1);
    return { status: 201 };
  }

  private remove(req: EmuRequest, t: TokenInfo): EmuResponse {
    const p = this.project(req, t);
    if (isResponse(p)) return p;
    const names = req.body;
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) return err(400, 'Invalid request body: expected an array of secret names');
    if ((names as string[]).some((n) => n.startsWith('SUPABASE_'))) return err(422, 'Env name cannot start with SUPABASE_');
    for (const n of names as string[]) p.secrets.delete(n);
    this.writes.set(p.ref, this.writeCount(p.ref) + 1);
    return { status: 200, body: null };
  }
}

function rateHeaders(w: WindowState): Record<string, string> {
  return { 'x-ratelimit-limit': String(w.limit), 'x-ratelimit-remaining': String(w.remaining), 'x-ratelimit-reset': resetSeconds(w) };
}

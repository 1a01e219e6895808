import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { Socket } from 'node:net';
import { costsPage, type CostRecord } from './costs.ts';
import { HttpEmulator, bearer, type EmuHandler, type EmuRequest, type EmuResponse } from '../server.ts';

/**
 * A loopback emulator of the OpenAI API surface keyrot uses:
 * - `GET /v1/models` for the live check (docs/openai.md: 200 list; 401 `invalid_api_key` error
 *   object; `x-request-id` on every response; 429 with `x-ratelimit-*` and `retry-after` headers);
 * - the Admin API subset docs/openai.md describes: projects, project service accounts (mint), project API keys
 *   (list/retrieve/delete, `redacted_value`, `owner`, `last_used_at`), completions usage buckets
 *   (GET /organization/usage/completions: platform.openai.com/docs/api-reference/usage/completions)
 *   and organization costs (GET /organization/costs, costs.ts:
 *   platform.openai.com/docs/api-reference/usage/costs). Both need an admin key (401 otherwise).
 *
 * Shapes follow openai-node's generated types (openai/openai-node: src/resources/admin/organization/
 * projects/service-accounts/service-accounts.ts, projects/api-keys.ts, usage.ts) and the cursor pages
 * of src/core/pagination.ts (`ConversationCursorPage`: `data`, `has_more`, `last_id` → `after`).
 * Where the real service is undocumented (exact 404/400 messages, the redaction pattern) the emulator
 * makes a plausible choice, marked [UNCERTAIN] below; keyrot's client must not depend on those texts.
 */

/** Admin-key scopes the emulator enforces. `api.management.read|write` are the names OpenAI's
 * 403 messages use ("Missing scopes: api.management.read", community.openai.com/t/1345041);
 * `api.usage.read` is a guess [UNCERTAIN]. */
export const ADMIN_SCOPES = ['api.management.read', 'api.management.write', 'api.usage.read'] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

export interface OpenAIEmulatorOptions {
  /** The emulator's clock (ms): created_at, last_used_at, expiry, usage end_time default. */
  now?: () => number;
}

interface KeyRecord {
  id: string;
  value: string;
  name: string;
  project: string;
  createdAt: number; // unix s
  lastUsedAt: number | null; // unix s
  expiresAt: number | null; // unix s
  owner: { type: 'user'; user: UserRecord } | { type: 'service_account'; serviceAccountId: string };
  seq: number;
}

interface UserRecord {
  id: string;
  name: string;
  email: string;
  role: string;
  created_at: number;
}

interface ServiceAccountRecord {
  id: string;
  name: string;
  role: 'member' | 'none' | 'owner';
  project: string;
  createdAt: number;
  seq: number;
}

interface UsageRecord {
  keyId: string;
  project: string;
  model: string;
  at: number; // unix s
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

interface DropRule {
  method: string;
  path: string | RegExp;
}

const MAX_EXPIRES_IN_SECONDS = 31_536_000; // SDK ServiceAccountCreateParams: 1–31,536,000
const BUCKET_SECONDS: Record<string, number> = { '1m': 60, '1h': 3600, '1d': 86_400 };
// usage.ts: limit per bucket width: 1d default 7 max 31; 1h default 24 max 168; 1m default 60 max 1440.
const BUCKET_LIMITS: Record<string, { def: number; max: number }> = {
  '1m': { def: 60, max: 1440 },
  '1h': { def: 24, max: 168 },
  '1d': { def: 7, max: 31 },
};

/** An error as the OpenAI API answers one: `{ error: { message, type, param, code } }` with a request id. */
function apiError(status: number, message: string, type: string, code: string | null, param: string | null = null): EmuResponse {
  return {
    status,
    headers: { 'x-request-id': `req_${hex(8)}` },
    body: { error: { message, type, param, code } },
  };
}

function hex(n: number): string {
  return randomBytes(n).toString('hex');
}

/** A key value generated at run time; the random part is valid nowhere but here. */
function newKeyValue(prefix: string): string {
  return prefix + randomBytes(48).toString('base64url');
}

/**
 * `redacted_value` [UNCERTAIN format]: the family prefix, 3 characters, `****`, the last 4
 * (e.g. `sk-proj-abc****wxyz`). The docs' examples only say "sk-abc...def"; keyrot's matcher
 * accepts any "prefix, run of * or dots, suffix" form.
 */
export function redactedValue(value: string): string {
  const family = /^sk-(?:proj-|svcacct-|admin-)?/.exec(value)?.[0] ?? '';
  return `${value.slice(0, family.length + 3)}****${value.slice(-4)}`;
}

export class OpenAIEmulator extends HttpEmulator {
  readonly #valid = new Set<string>();
  readonly #now: () => number;
  readonly #adminKeys = new Map<string, Set<string>>();
  readonly #projects = new Map<string, { id: string; name: string; createdAt: number }>();
  /** Project API keys by id (user- and service-account-owned). */
  readonly #keys = new Map<string, KeyRecord>();
  readonly #serviceAccounts = new Map<string, ServiceAccountRecord>();
  readonly #usage: UsageRecord[] = [];
  readonly #costs: CostRecord[] = [];
  readonly #drops: DropRule[] = [];
  /** Socket of each in-flight request, found by its headers object (the one EmuRequest carries). */
  readonly #sockets = new WeakMap<IncomingHttpHeaders, Socket>();
  #seq = 0;

  constructor(opts: OpenAIEmulatorOptions = {}) {
    super({
      name: 'OpenAI',
      notFound: (req) => apiError(404, `Invalid URL (${req.method} ${req.path})`, 'invalid_request_error', null),
    });
    this.#now = opts.now ?? (() => Date.now());
    this.server.route('GET', '/v1/models', (req) => this.models(req));
    const p = '/v1/organization/projects/:project';
    this.#route('GET', p, 'api.management.read', (req) => this.getProject(req));
    this.#route('GET', `${p}/service_accounts`, 'api.management.read', (req) => this.listServiceAccounts(req));
    this.#route('POST', `${p}/service_accounts`, 'api.management.write', (req) => this.createServiceAccount(req));
    this.#route('GET', `${p}/service_accounts/:id`, 'api.management.read', (req) => this.getServiceAccount(req));
    this.#route('DELETE', `${p}/service_accounts/:id`, 'api.management.write', (req) => this.deleteServiceAccount(req));
    this.#route('GET', `${p}/api_keys`, 'api.management.read', (req) => this.listApiKeys(req));
    this.#route('GET', `${p}/api_keys/:id`, 'api.management.read', (req) => this.getApiKey(req));
    this.#route('DELETE', `${p}/api_keys/:id`, 'api.management.write', (req) => this.deleteApiKey(req));
    this.#route('GET', '/v1/organization/usage/completions', 'api.usage.read', (req) => this.usageCompletions(req));
    this.#route('GET', '/v1/organization/costs', 'api.usage.read', (req) => {
      const a = costsPage(req.query, this.#costs, this.#sec());
      return a.ok ? this.ok(a.body) : apiError(400, a.message, 'invalid_request_error', null, a.param);
    });
  }

  /** Keys the emulated organisation accepts (not attached to a project: invisible to the Admin API). */
  addKey(key: string): void {
    this.#valid.add(key);
  }

  /** The dashboard's "revoke": the key answers 401 from now on (a project key record goes too). */
  revokeKey(key: string): void {
    this.#valid.delete(key);
    for (const [id, rec] of this.#keys) if (rec.value === key) this.#keys.delete(id);
  }

  isValid(key: string): boolean {
    if (this.#valid.has(key)) return true;
    const rec = this.#recordByValue(key);
    return rec !== undefined && !this.#expired(rec);
  }

  override start(port = 0): Promise<string> {
    return super.start(port).then((url) => {
      // EmulatorServer keeps its node:http Server private and EmuRequest carries no socket; the
      // lost-response hook (dropNextResponse) needs the socket, so map headers → socket here.
      const srv = (this.server as unknown as { server?: Server }).server;
      srv?.on('request', (req) => this.#sockets.set(req.headers, req.socket));
      return url;
    });
  }

  /** Base URL as `key.endpoint` / `key.admin.endpoint` take it. */
  get endpoint(): string {
    return `${this.server.url}/v1`;
  }

  /**
   * The next request (matching `path` when given) answers 429 as OpenAI does (rate limit headers +
   * retry-after; `retry-after-ms` too when `retryAfterMs` is given, as openai-node honours).
   */
  rateLimitNext(retryAfterSeconds = 1, opts: { path?: string | RegExp; method?: string; retryAfterMs?: number } = {}): void {
    const headers: Record<string, string> = {
      'retry-after': String(retryAfterSeconds),
      'x-ratelimit-limit-requests': '500',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': `${retryAfterSeconds}s`,
      'x-request-id': `req_${hex(8)}`,
    };
    if (opts.retryAfterMs !== undefined) headers['retry-after-ms'] = String(opts.retryAfterMs);
    this.server.failNext({
      status: 429,
      path: opts.path,
      method: opts.method,
      headers,
      body: { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
    });
  }

  // ---- Admin API state helpers (tests, demo) ----

  /** A fresh admin key (`sk-admin-…`, generated now) with all scopes or the given ones. */
  addAdminKey(opts: { scopes?: readonly AdminScope[] } = {}): string {
    const value = newKeyValue('sk-admin-');
    this.#adminKeys.set(value, new Set(opts.scopes ?? ADMIN_SCOPES));
    return value;
  }

  addProject(id: string, name = id): void {
    if (!this.#projects.has(id)) this.#projects.set(id, { id, name, createdAt: this.#sec() });
  }

  /** A user-owned project key the emulator knows (valid for /v1/models). Returns its key id. */
  addUserKey(project: string, value: string, opts: { name?: string; user?: Partial<UserRecord> } = {}): string {
    this.addProject(project);
    const id = `key_${hex(8)}`;
    const user: UserRecord = {
      id: `user_${hex(6)}`,
      name: 'Emulated User',
      email: 'user@example.invalid',
      role: 'owner',
      created_at: this.#sec(),
      ...opts.user,
    };
    this.#keys.set(id, {
      id,
      value,
      name: opts.name ?? 'Secret key',
      project,
      createdAt: this.#sec(),
      lastUsedAt: null,
      expiresAt: null,
      owner: { type: 'user', user },
      seq: ++this.#seq,
    });
    return id;
  }

  /** A service account with one or more keys (values generated unless given), as if made in the dashboard. */
  addServiceAccount(project: string, name: string, values: string[] = [newKeyValue('sk-svcacct-')]): { id: string; keyIds: string[]; values: string[] } {
    this.addProject(project);
    const sa = this.#newServiceAccount(project, name, 'member');
    const keyIds = values.map((v) => this.#newServiceAccountKey(sa, v, null).id);
    return { id: sa.id, keyIds, values };
  }

  /**
   * Records use of a key at `at` (ms): sets its last_used_at and adds completions usage for the
   * usage endpoint (default 1 request of gpt-4o-mini).
   */
  useKey(value: string, at: number, usage: { model?: string; requests?: number; inputTokens?: number; outputTokens?: number } = {}): void {
    const rec = this.#recordByValue(value);
    if (!rec) throw new Error('OpenAI emulator: useKey on a key that is not a project key here');
    const s = Math.floor(at / 1000);
    rec.lastUsedAt = Math.max(rec.lastUsedAt ?? 0, s);
    this.#usage.push({
      keyId: rec.id,
      project: rec.project,
      model: usage.model ?? 'gpt-4o-mini',
      at: s,
      requests: usage.requests ?? 1,
      inputTokens: usage.inputTokens ?? 100,
      outputTokens: usage.outputTokens ?? 20,
    });
  }

  /** A cost at `at` (ms) for GET /organization/costs (default currency usd). */
  addCost(project: string, lineItem: string, at: number, value: number, currency = 'usd'): void {
    this.addProject(project);
    this.#costs.push({ project, lineItem, at: Math.floor(at / 1000), value, currency });
  }

  /** Service accounts of a project (for assertions: no duplicates). */
  serviceAccounts(project: string): Array<{ id: string; name: string; keyIds: string[] }> {
    return [...this.#serviceAccounts.values()]
      .filter((sa) => sa.project === project)
      .map((sa) => ({ id: sa.id, name: sa.name, keyIds: this.#keysOf(sa.id).map((k) => k.id) }));
  }

  /** The project key id of a value, if the emulator holds it as a project key. */
  keyIdOf(value: string): string | undefined {
    return this.#recordByValue(value)?.id;
  }

  /** last_used_at (unix seconds) of a project key value. */
  lastUsedAtOf(value: string): number | null | undefined {
    return this.#recordByValue(value)?.lastUsedAt;
  }

  /**
   * A lost response: the next matching request is carried out (state changes) and then its
   * connection is destroyed instead of answered, so the client never sees the result — the case a
   * retried `POST …/service_accounts` must survive without duplicates (no idempotency key exists).
   */
  dropNextResponse(method: string, path: string | RegExp): void {
    this.#drops.push({ method: method.toUpperCase(), path });
  }

  // ---- internals ----

  #sec(): number {
    return Math.floor(this.#now() / 1000);
  }

  #expired(rec: KeyRecord): boolean {
    return rec.expiresAt !== null && this.#sec() >= rec.expiresAt;
  }

  #recordByValue(value: string): KeyRecord | undefined {
    for (const rec of this.#keys.values()) if (rec.value === value) return rec;
    return undefined;
  }

  #keysOf(serviceAccountId: string): KeyRecord[] {
    return [...this.#keys.values()].filter((k) => k.owner.type === 'service_account' && k.owner.serviceAccountId === serviceAccountId);
  }

  #newServiceAccount(project: string, name: string, role: ServiceAccountRecord['role']): ServiceAccountRecord {
    const sa: ServiceAccountRecord = { id: `svc_acct_${hex(8)}`, name, role, project, createdAt: this.#sec(), seq: ++this.#seq };
    this.#serviceAccounts.set(sa.id, sa);
    return sa;
  }

  #newServiceAccountKey(sa: ServiceAccountRecord, value: string, expiresAt: number | null): KeyRecord {
    const rec: KeyRecord = {
      id: `key_${hex(8)}`,
      value,
      name: 'Secret key',
      project: sa.project,
      createdAt: this.#sec(),
      lastUsedAt: null,
      expiresAt,
      owner: { type: 'service_account', serviceAccountId: sa.id },
      seq: ++this.#seq,
    };
    this.#keys.set(rec.id, rec);
    return rec;
  }

  /** Admin routes: an admin key with the scope, then the dropped-response hook. */
  #route(method: string, pattern: string, scope: AdminScope, handler: EmuHandler): void {
    this.server.route(method, pattern, async (req) => {
      const denied = this.#authorizeAdmin(req, scope);
      if (denied) return denied;
      const out = await handler(req);
      const i = this.#drops.findIndex(
        (d) => d.method === req.method && (typeof d.path === 'string' ? d.path === req.path : d.path.test(req.path)),
      );
      if (i >= 0) {
        this.#drops.splice(i, 1);
        // Writing to a destroyed socket is a no-op in node:http, so returning normally is safe.
        this.#sockets.get(req.headers)?.destroy();
      }
      return out;
    });
  }

  #authorizeAdmin(req: EmuRequest, scope: AdminScope): EmuResponse | undefined {
    const key = bearer(req);
    if (!key) {
      return apiError(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", 'invalid_request_error', null);
    }
    const scopes = this.#adminKeys.get(key);
    if (!scopes) {
      // A project key on an admin endpoint is authenticated but has none of the admin scopes
      // [UNCERTAIN: the real status for this case]; an unknown key is the usual 401.
      if (this.isValid(key)) return this.missingScope(scope);
      return apiError(401, `Incorrect API key provided: ${this.shown(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', 'invalid_api_key');
    }
    if (!scopes.has(scope)) return this.missingScope(scope);
    return undefined;
  }

  /** OpenAI's wording for a missing scope (community.openai.com/t/1345041, status 403 per keyrot's brief). */
  private missingScope(scope: string): EmuResponse {
    return apiError(
      403,
      `You have insufficient permissions for this operation. Missing scopes: ${scope}. Check that you have the correct role in your organization, and if you're using a restricted API key, that it has the necessary scopes.`,
      'invalid_request_error',
      null,
    );
  }

  private shown(key: string): string {
    return key.length > 8 ? `${key.slice(0, 8)}${'*'.repeat(10)}${key.slice(-4)}` : '****';
  }

  private ok(body: unknown): EmuResponse {
    return { status: 200, headers: { 'x-request-id': `req_${hex(8)}` }, body };
  }

  /** 404 for an unknown project [UNCERTAIN message]. */
  private project(req: EmuRequest): { id: string } | EmuResponse {
    const p = this.#projects.get(req.params.project ?? '');
    if (!p) return apiError(404, `No such project: ${req.params.project}`, 'invalid_request_error', null);
    return p;
  }

  /** A cursor page (ConversationCursorPage: after=<last id>, limit 1–100 default 20). */
  private page<T extends { id: string; seq: number }>(req: EmuRequest, items: T[], render: (t: T) => unknown): EmuResponse {
    const limitRaw = req.query.get('limit');
    const limit = limitRaw === null ? 20 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      return apiError(400, 'Invalid limit: must be an integer between 1 and 100.', 'invalid_request_error', null, 'limit');
    }
    const sorted = [...items].sort((a, b) => a.seq - b.seq);
    let from = 0;
    const after = req.query.get('after');
    if (after) {
      const i = sorted.findIndex((t) => t.id === after);
      if (i < 0) return apiError(400, `Invalid 'after': no object ${after}.`, 'invalid_request_error', null, 'after');
      from = i + 1;
    }
    const slice = sorted.slice(from, from + limit);
    return this.ok({
      object: 'list',
      data: slice.map(render),
      first_id: slice[0]?.id ?? null,
      last_id: slice.at(-1)?.id ?? null,
      has_more: from + limit < sorted.length,
    });
  }

  private renderServiceAccount(sa: ServiceAccountRecord): Record<string, unknown> {
    return { object: 'organization.project.service_account', id: sa.id, name: sa.name, role: sa.role, created_at: sa.createdAt };
  }

  /** ProjectAPIKey (projects/api-keys.ts). */
  private renderKey(rec: KeyRecord): Record<string, unknown> {
    let owner: Record<string, unknown>;
    if (rec.owner.type === 'user') {
      owner = { type: 'user', user: { ...rec.owner.user } };
    } else {
      const sa = this.#serviceAccounts.get(rec.owner.serviceAccountId);
      owner = {
        type: 'service_account',
        service_account: { id: rec.owner.serviceAccountId, name: sa?.name ?? '', role: sa?.role ?? 'member', created_at: sa?.createdAt ?? 0 },
      };
    }
    return {
      object: 'organization.project.api_key',
      id: rec.id,
      name: rec.name,
      redacted_value: redactedValue(rec.value),
      created_at: rec.createdAt,
      last_used_at: rec.lastUsedAt,
      owner,
      owner_project_access: 'active',
    };
  }

  private getProject(req: EmuRequest): EmuResponse {
    const p = this.#projects.get(req.params.project ?? '');
    if (!p) return apiError(404, `No such project: ${req.params.project}`, 'invalid_request_error', null);
    return this.ok({ object: 'organization.project', id: p.id, name: p.name, created_at: p.createdAt, archived_at: null, status: 'active' });
  }

  private listServiceAccounts(req: EmuRequest): EmuResponse {
    const p = this.project(req);
    if ('status' in p) return p;
    const items = [...this.#serviceAccounts.values()].filter((sa) => sa.project === p.id);
    return this.page(req, items, (sa) => this.renderServiceAccount(sa));
  }

  /** POST …/service_accounts (service-accounts.ts ServiceAccountCreateParams / CreateResponse). */
  private createServiceAccount(req: EmuRequest): EmuResponse {
    const p = this.project(req);
    if ('status' in p) return p;
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
    if (typeof body.name !== 'string' || body.name.length === 0) {
      return apiError(400, "Missing required parameter: 'name'.", 'invalid_request_error', 'missing_required_parameter', 'name');
    }
    const only = body.create_service_account_only === true;
    const exp = body.expires_in_seconds;
    if (exp !== undefined && exp !== null) {
      if (typeof exp !== 'number' || !Number.isInteger(exp) || exp < 1 || exp > MAX_EXPIRES_IN_SECONDS) {
        return apiError(400, `Invalid 'expires_in_seconds': expected an integer between 1 and ${MAX_EXPIRES_IN_SECONDS}.`, 'invalid_request_error', null, 'expires_in_seconds');
      }
      if (only) {
        return apiError(400, "'expires_in_seconds' cannot be used with 'create_service_account_only'.", 'invalid_request_error', null, 'expires_in_seconds');
      }
    }
    const sa = this.#newServiceAccount(p.id, body.name, only ? 'none' : 'member');
    let apiKey: Record<string, unknown> | null = null;
    if (!only) {
      const expiresAt = typeof exp === 'number' ? this.#sec() + exp : null;
      const rec = this.#newServiceAccountKey(sa, newKeyValue('sk-svcacct-'), expiresAt);
      // The only place the unredacted value is ever returned (service-accounts.ts).
      apiKey = {
        object: 'organization.project.service_account.api_key',
        id: rec.id,
        name: rec.name,
        created_at: rec.createdAt,
        value: rec.value,
        expires_at: expiresAt,
      };
    }
    return this.ok({ ...this.renderServiceAccount(sa), api_key: apiKey });
  }

  private getServiceAccount(req: EmuRequest): EmuResponse {
    const p = this.project(req);
    if ('status' in p) return p;
    const sa = this.#serviceAccounts.get(req.params.id ?? '');
    if (!sa || sa.project !== p.id) return apiError(404, `No such service account: ${req.params.id}`, 'invalid_request_error', null);
    return this.ok(this.renderServiceAccount(sa));
  }

  /** Deleting a service account deletes its keys: they answer 401 from then on. */
  private deleteServiceAccount(req: EmuRequest): EmuResponse {
    const p = this.project(req);
    if ('status' in p) return p;
    const sa = this.#serviceAccounts.get(req.params.id ?? '');
    if (!sa || sa.project !== p.id) return apiError(404, `No such service account: ${req.params.id}`, 'invalid_request_error', null);
    for (const k of this.#keysOf(sa.id)) this.#keys.delete(k.id);
    this.#serviceAccounts.delete(sa.id);
    return this.ok({ object: 'organization.project.service_account.deleted', id: sa.id, deleted: true });
  }

  private listApiKeys(req: EmuRequest): EmuResponse {
    const p = this.project(req);
    if ('status' in p) return p;
    // owner_project_access (active|inactive|any) is accepted; every emulated owner is active.
    const items = [...this.#keys.values()].filter((k) => k.project === p.id);
    return this.page(req, items, (k) => this.renderKey(k));
  }

  private getApiKey(req: EmuRequest): EmuResponse {
    const p = this.project(req);
    if ('status' in p) return p;
    const rec = this.#keys.get(req.params.id ?? '');
    if (!rec || rec.project !== p.id) return apiError(404, `No such API key: ${req.params.id}`, 'invalid_request_error', null);
    return this.ok(this.renderKey(rec));
  }

  /** api-keys.ts: "an error if the key belonged to a service account" [UNCERTAIN status: 400 here]. */
  private deleteApiKey(req: EmuRequest): EmuResponse {
    const p = this.project(req);
    if ('status' in p) return p;
    const rec = this.#keys.get(req.params.id ?? '');
    if (!rec || rec.project !== p.id) return apiError(404, `No such API key: ${req.params.id}`, 'invalid_request_error', null);
    if (rec.owner.type === 'service_account') {
      return apiError(400, 'API keys owned by a service account cannot be deleted; delete the service account instead.', 'invalid_request_error', null);
    }
    this.#keys.delete(rec.id);
    return this.ok({ object: 'organization.project.api_key.deleted', id: rec.id, deleted: true });
  }

  /**
   * GET /organization/usage/completions (usage.ts). Arrays arrive bracketed (`group_by[]=…`), as
   * openai-node serialises them (internal/utils/query.ts); the plain form is accepted too. Buckets are aligned to the
   * bucket width from the epoch (UTC midnight for 1d) [UNCERTAIN]; `next_page` is an opaque cursor.
   */
  private usageCompletions(req: EmuRequest): EmuResponse {
    const q = req.query;
    const arr = (name: string) => [...q.getAll(`${name}[]`), ...q.getAll(name)];
    const startRaw = q.get('start_time');
    if (startRaw === null || !/^\d+$/.test(startRaw)) {
      return apiError(400, "Missing required parameter: 'start_time'.", 'invalid_request_error', 'missing_required_parameter', 'start_time');
    }
    const width = q.get('bucket_width') ?? '1d';
    const w = BUCKET_SECONDS[width];
    const lim = BUCKET_LIMITS[width];
    if (!w || !lim) return apiError(400, `Invalid 'bucket_width': ${width}.`, 'invalid_request_error', null, 'bucket_width');
    const limit = q.get('limit') === null ? lim.def : Number(q.get('limit'));
    if (!Number.isInteger(limit) || limit < 1 || limit > lim.max) {
      return apiError(400, `Invalid 'limit': for bucket_width=${width} it must be between 1 and ${lim.max}.`, 'invalid_request_error', null, 'limit');
    }
    const start = Number(startRaw);
    const end = q.get('end_time') !== null ? Number(q.get('end_time')) : this.#sec() + 1;
    const groupBy = arr('group_by');
    const keyIds = arr('api_key_ids');
    const projectIds = arr('project_ids');
    const models = arr('models');

    let bucketStart = Math.floor(start / w) * w;
    const page = q.get('page');
    if (page) {
      const m = /^bucket:(\d+)$/.exec(Buffer.from(page, 'base64url').toString('utf8'));
      if (!m) return apiError(400, "Invalid 'page' cursor.", 'invalid_request_error', null, 'page');
      bucketStart = Number(m[1]);
    }
    const data: unknown[] = [];
    while (bucketStart < end && data.length < limit) {
      const bEnd = bucketStart + w;
      const recs = this.#usage.filter(
        (u) =>
          u.at >= Math.max(bucketStart, start) &&
          u.at < Math.min(bEnd, end) &&
          (keyIds.length === 0 || keyIds.includes(u.keyId)) &&
          (projectIds.length === 0 || projectIds.includes(u.project)) &&
          (models.length === 0 || models.includes(u.model)),
      );
      const groups = new Map<string, { keyId: string | null; project: string | null; model: string | null; n: number; i: number; o: number }>();
      for (const u of recs) {
        const g = {
          keyId: groupBy.includes('api_key_id') ? u.keyId : null,
          project: groupBy.includes('project_id') ? u.project : null,
          model: groupBy.includes('model') ? u.model : null,
        };
        const k = JSON.stringify(g);
        const cur = groups.get(k) ?? { ...g, n: 0, i: 0, o: 0 };
        cur.n += u.requests;
        cur.i += u.inputTokens;
        cur.o += u.outputTokens;
        groups.set(k, cur);
      }
      data.push({
        object: 'bucket',
        start_time: bucketStart,
        end_time: bEnd,
        results: [...groups.values()].map((g) => ({
          object: 'organization.usage.completions.result',
          input_tokens: g.i,
          output_tokens: g.o,
          input_cached_tokens: 0,
          input_audio_tokens: 0,
          output_audio_tokens: 0,
          num_model_requests: g.n,
          project_id: g.project,
          user_id: null,
          api_key_id: g.keyId,
          model: g.model,
          batch: null,
          service_tier: null,
        })),
      });
      bucketStart = bEnd;
    }
    const hasMore = bucketStart < end;
    return this.ok({
      object: 'page',
      data,
      has_more: hasMore,
      next_page: hasMore ? Buffer.from(`bucket:${bucketStart}`, 'utf8').toString('base64url') : null,
    });
  }

  private models(req: EmuRequest): EmuResponse {
    const key = bearer(req);
    if (!key) {
      return apiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        'invalid_request_error',
        null,
      );
    }
    if (!this.isValid(key)) {
      // The real message echoes a redacted form of the key; keyrot's redactor must cope with it.
      return apiError(
        401,
        `Incorrect API key provided: ${this.shown(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        'invalid_request_error',
        'invalid_api_key',
      );
    }
    // A successful call is a use: last_used_at follows the emulator's clock.
    const rec = this.#recordByValue(key);
    if (rec) rec.lastUsedAt = this.#sec();
    const created = 1_700_000_000;
    return {
      status: 200,
      headers: {
        'x-request-id': `req_${hex(8)}`,
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '499',
      },
      body: {
        object: 'list',
        data: ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'].map((id) => ({ id, object: 'model', created, owned_by: 'system' })),
      },
    };
  }
}

import { laneOf, lazyCredential } from '../common.ts';
import { waitTimeoutMs, type CommonTargetConfig, type TargetContext } from '../types.ts';
import { TargetError, type TargetErrorKind } from '../../core/errors.ts';
import { absentOn404, createProviderHttp, type Described, type ProviderFailure, type ProviderHttp } from '../../runtime/provider-http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { credentialOrDefault, type CredentialRef } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { VERCEL_API, VERCEL_TOKEN_ENV, vercel, type VercelConfig } from './index.ts';

/**
 * The Vercel REST API routes keyrot uses, with plain fetch (provider-http), and Vercel's answers
 * turned into messages that say what to do. Routes and shapes: vercel/sdk 1.28.21 (@426eb4b)
 * src/funcs/projects{FilterProjectEnvs,GetProjectEnv,EditProjectEnv,CreateProjectEnv,RemoveProjectEnv}.ts,
 * deployments{GetDeployments,CreateDeployment,GetDeployment}.ts (README "Provider facts").
 */

export const TARGETS = ['production', 'preview', 'development'] as const;
export type EnvTarget = (typeof TARGETS)[number];

export interface EnvEntry {
  id: string;
  key: string;
  type: string;
  target: EnvTarget[];
  gitBranch?: string;
  comment?: string;
  updatedAt?: number;
  createdAt?: number;
  value?: string;
  decrypted?: boolean;
}

export interface Deployment {
  id: string;
  createdAt: number;
  readyState: string;
  meta: Record<string, string>;
  errorMessage?: string;
}

type Raw = Record<string, unknown>;
type FailExtra = { retryAfterMs?: number; status?: number; retryable?: boolean; cause?: unknown };

/** `target` is an array, or (older entries) a single string (getprojectenvop.ts). */
function targetsOf(raw: unknown): EnvTarget[] {
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  return list.filter((t): t is EnvTarget => (TARGETS as readonly string[]).includes(t));
}

export function toEntry(raw: Raw): EnvEntry {
  return {
    id: String(raw.id),
    key: String(raw.key),
    type: String(raw.type),
    target: targetsOf(raw.target),
    ...(typeof raw.gitBranch === 'string' && raw.gitBranch ? { gitBranch: raw.gitBranch } : {}),
    ...(typeof raw.comment === 'string' ? { comment: raw.comment } : {}),
    ...(typeof raw.updatedAt === 'number' ? { updatedAt: raw.updatedAt } : {}),
    ...(typeof raw.createdAt === 'number' ? { createdAt: raw.createdAt } : {}),
    ...(typeof raw.value === 'string' ? { value: raw.value } : {}),
    ...(typeof raw.decrypted === 'boolean' ? { decrypted: raw.decrypted } : {}),
  };
}

export function toDeployment(raw: Raw): Deployment {
  return {
    id: String(raw.uid ?? raw.id),
    createdAt: Number(raw.createdAt ?? raw.created ?? 0),
    readyState: String(raw.readyState ?? raw.state ?? ''),
    meta: (raw.meta && typeof raw.meta === 'object' ? raw.meta : {}) as Record<string, string>,
    ...(typeof raw.errorMessage === 'string' ? { errorMessage: raw.errorMessage } : {}),
  };
}

/** The endpoint a call spends the budget of: the path with its ids taken out (`GET /v1/projects/:id/env/:id`). */
function endpointOf(method: string, path: string): string {
  return `${method} ${path.replace(/\/(projects|env|deployments)\/[^/]+/g, '/$1/:id')}`;
}

export class VercelApi {
  /** `Vercel project NAME (team T)`, for messages. */
  readonly where: string;
  /** Vercel's limits are per token and per endpoint (docs rest-api/errors): one lane per token, one budget per endpoint in it. */
  readonly rateLimitKey: string;
  private readonly scopeWords: string;
  private readonly tokenRef: CredentialRef;
  private readonly http: ProviderHttp<string>;
  private readonly ctx: TargetContext & { name: string };
  private readonly projectRef: string;
  private projectP: Promise<{ id: string; name: string }> | undefined;

  constructor(config: VercelConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.ctx = ctx;
    this.projectRef = config.project;
    this.tokenRef = credentialOrDefault(config.token, VERCEL_TOKEN_ENV, ctx.env);
    this.scopeWords = config.team ? `team ${config.team}` : 'the token owner’s personal account';
    this.where = `Vercel project ${config.project}${config.team ? ` (team ${config.team})` : ''}`;
    const scopeQuery: Record<string, string> = config.team ? (config.team.startsWith('team_') ? { teamId: config.team } : { slug: config.team }) : {};
    const credential = lazyCredential(ctx, this.tokenRef);
    const base = (config.endpoint ?? VERCEL_API).replace(/\/+$/, '');
    this.rateLimitKey = `vercel:${base}:${config.team ?? ''}:${this.tokenRef.raw}`;
    this.http = createProviderHttp<string>({
      provider: 'Vercel',
      baseUrl: base,
      target: ctx.name,
      clock: ctx.clock,
      timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
      headers: { 'user-agent': 'keyrot' },
      query: scopeQuery,
      auth: async (op) => ({ authorization: `Bearer ${(await credential(op)).reveal()}` }),
      endpointHint: 'set `endpoint:` of this target to the Vercel API’s URL (or remove it for https://api.vercel.com)',
      describe: (f) => this.describe(f),
      // Each endpoint has its own budget (X-RateLimit-Remaining / -Reset, epoch seconds): the lane
      // paces each one before it is spent, and waits for its reset instead of spending a 429.
      lane: laneOf(ctx, this.rateLimitKey, vercel),
      bucketOf: endpointOf,
    });
  }

  fail(message: string, kind: TargetErrorKind, op: string, extra: FailExtra = {}): TargetError {
    return new TargetError(message, { target: this.ctx.name, op, kind, ...extra });
  }

  /**
   * A failed answer in product words. A missing, expired or revoked token is a 403 "Not authorized"
   * on Vercel (docs rest-api/errors; the CLI's getUser() turns any 403 of /v2/user into "The
   * specified token is not valid"); the body flags it with `invalidToken: true` / `missingToken:
   * true`, observed both with and without a `message` (`{"error":{"code":"forbidden","invalidToken":true}}`).
   */
  private describe(f: ProviderFailure<string>): Described {
    const what = f.about ?? this.where;
    const said = f.message ? ` (Vercel said: ${f.message})` : '';
    const flags = (f.body as { error?: { invalidToken?: unknown; missingToken?: unknown } } | undefined)?.error;
    const badToken =
      f.status === 401 ||
      (f.status === 403 &&
        (/^not authorized\.?$/i.test(f.message) || /missing an authentication token/i.test(f.message) || flags?.invalidToken === true || flags?.missingToken === true));
    if (badToken) {
      return {
        message: `Vercel rejected the token from ${this.tokenRef.raw}: it is missing, expired or revoked. Create a token at https://vercel.com/account/tokens with access to ${this.scopeWords} and export it as VERCEL_TOKEN (or point token: at it)`,
        kind: 'auth',
      };
    }
    if (f.status === 403) return `Vercel denied ${f.op} on ${what}${said}: use a token whose scope includes ${this.scopeWords} and this project`;
    if (f.status === 404) return `${what} was not found in ${this.scopeWords}${said}: check project and team in targets.yaml`;
    if (f.status === 429) {
      const secs = f.rateLimit.retryAfterMs !== undefined ? ` for ${formatDuration(f.rateLimit.retryAfterMs)}` : '';
      return `Vercel rate-limited ${f.op} on ${what}${secs}`;
    }
    if (f.status >= 500) return `Vercel failed ${f.op} on ${what} (HTTP ${f.status})${said}; try again later`;
    return `Vercel refused ${f.op} on ${what} (HTTP ${f.status})${said}`;
  }

  /** The project's id and name, read once (a failed read is tried again next time). */
  project(op: string): Promise<{ id: string; name: string }> {
    this.projectP ??= this.http.json({ op, path: `/v9/projects/${encodeURIComponent(this.projectRef)}` }).then(
      (r) => ({ id: String(r.body.id), name: String(r.body.name) }),
      (e: unknown) => {
        this.projectP = undefined;
        throw e;
      },
    );
    return this.projectP;
  }

  /**
   * Every entry of the project, following `pagination.next` (a timestamp passed back as `until`).
   * The documented request has no cursor parameter (vercel/sdk @426eb4b filterprojectenvsop.ts
   * `FilterProjectEnvsRequest`; the CLI reads the list in one call, get-env-records.ts), so the
   * cursor is followed only while it brings entries not seen yet: a server that ignores `until`
   * cannot make keyrot loop or count an entry twice.
   */
  async listEntries(op: string, projectId: string, signal?: AbortSignal): Promise<EnvEntry[]> {
    const out: EnvEntry[] = [];
    const seen = new Set<string>();
    let until: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await this.http.json<{ envs?: Raw[]; pagination?: { next?: number | string | null } } & Raw>({
        op,
        path: `/v10/projects/${encodeURIComponent(projectId)}/env`,
        query: until ? { until } : {},
        signal,
      });
      // Three documented shapes: {envs, pagination}, {envs, hiddenProductionEnvCount}, or one env object.
      const envs = Array.isArray(r.body.envs) ? r.body.envs : r.body.id ? [r.body as Raw] : [];
      const fresh = envs.map(toEntry).filter((e) => !seen.has(e.id));
      for (const e of fresh) seen.add(e.id);
      out.push(...fresh);
      const next = r.body.pagination?.next;
      if (next === null || next === undefined || fresh.length === 0 || String(next) === until) break;
      until = String(next);
    }
    return out;
  }

  /**
   * One page of the scope's projects (`GET /v10/projects`, newest first); `next` is passed back as
   * `from` for the following page (vercel/sdk src/funcs/projectsGetProjects.ts, `pagination.next`).
   */
  async projectsPage(op: string, limit: number, from: string | undefined, signal?: AbortSignal): Promise<{ projects: Array<{ id: string; name: string }>; next: string | undefined }> {
    const r = await this.http.json<{ projects?: Raw[]; pagination?: { next?: number | string | null } }>({
      op,
      path: '/v10/projects',
      query: { limit: String(limit), ...(from ? { from } : {}) },
      about: `the projects of ${this.scopeWords}`,
      signal,
    });
    const projects = (Array.isArray(r.body.projects) ? r.body.projects : []).map((p) => ({ id: String(p.id), name: String(p.name) }));
    const next = r.body.pagination?.next;
    return { projects, next: next === null || next === undefined || String(next) === from ? undefined : String(next) };
  }

  /** One entry with its decrypted value (GET /v1/.../env/{id}); `value` null when Vercel will not give it. */
  async readEntry(op: string, projectId: string, id: string, about = this.entryWords(id), signal?: AbortSignal): Promise<{ entry: EnvEntry; value: string | null }> {
    const r = await this.http.json({ op, path: `/v1/projects/${encodeURIComponent(projectId)}/env/${encodeURIComponent(id)}`, about, signal });
    const entry = toEntry(r.body);
    // Sensitive entries come back without `value` (getprojectenvop.ts GetProjectEnvResponseBody1);
    // an entry marked decrypted:false still holds ciphertext: neither is a readable value.
    const readable = entry.type !== 'sensitive' && typeof entry.value === 'string' && entry.decrypted !== false;
    return { entry, value: readable ? entry.value! : null };
  }

  /** Sets an entry's value; returns the updatedAt Vercel stamped (else now). */
  async patchValue(op: string, projectId: string, id: string, value: string): Promise<number> {
    const path = `/v9/projects/${encodeURIComponent(projectId)}/env/${encodeURIComponent(id)}`;
    const r = await this.http.json({ op, method: 'PATCH', path, body: { value }, about: this.entryWords(id) });
    return typeof r.body.updatedAt === 'number' ? r.body.updatedAt : this.ctx.clock.now();
  }

  /**
   * Creates an entry. A 201 can carry failures (createprojectenvop.ts `failed`): it is not a
   * success. Only the code and message are used: the error object may echo the value.
   */
  async createEntry(projectId: string, body: { key: string; value: string; type: string; target: EnvTarget[]; comment: string }): Promise<EnvEntry> {
    const r = await this.http.json<{ created?: unknown; failed?: Array<{ error?: { code?: string; message?: string } }> }>({
      op: 'write',
      method: 'POST',
      path: `/v10/projects/${encodeURIComponent(projectId)}/env`,
      body,
      about: `${body.key} on ${this.where}`,
    });
    const failed = Array.isArray(r.body.failed) ? r.body.failed : [];
    if (failed.length) {
      const f = failed[0]?.error ?? {};
      throw this.fail(
        `Vercel did not create ${body.key} for ${body.target.join(', ')} on ${this.where}: ${f.code ?? 'error'}${f.message ? ` (${f.message})` : ''}`,
        f.code === 'ENV_CONFLICT' || f.code === 'ENV_ALREADY_EXISTS' ? 'conflict' : 'invalid',
        'write',
        { status: r.status, retryable: false },
      );
    }
    const list = (Array.isArray(r.body.created) ? r.body.created : [r.body.created]).filter(Boolean) as Raw[];
    const made = list.map(toEntry).find((x) => x.key === body.key);
    if (!made) throw this.fail(`Vercel answered ${r.status} but created no ${body.key} entry on ${this.where}`, 'invalid', 'write', { retryable: false });
    return made;
  }

  /** Removes an entry; already gone is fine. */
  async deleteEntry(op: string, projectId: string, id: string): Promise<void> {
    const path = `/v9/projects/${encodeURIComponent(projectId)}/env/${encodeURIComponent(id)}`;
    await this.http.json({ op, method: 'DELETE', path, about: this.entryWords(id) }).catch(absentOn404);
  }

  async productionDeployments(op: string, projectId: string, query: Record<string, string>): Promise<Deployment[]> {
    const r = await this.http.json<{ deployments?: Raw[] }>({ op, path: '/v7/deployments', query: { projectId, target: 'production', ...query } });
    return (r.body.deployments ?? []).map(toDeployment);
  }

  async deployment(op: string, id: string, signal?: AbortSignal, about?: string): Promise<Deployment> {
    return toDeployment((await this.http.json({ op, path: `/v13/deployments/${encodeURIComponent(id)}`, ...(about ? { about } : {}), signal })).body);
  }

  /** Redeploys `sourceId` to production (`forceNew=1` so it is not deduplicated to the old one), tagged with `meta`. Returns the new id. */
  async redeployProduction(op: string, projectName: string, sourceId: string, meta: Record<string, string>, signal?: AbortSignal): Promise<string> {
    const r = await this.http.json({
      op,
      method: 'POST',
      path: '/v13/deployments',
      query: { forceNew: '1' },
      body: { name: projectName, deploymentId: sourceId, target: 'production', meta: { action: 'redeploy', ...meta } },
      about: `the redeploy of ${this.where}`,
      signal,
    });
    return String(r.body.id);
  }

  private entryWords(id: string): string {
    return `${this.ctx.varName} entry ${id} of ${this.where}`;
  }
}

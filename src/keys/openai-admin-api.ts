import type { RawCostsPage } from './openai-costs.ts';
import type { Clock } from '../runtime/clock.ts';
import { TargetError } from '../core/errors.ts';
import { HttpError, httpJson } from '../runtime/http.ts';
import type { Secret } from '../core/secret.ts';

/**
 * The OpenAI Admin API routes of one project, over plain HTTP (`httpJson`, no SDK), with failures
 * in words that say what to do. Paths and shapes: openai-node's generated resources
 * (src/resources/admin/organization/projects/{api-keys,service-accounts/service-accounts}.ts,
 * usage.ts); the facts relied on are in docs/openai.md.
 */

/** Where admin keys are made (an organization Owner's page). */
export const OPENAI_ADMIN_KEYS_PAGE = 'https://platform.openai.com/settings/organization/admin-keys';

export interface RawList<T> {
  data?: T[];
  has_more?: boolean;
  last_id?: string | null;
}

export interface RawServiceAccount {
  id: string;
  name?: string;
}

export interface RawCreatedServiceAccount extends RawServiceAccount {
  api_key?: { id?: string; value?: string; expires_at?: number | null } | null;
}

export interface RawProjectApiKey {
  id: string;
  name?: string;
  redacted_value?: string;
  created_at?: number;
  last_used_at?: number | null;
  owner?: {
    type?: string;
    user?: { id?: string; name?: string; email?: string };
    service_account?: { id?: string; name?: string };
  };
  owner_project_access?: string;
}

export interface RawUsagePage {
  data?: Array<{
    start_time?: number;
    results?: Array<{ num_model_requests?: number; input_tokens?: number; output_tokens?: number; api_key_id?: string | null; model?: string | null }>;
  }>;
  has_more?: boolean;
  next_page?: string | null;
}

export interface Op {
  /** "creating service account keyrot-prod-r1": what keyrot was doing, for messages. */
  what: string;
  /** The permission, in the dashboard's words, when the answer gives no scope. */
  needs: string;
  /** A 404 here means the project is missing (collection paths) or the object may be gone. */
  on404: 'project' | 'object';
}

/** The `provider` label of the Admin API's failures in keyrot_provider_errors_total (it is no target type). */
export const ADMIN_API_PROVIDER = 'openai-admin';

export const READ = 'read access to Organization Administration (scope api.management.read)';
export const WRITE = 'write access to Organization Administration (scope api.management.write)';
export const USAGE = 'read access to Usage';

function isNotFound(err: unknown): boolean {
  return err instanceof TargetError && err.status === 404;
}

export class OpenAIAdminApi {
  readonly base: string;
  readonly project: string;
  readonly projectPath: string;
  private readonly adminKey: Secret;
  private readonly clock: Clock;
  private readonly notAdminKey: boolean;
  private projectSeen = false;
  private readonly onError: ((err: TargetError) => void) | undefined;

  constructor(opts: { endpoint: string; adminKey: Secret; project: string; clock: Clock; onError?: (err: TargetError) => void }) {
    this.base = opts.endpoint.replace(/\/+$/, '');
    this.project = opts.project;
    this.projectPath = `/organization/projects/${encodeURIComponent(opts.project)}`;
    this.adminKey = opts.adminKey;
    this.clock = opts.clock;
    this.notAdminKey = !opts.adminKey.reveal().startsWith('sk-admin-');
    this.onError = opts.onError;
  }

  /** One Admin API call; HTTP failures come back as TargetErrors in product words. */
  async call<T>(method: string, path: string, op: Op, body?: unknown, signal?: AbortSignal): Promise<T> {
    try {
      const res = await httpJson<T>(
        { method, url: `${this.base}${path}`, headers: { authorization: `Bearer ${this.adminKey.reveal()}` }, body, signal },
        { clock: this.clock, provider: 'the OpenAI Admin API', endpointHint: 'set key.admin.endpoint to the OpenAI API’s URL (or remove it for https://api.openai.com/v1)' },
      );
      return res.body;
    } catch (err) {
      const e = this.translate(err, op);
      // An object that is gone is an answer (a key already revoked), and a cancelled call is ours.
      if (e instanceof TargetError && !signal?.aborted && !(op.on404 === 'object' && e.status === 404)) this.onError?.(e);
      throw e;
    }
  }

  private translate(err: unknown, op: Op): unknown {
    if (!(err instanceof TargetError)) return err;
    const status = err.status;
    // The provider's own message (redacted); a redirect or a network failure has none.
    const provider = err instanceof HttpError ? err.providerMessage || err.providerCode || '' : '';
    const common = { status, cause: err, op: op.what };
    // OpenAI reports a missing scope as "insufficient permissions … Missing scopes: x" — seen with
    // both 401 and 403 (community.openai.com/t/1345041, microsoft/PowerToys#32989), so the text decides.
    if (status === 403 || (status === 401 && /insufficient permissions/i.test(provider))) {
      return new TargetError(this.missingScope(provider, op, status), { ...common, kind: 'permission', retryable: false });
    }
    if (status === 401) {
      return new TargetError(
        `OpenAI rejected the admin key (key.admin.token) while ${op.what} (401): it is wrong, revoked or expired. ` +
          `Create one at ${OPENAI_ADMIN_KEYS_PAGE}` +
          (this.notAdminKey ? ' (the configured token is not an sk-admin- key: the Admin API takes admin keys only)' : ''),
        { ...common, kind: 'auth', retryable: false },
      );
    }
    if (status === 404 && op.on404 === 'project') {
      return new TargetError(
        `OpenAI project "${this.project}" was not found while ${op.what} (404): check key.admin.project (the project id, proj_...) and that the admin key belongs to that project's organization`,
        { ...common, kind: 'not-found', retryable: false },
      );
    }
    if (status === 429) {
      const after = err.retryAfterMs !== undefined ? `; retry after ${Math.ceil(err.retryAfterMs / 1000)}s` : '';
      return new TargetError(`OpenAI Admin API rate limit reached while ${op.what} (429)${after}`, { ...common, kind: 'rate-limited', retryable: true, retryAfterMs: err.retryAfterMs });
    }
    const said = err instanceof HttpError ? `answered ${status}${provider ? `: ${provider}` : ''}` : err.message;
    return new TargetError(`OpenAI Admin API: ${op.what}: ${said}`, { ...common, kind: err.kind, retryable: err.retryable, retryAfterMs: err.retryAfterMs });
  }

  private missingScope(provider: string, op: Op, status: number | undefined): string {
    const scopes = /Missing scopes?:\s*([A-Za-z0-9_.,\s-]+?)\.(?:\s|$)/i.exec(provider)?.[1]?.trim();
    const needs = scopes ? `the scope ${scopes}` : op.needs;
    return (
      `OpenAI Admin API refused ${op.what} (${status}): the admin key needs ${needs}. ` +
      `Use an admin key with "All" permissions, or a restricted one granting it, created by an organization Owner at ${OPENAI_ADMIN_KEYS_PAGE}` +
      (this.notAdminKey ? ' (key.admin.token is not an sk-admin- key: project and service-account keys cannot use the Admin API)' : '')
    );
  }

  /**
   * A 404 on an object path does not say whether the object or the project is missing; asking for the
   * project (GET /organization/projects/{id}, projects.ts retrieve) tells them apart, so "already gone"
   * is never reported for a mistyped project.
   */
  private async ensureProject(): Promise<void> {
    if (this.projectSeen) return;
    await this.call('GET', this.projectPath, { what: `reading project ${this.project}`, needs: READ, on404: 'project' });
    this.projectSeen = true;
  }

  /** Runs an object call; null when the object does not exist in the (existing) project. */
  private async orGone<T>(fn: () => Promise<T>): Promise<T | null> {
    try {
      return await fn();
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.ensureProject();
      return null;
    }
  }

  /** Every item of a cursor-paged list (ConversationCursorPage: has_more + last_id → after). */
  async listAll<T>(path: string, op: Op, extra = '', signal?: AbortSignal): Promise<T[]> {
    const out: T[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 1000; pages++) {
      const q = `?limit=100${extra}${after ? `&after=${encodeURIComponent(after)}` : ''}`;
      const page: RawList<T> = await this.call<RawList<T>>('GET', `${path}${q}`, op, undefined, signal);
      const data = page.data ?? [];
      out.push(...data);
      const last = page.last_id ?? (data.at(-1) as { id?: string } | undefined)?.id ?? null;
      if (!page.has_more || !last || data.length === 0) return out;
      after = last;
    }
    return out;
  }

  listApiKeys(): Promise<RawProjectApiKey[]> {
    // owner_project_access=any: "all enabled project API keys"; without it the endpoint applies
    // membership-based visibility that may hide some (api-keys.ts APIKeyListParams).
    const op: Op = { what: `listing the API keys of project ${this.project}`, needs: READ, on404: 'project' };
    return this.listAll<RawProjectApiKey>(`${this.projectPath}/api_keys`, op, '&owner_project_access=any');
  }

  listServiceAccounts(signal?: AbortSignal): Promise<RawServiceAccount[]> {
    const op: Op = { what: `listing the service accounts of project ${this.project}`, needs: READ, on404: 'project' };
    return this.listAll<RawServiceAccount>(`${this.projectPath}/service_accounts`, op, '', signal);
  }

  /** GET one object of the project; null when it does not exist in the (existing) project. */
  private getOrNull<T>(collection: 'api_keys' | 'service_accounts', id: string, noun: string): Promise<T | null> {
    const op: Op = { what: `reading ${noun} ${id} of project ${this.project}`, needs: READ, on404: 'object' };
    return this.orGone(() => this.call<T>('GET', `${this.projectPath}/${collection}/${encodeURIComponent(id)}`, op));
  }

  getApiKey(id: string): Promise<RawProjectApiKey | null> {
    return this.getOrNull<RawProjectApiKey>('api_keys', id, 'API key');
  }

  getServiceAccount(id: string): Promise<RawServiceAccount | null> {
    return this.getOrNull<RawServiceAccount>('service_accounts', id, 'service account');
  }

  /** DELETE a service account; false when it was already gone. */
  async deleteServiceAccount(id: string, signal?: AbortSignal): Promise<boolean> {
    const op: Op = { what: `deleting service account ${id} of project ${this.project}`, needs: WRITE, on404: 'object' };
    const done = await this.orGone(() => this.call('DELETE', `${this.projectPath}/service_accounts/${encodeURIComponent(id)}`, op, undefined, signal).then(() => true));
    return done === true;
  }

  /** DELETE a user's project API key; false when it was already gone. */
  async deleteApiKey(id: string): Promise<boolean> {
    const op: Op = { what: `deleting API key ${id} of project ${this.project}`, needs: WRITE, on404: 'object' };
    const done = await this.orGone(() => this.call('DELETE', `${this.projectPath}/api_keys/${encodeURIComponent(id)}`, op).then(() => true));
    return done === true;
  }

  createServiceAccount(name: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<RawCreatedServiceAccount> {
    const op: Op = { what: `creating service account ${name} in project ${this.project}`, needs: WRITE, on404: 'project' };
    return this.call<RawCreatedServiceAccount>('POST', `${this.projectPath}/service_accounts`, op, body, signal);
  }

  usagePage(keyId: string, query: string): Promise<RawUsagePage> {
    const op: Op = { what: `reading the usage of API key ${keyId}`, needs: USAGE, on404: 'object' };
    return this.call<RawUsagePage>('GET', `/organization/usage/completions?${query}`, op);
  }

  costsPage(query: string): Promise<RawCostsPage> {
    const op: Op = { what: 'reading the organization costs', needs: USAGE, on404: 'object' };
    return this.call<RawCostsPage>('GET', `/organization/costs?${query}`, op);
  }
}

import type { Clock } from '../runtime/clock.ts';
import { httpJson } from '../runtime/http.ts';
import { EXIT, ExitError, TargetError } from '../core/errors.ts';
import { environmentEndpointProblem } from '../inventory/endpoints.ts';
import type { Secret } from '../core/secret.ts';

export const OPENAI_DEFAULT_ENDPOINT = 'https://api.openai.com/v1';
/** Where an operator revokes an OpenAI key by hand. */
export const OPENAI_KEYS_PAGE = 'https://platform.openai.com/api-keys';

/**
 * OpenAI key formats (docs/openai.md): sk-proj-, sk-svcacct-, legacy sk-. Admin keys
 * (sk-admin-) cannot call models, so they are refused as an application key. Prefixes are not
 * contractual: an unknown sk- shape is accepted with a warning rather than refused.
 */
export function checkFormat(kind: 'openai' | 'generic', key: Secret): { ok: true; warning?: string } | { ok: false; reason: string } {
  const v = key.reveal();
  if (/\s/.test(v)) return { ok: false, reason: 'the key contains whitespace: paste only the key' };
  if (kind === 'generic') return v.length >= 8 ? { ok: true } : { ok: false, reason: 'the key is shorter than 8 characters' };
  if (v.startsWith('sk-admin-')) {
    return { ok: false, reason: 'this is an OpenAI admin key (sk-admin-...): applications need a project or service-account key' };
  }
  if (!v.startsWith('sk-')) return { ok: false, reason: 'an OpenAI API key starts with "sk-", and this value does not (was something else pasted?)' };
  if (!/^sk-[A-Za-z0-9_-]{20,}$/.test(v)) {
    return { ok: false, reason: 'an OpenAI API key is "sk-" followed by at least 20 letters, digits, "-" or "_"' };
  }
  if (!/^sk-(proj|svcacct)-/.test(v)) return { ok: true, warning: 'legacy key format (sk-...): new OpenAI keys start with sk-proj- or sk-svcacct-' };
  return { ok: true };
}

/**
 * The API of the live check: `key.endpoint` (checked by the inventory), else OPENAI_BASE_URL (the
 * openai SDKs' variable, checked here: https unless loopback), else the public API. Never used for
 * the Admin API (see `adminEndpoint`).
 */
export function openaiEndpoint(configured: string | undefined, env: NodeJS.ProcessEnv): string {
  const problem = configured ? undefined : environmentEndpointProblem('OPENAI_BASE_URL', env.OPENAI_BASE_URL);
  if (problem) throw new ExitError(EXIT.usage, problem);
  return (configured ?? env.OPENAI_BASE_URL ?? OPENAI_DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/**
 * The Admin API, which takes the organisation's admin key: `key.admin.endpoint` when set, else
 * https://api.openai.com/v1. Never `key.endpoint` or OPENAI_BASE_URL: those often name a proxy
 * (a gateway, an Azure OpenAI front) that is trusted with project keys, not with the admin key.
 */
export function adminEndpoint(configured: string | undefined): string {
  return (configured ?? OPENAI_DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

export type LiveCheckResult = { status: 'valid'; detail: string } | { status: 'restricted'; detail: string };

/**
 * The live check: GET {endpoint}/models with the key (no tokens used; docs/openai.md).
 * 401 means the key is invalid (or already disabled); 403 means valid but restricted.
 */
export async function liveCheck(key: Secret, endpoint: string, clock: Clock, signal?: AbortSignal): Promise<LiveCheckResult> {
  try {
    const res = await httpJson<{ data?: unknown[] }>(
      { url: `${endpoint}/models`, headers: { authorization: `Bearer ${key.reveal()}` }, timeoutMs: 15_000, signal },
      { clock, provider: 'OpenAI', endpointHint: 'set key.endpoint (or OPENAI_BASE_URL) to the OpenAI API’s URL (or remove it for https://api.openai.com/v1)' },
    );
    const n = Array.isArray(res.body?.data) ? res.body.data.length : 0;
    return { status: 'valid', detail: `${endpoint}/models answered 200 (${n} models)` };
  } catch (err) {
    if (err instanceof TargetError && err.status === 403) {
      return { status: 'restricted', detail: `${endpoint}/models answered 403: the key is valid but restricted (it may lack the models scope)` };
    }
    if (err instanceof TargetError && err.status === 401) {
      throw new TargetError(`OpenAI rejected the key ${key.hint} (401 invalid_api_key): it is wrong, revoked or not yet active`, {
        kind: 'auth',
        status: 401,
        retryable: false,
      });
    }
    throw err;
  }
}

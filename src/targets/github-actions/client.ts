import { Octokit } from '@octokit/rest';
import { TargetError, toTargetError, type TargetErrorKind } from '../../core/errors.ts';
import { redact } from '../../core/redact.ts';
import { providerText } from '../../core/printable.ts';
import { createSdkFetch, sdkFetchError } from '../../runtime/sdk-fetch.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { credentialOrDefault, type CredentialRef } from '../../inventory/credentials.ts';
import { lazyCredential } from '../common.ts';
import { waitTimeoutMs, type TargetContext } from '../types.ts';
import { GITHUB_API, GITHUB_TOKEN_ENV } from './index.ts';

/**
 * GitHub's REST API through Octokit (@octokit/rest), with keyrot's fetch (deadline, no redirects,
 * rate-limit headers: runtime/sdk-fetch.ts) and GitHub's failures in product words. Facts used:
 * - Tokens: GH_TOKEN, then GITHUB_TOKEN, the GitHub CLI's order (cli.github.com/manual/gh_help_environment);
 *   Octokit sends `authorization: token …` (@octokit/auth-token with-authorization-prefix.js).
 * - GitHub Enterprise Server: the API root is `https://HOST/api/v3` (Octokit's `baseUrl`).
 * - Rate limits (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api): the primary
 *   limit spent is a 403 or 429 with `x-ratelimit-remaining: 0` (wait until `x-ratelimit-reset`,
 *   epoch seconds); a secondary limit is a 403 or 429 whose message says so, with `retry-after`
 *   when GitHub gives one, otherwise "wait at least one minute". A 403 without either is a
 *   permission refusal: never retried.
 * - 404 also answers a private repository the token cannot see (GitHub does not reveal it).
 */

/** GitHub's advice for a secondary limit without retry-after: wait at least a minute. */
export const SECONDARY_LIMIT_WAIT_MS = 60_000;

/** What a call is about, for its error messages. */
export interface CallAbout {
  /** "the Actions secret OPENAI_API_KEY of repository acme/api". */
  subject: string;
  /** What a 404 means here and what to check. */
  notFound: string;
  /** What the token needs for this call. */
  permission: string;
}

export interface GitHubResponse<T> {
  status: number;
  data: T;
  headers: Record<string, string | number | undefined>;
}

export interface GitHubClient {
  call<T>(op: string, route: string, params: Record<string, unknown>, about: CallAbout, signal?: AbortSignal): Promise<GitHubResponse<T>>;
  /** GitHub's clock (the `Date` of its last answer, to the second), or undefined before any. */
  serverNow(): number | undefined;
  /** The credential's name (`env:GH_TOKEN`...), for messages. */
  readonly credName: string;
}

export interface GitHubClientOptions {
  endpoint?: string;
  token?: CredentialRef;
  requestTimeout?: string | number;
}

export function createGitHubClient(o: GitHubClientOptions, ctx: TargetContext & { name: string }): GitHubClient {
  const baseUrl = (o.endpoint ?? GITHUB_API).replace(/\/+$/, '');
  const ref = credentialOrDefault(o.token, GITHUB_TOKEN_ENV, ctx.env);
  const credName = ref.raw;
  const credential = lazyCredential(ctx, ref, (m) => `GitHub token: ${m} (create a fine-grained personal access token, see the github-actions target's README)`);
  let serverDate: number | undefined;
  const fetch = createSdkFetch({
    provider: 'GitHub',
    clock: ctx.clock,
    timeoutMs: waitTimeoutMs(o.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    endpointHint: 'set `endpoint:` of this target to the API root (https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server)',
    onResponse: (r) => {
      const d = Date.parse(r.headers.get('date') ?? '');
      if (!Number.isNaN(d)) serverDate = d;
    },
  });
  let octokit: Octokit | undefined;

  async function client(op: string): Promise<Octokit> {
    if (octokit) return octokit;
    const token = await credential(op);
    const quiet = { debug() {}, info() {}, warn: (m: string) => ctx.logger.debug(redact(m)), error() {} };
    octokit = new Octokit({ auth: token.reveal(), baseUrl, userAgent: 'keyrot', request: { fetch }, log: quiet });
    return octokit;
  }

  return {
    credName,
    serverNow: () => serverDate,
    async call<T>(op: string, route: string, params: Record<string, unknown>, about: CallAbout, signal?: AbortSignal): Promise<GitHubResponse<T>> {
      const kit = await client(op);
      try {
        const res = await kit.request(route, { ...params, headers: { 'x-github-api-version': '2022-11-28' }, request: { signal } });
        return { status: res.status, data: res.data as T, headers: res.headers as GitHubResponse<T>['headers'] };
      } catch (err) {
        throw githubError(err, { op, about, credName, target: ctx.name, now: ctx.clock.now() });
      }
    },
  };
}

interface Failure {
  status: number;
  message: string;
  headers: Record<string, string | number | undefined>;
}

function failureOf(err: unknown): Failure | undefined {
  const e = err as { status?: unknown; response?: { headers?: Record<string, string | number | undefined>; data?: unknown } };
  if (typeof e?.status !== 'number' || !e.response) return undefined;
  const data = e.response.data as { message?: unknown } | undefined;
  const message = typeof data?.message === 'string' ? providerText(data.message) : '';
  return { status: e.status, message, headers: e.response.headers ?? {} };
}

/** An Octokit failure as a TargetError in product words (the fetch's own errors pass through). */
export function githubError(err: unknown, c: { op: string; about: CallAbout; credName: string; target: string; now: number }): TargetError {
  const own = sdkFetchError(err);
  if (own) return toTargetError(own, c.target, c.op);
  const f = failureOf(err);
  if (!f) return toTargetError(err, c.target, c.op);
  const limit = rateLimitWait(f, c.now);
  const init = (kind: TargetErrorKind, extra: { retryable?: boolean; retryAfterMs?: number } = {}) => ({ target: c.target, op: c.op, kind, status: f.status, cause: err, ...extra });
  const said = f.message ? ` (GitHub said: ${f.message})` : '';
  if (limit) return new TargetError(limit.message, init('rate-limited', { retryable: true, retryAfterMs: limit.waitMs }));
  if (f.status === 401) {
    return new TargetError(`GitHub rejected the token in ${c.credName}: it is missing, expired or revoked; create a fine-grained token with ${c.about.permission} and put it in ${c.credName}${said}`, init('auth'));
  }
  if (f.status === 403) {
    const asks = f.headers['x-accepted-github-permissions'];
    return new TargetError(`GitHub denied access to ${c.about.subject}: the token in ${c.credName} needs ${c.about.permission}${asks ? ` (GitHub accepts: ${asks})` : ''}${said}`, init('permission'));
  }
  if (f.status === 404) return new TargetError(`GitHub could not find ${c.about.subject}: ${c.about.notFound}${said}`, init('not-found'));
  if (f.status >= 500) return new TargetError(`GitHub API unavailable (HTTP ${f.status}) during ${c.op} of ${c.about.subject}${said}`, init('unavailable'));
  const kind: TargetErrorKind = f.status === 409 ? 'conflict' : 'invalid';
  return new TargetError(`GitHub refused ${c.op} of ${c.about.subject} (HTTP ${f.status})${said}`, init(kind, { retryable: false }));
}

/**
 * A rate-limit answer, and how long GitHub asks to wait: `retry-after`; else, with the primary
 * limit spent, until `x-ratelimit-reset`; else (a secondary limit without either) a minute.
 */
function rateLimitWait(f: Failure, now: number): { message: string; waitMs: number } | undefined {
  const remaining = String(f.headers['x-ratelimit-remaining'] ?? '');
  const retryAfter = Number(f.headers['retry-after']);
  const secondary = /secondary rate limit|abuse/i.test(f.message);
  if (f.status !== 429 && !(f.status === 403 && (remaining === '0' || Number.isFinite(retryAfter) || /rate limit/i.test(f.message)))) return undefined;
  if (Number.isFinite(retryAfter) && retryAfter >= 0) {
    return { waitMs: retryAfter * 1000, message: `GitHub's ${secondary ? 'secondary ' : ''}rate limit was reached; it asks to wait ${retryAfter}s: keyrot waits and retries` };
  }
  const reset = Number(f.headers['x-ratelimit-reset']);
  if (remaining === '0' && Number.isFinite(reset)) {
    const at = new Date(reset * 1000).toISOString().slice(11, 19);
    return { waitMs: Math.max(0, reset * 1000 - now), message: `GitHub's rate limit for this token is spent until ${at} UTC: keyrot waits when that is soon, otherwise run keyrot again after it` };
  }
  return { waitMs: SECONDARY_LIMIT_WAIT_MS, message: `GitHub's secondary rate limit was reached (GitHub asks to wait at least a minute): keyrot waits and retries` };
}

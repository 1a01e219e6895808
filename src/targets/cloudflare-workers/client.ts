import Cloudflare from 'cloudflare';
import { TargetError, toTargetError, type TargetErrorKind } from '../../core/errors.ts';
import { providerText } from '../../core/printable.ts';
import { credentialOrDefault, type CredentialRef } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { createSdkFetch, sdkFetchError } from '../../runtime/sdk-fetch.ts';
import { lazyCredential } from '../common.ts';
import { waitTimeoutMs, type TargetContext } from '../types.ts';
import { CLOUDFLARE_API, CLOUDFLARE_TOKEN_ENV } from './index.ts';

/**
 * The Workers API through the official `cloudflare` client, with keyrot's fetch (deadline, no
 * redirects: runtime/sdk-fetch.ts), its own retries off (the engine retries, bounded), and
 * Cloudflare's failures in product words. Facts used:
 * - Errors are `{success: false, errors: [{code, message}]}`; `10007` "This Worker does not exist
 *   on your account"; `10000` "Authentication error" (a token refused, or without the permission
 *   for this account); `10215`: a secret change refused because the Worker's latest version is not
 *   the one deployed (wrangler src/secret/index.ts VERSION_NOT_DEPLOYED_ERR_CODE).
 * - Rate limit: 1200 requests per 5 minutes per user; every REST answer carries
 *   `Ratelimit: "default";r=<remaining>;t=<seconds to reset>`, a 429 a `retry-after`
 *   (developers.cloudflare.com/fundamentals/api/reference/limits).
 * - Deployments are listed newest first, the first one serving traffic; its `versions` carry
 *   `version_id` and `percentage` (wrangler src/versions/api.ts fetchLatestDeployment).
 * - The client reads CLOUDFLARE_API_KEY / CLOUDFLARE_EMAIL / CLOUDFLARE_BASE_URL from the
 *   environment unless told otherwise: keyrot passes its own token and base URL and nulls the rest.
 */

/** Below this many requests left in the window, keyrot waits for the window to reset. */
export const PACE_BELOW = 10;
const PACE_MAX_MS = 30_000;

export interface Deployment {
  id: string;
  created_on: string;
  versions: Array<{ version_id: string; percentage: number }>;
}

export interface WorkerVersion {
  id: string;
  number: number;
  bindings: Array<{ name: string; type: string }>;
  /** `annotations["workers/triggered_by"]`: what made the version (`secret`, `upload`, `rollback`...). */
  triggeredBy: string | null;
}

export interface CallAbout {
  /** "Worker api-worker of account 0123abcd". */
  subject: string;
  /** What a 404 means here and what to check. */
  notFound: string;
}

export interface WorkersClient {
  call<T>(op: string, about: CallAbout, fn: (cf: Cloudflare, signal?: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T>;
  readonly credName: string;
}

export function createWorkersClient(o: { endpoint?: string; token?: CredentialRef; requestTimeout?: string | number }, ctx: TargetContext & { name: string }): WorkersClient {
  const baseURL = (o.endpoint ?? CLOUDFLARE_API).replace(/\/+$/, '');
  const ref = credentialOrDefault(o.token, CLOUDFLARE_TOKEN_ENV, ctx.env);
  const credential = lazyCredential(ctx, ref, (m) => `Cloudflare API token: ${m} (create one from the "Edit Cloudflare Workers" template, see the cloudflare-workers target's README)`);
  const timeoutMs = waitTimeoutMs(o.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
  const window = { remaining: undefined as number | undefined, resetMs: 0 };
  const fetch = createSdkFetch({
    provider: 'Cloudflare',
    clock: ctx.clock,
    timeoutMs,
    endpointHint: 'set `endpoint:` of this target to the API root (https://api.cloudflare.com/client/v4, or remove it)',
    before: async (signal) => {
      if (window.remaining === undefined || window.remaining >= PACE_BELOW) return;
      const ms = Math.min(PACE_MAX_MS, window.resetMs);
      ctx.logger.debug(`cloudflare: ${window.remaining} API requests left in the window, pausing ${ms} ms`, { target: ctx.name });
      window.remaining = undefined;
      await ctx.clock.sleep(ms, signal);
    },
    onResponse: (r) => Object.assign(window, parseRatelimit(r.headers.get('ratelimit')) ?? {}),
  });
  let cf: Cloudflare | undefined;
  async function client(op: string): Promise<Cloudflare> {
    if (cf) return cf;
    const token = await credential(op);
    // The client's own deadline is kept above keyrot's, so keyrot's fires first and is classified as a timeout.
    cf = new Cloudflare({ apiToken: token.reveal(), apiKey: null, apiEmail: null, userServiceKey: null, baseURL, maxRetries: 0, timeout: timeoutMs + 60_000, fetch, logLevel: 'off' });
    return cf;
  }
  return {
    credName: ref.raw,
    async call<T>(op: string, about: CallAbout, fn: (cf: Cloudflare, signal?: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
      const c = await client(op);
      try {
        return await fn(c, signal);
      } catch (err) {
        throw cloudflareError(err, { op, about, credName: ref.raw, target: ctx.name, timeoutMs });
      }
    },
  };
}

/** `"default";r=50;t=30`: requests left and seconds until the window resets. */
export function parseRatelimit(h: string | null): { remaining: number; resetMs: number } | undefined {
  const m = h ? /;\s*r=(\d+)\s*;\s*t=(\d+)/.exec(h) : null;
  return m ? { remaining: Number(m[1]), resetMs: Number(m[2]) * 1000 } : undefined;
}

interface Failure {
  status: number;
  code: number | undefined;
  message: string;
  retryAfterMs: number | undefined;
}

function failureOf(err: unknown): Failure | undefined {
  if (!(err instanceof Cloudflare.APIError) || typeof err.status !== 'number') return undefined;
  const first = (err.errors as Array<{ code?: unknown; message?: unknown }>)[0];
  const message = typeof first?.message === 'string' ? providerText(first.message) : '';
  const retryAfter = Number(err.headers?.get('retry-after'));
  return { status: err.status, code: typeof first?.code === 'number' ? first.code : undefined, message, retryAfterMs: Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined };
}

/** A client failure as a TargetError in product words (keyrot's fetch errors pass through). */
export function cloudflareError(err: unknown, c: { op: string; about: CallAbout; credName: string; target: string; timeoutMs: number }): TargetError {
  const own = sdkFetchError(err);
  if (own) return toTargetError(own, c.target, c.op);
  if (err instanceof Cloudflare.APIUserAbortError) return new TargetError(`cancelled: ${c.op} of ${c.about.subject}`, { target: c.target, op: c.op, kind: 'timeout', retryable: false });
  // The client reports keyrot's deadline (its own is set later) as a timeout of its own, without the cause.
  if (err instanceof Cloudflare.APIConnectionTimeoutError) {
    return new TargetError(`Cloudflare did not answer ${c.op} of ${c.about.subject} within ${formatDuration(c.timeoutMs)}`, { target: c.target, op: c.op, kind: 'timeout', retryable: true, cause: err });
  }
  const f = failureOf(err);
  if (!f) return toTargetError(err, c.target, c.op);
  const said = f.message ? ` (Cloudflare said: ${f.message}${f.code ? ` [code ${f.code}]` : ''})` : '';
  const init = (kind: TargetErrorKind, extra: { retryable?: boolean; retryAfterMs?: number } = {}) => ({ target: c.target, op: c.op, kind, status: f.status, cause: err, ...extra });
  if (f.status === 429) return new TargetError(`Cloudflare's API rate limit (1200 requests per 5 minutes per user) was reached: keyrot waits and retries`, init('rate-limited', { retryAfterMs: f.retryAfterMs }));
  if (f.status === 401 || f.status === 403 || f.code === 10000) {
    const kind = f.status === 401 ? 'auth' : 'permission';
    return new TargetError(`Cloudflare refused the API token in ${c.credName} for ${c.about.subject}: it needs the account permission "Workers Scripts: Edit" on that account (the "Edit Cloudflare Workers" template)${said}`, init(kind));
  }
  if (f.status === 404 || f.code === 10007) return new TargetError(`Cloudflare could not find ${c.about.subject}: ${c.about.notFound}${said}`, init('not-found'));
  if (f.code === 10215) {
    return new TargetError(
      `Cloudflare refuses to change ${c.about.subject} while the Worker's latest version is not the one deployed (a gradual deployment, or a version uploaded without deploying): deploy it to 100% (\`wrangler versions deploy\`), then run keyrot again${said}`,
      init('conflict', { retryable: false }),
    );
  }
  if (f.status >= 500) return new TargetError(`Cloudflare API unavailable (HTTP ${f.status}) during ${c.op} of ${c.about.subject}${said}`, init('unavailable'));
  return new TargetError(`Cloudflare refused ${c.op} of ${c.about.subject} (HTTP ${f.status})${said}`, init('invalid', { retryable: false }));
}

/** The bindings of a version as the API gives them (`resources.bindings`, secret values omitted). */
export function bindingsOf(v: unknown): Array<{ name: string; type: string }> {
  const list = (v as { resources?: { bindings?: unknown } })?.resources?.bindings;
  return Array.isArray(list) ? list.filter((b): b is { name: string; type: string } => typeof b?.name === 'string' && typeof b?.type === 'string') : [];
}


import type { Clock } from './clock.ts';
import { TargetError } from '../core/errors.ts';
import { deadlineSignal } from './deadline.ts';
import { networkError, rateLimitOf, redirectRefused, type RateLimit } from './http.ts';

/**
 * The `fetch` keyrot hands to a provider SDK that accepts one (Octokit's `request.fetch`, the
 * Cloudflare client's `fetch`): the same rules as httpJson, for calls the SDK builds.
 * - A deadline over the whole exchange: the answer is read to its last byte here, under the
 *   deadline, and handed to the SDK as a buffered Response (a stalled body times out too).
 * - Redirects refused: `redirect: 'manual'`, and a 3xx is thrown as an error naming its Location.
 *   Octokit treats a 3xx it did not follow as a success; neither SDK may re-send a body or a token.
 * - Every answer's rate-limit headers go to `onResponse` (pacing); `before` runs before each call.
 * Failures are thrown as TargetErrors; the SDKs wrap what a fetch throws (Octokit: a RequestError
 * with it as `cause`; the Cloudflare client: an APIConnectionError with it as `cause`), and
 * `sdkFetchError` finds it again.
 */
export interface SdkFetchOptions {
  /** The provider, in messages ("GitHub", "Cloudflare"). */
  provider: string;
  clock: Clock;
  /** Deadline of each call, connect to last byte. */
  timeoutMs: number;
  /** What to fix when the provider redirects. */
  endpointHint?: string;
  before?: (signal?: AbortSignal) => Promise<void>;
  onResponse?: (r: { status: number; headers: Headers; rateLimit: RateLimit }) => void;
}

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export function createSdkFetch(o: SdkFetchOptions): Fetch {
  return async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = (init.method ?? 'GET').toUpperCase();
    const callerSignal = init.signal ?? undefined;
    await o.before?.(callerSignal);
    const signal = deadlineSignal(o.timeoutMs, callerSignal);
    let res: Response;
    let body: ArrayBuffer;
    try {
      res = await fetch(url, { ...init, method, signal, redirect: 'manual' });
      body = await res.arrayBuffer();
    } catch (err) {
      throw networkError(err, { url, signal: callerSignal }, { provider: o.provider, method, timeoutMs: o.timeoutMs });
    }
    o.onResponse?.({ status: res.status, headers: res.headers, rateLimit: rateLimitOf(res.headers, o.clock.now(), res.status) });
    if (res.status >= 300 && res.status < 400) {
      throw redirectRefused({ provider: o.provider, status: res.status, location: res.headers.get('location'), from: url, fix: o.endpointHint });
    }
    // A null-body status (204, 205) cannot be given a body, not even an empty one.
    const nullBody = res.status === 204 || res.status === 205;
    return new Response(nullBody ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** The TargetError an `createSdkFetch` fetch threw, under whatever the SDK wrapped it in. */
export function sdkFetchError(err: unknown): TargetError | undefined {
  for (let e = err as { cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e instanceof TargetError) return e;
  }
  return undefined;
}

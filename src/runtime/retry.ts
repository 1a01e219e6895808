import type { Clock } from './clock.ts';
import { TargetError, toTargetError } from '../core/errors.ts';

export interface RetryPolicy {
  /** Total attempts, the first included. */
  attempts: number;
  /** No new attempt starts once this much time has passed since the first. */
  maxElapsedMs: number;
  baseMs: number;
  capMs: number;
  /** Longest server-requested wait keyrot accepts (a Retry-After of an hour ends the retries). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 6,
  maxElapsedMs: 120_000,
  baseMs: 500,
  capMs: 15_000,
  maxRetryAfterMs: 60_000,
};

export interface RetryOptions {
  policy?: Partial<RetryPolicy>;
  clock: Clock;
  random?: () => number;
  signal?: AbortSignal;
  onRetry?: (info: { attempt: number; delayMs: number; error: TargetError }) => void;
}

/** Exponential backoff with full jitter; the server's Retry-After wins when it asks for longer. */
export function backoffDelay(attempt: number, p: RetryPolicy, random: () => number, retryAfterMs?: number): number {
  const exp = Math.min(p.capMs, p.baseMs * 2 ** (attempt - 1));
  const jittered = Math.round(exp * random());
  return retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered;
}

/**
 * Runs `fn` until it succeeds, throws a non-retryable error, or the attempt/time bounds are hit.
 * Transient failures are TargetErrors with retryable=true (429, 5xx, timeouts, resets).
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const p = { ...DEFAULT_RETRY, ...opts.policy };
  const random = opts.random ?? Math.random;
  const start = opts.clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (raw) {
      if (opts.signal?.aborted) throw raw;
      const err = toTargetError(raw);
      if (!err.retryable || attempt >= p.attempts) throw err;
      if (err.retryAfterMs !== undefined && err.retryAfterMs > p.maxRetryAfterMs) throw err;
      const delayMs = backoffDelay(attempt, p, random, err.retryAfterMs);
      if (opts.clock.now() - start + delayMs > p.maxElapsedMs) throw err;
      opts.onRetry?.({ attempt, delayMs, error: err });
      await opts.clock.sleep(delayMs, opts.signal);
    }
  }
}

/** Parses `Retry-After` (seconds or HTTP date), `retry-after-ms`, and `X-RateLimit-Reset` / `RateLimit-Reset` (epoch seconds or a delta). */
export function retryAfterFromHeaders(h: Headers, now: number, status = 429): number | undefined {
  const ms = h.get('retry-after-ms');
  if (ms && /^\d+(\.\d+)?$/.test(ms)) return Math.round(Number(ms));
  const ra = h.get('retry-after');
  if (ra) {
    if (/^\d+(\.\d+)?$/.test(ra.trim())) return Math.round(Number(ra) * 1000);
    const at = Date.parse(ra);
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  // X-RateLimit-Reset is on every answer of some providers (Netlify, Vercel; Render and the IETF
  // draft drop the X-): it only asks for a wait when the budget is spent, not on a 5xx.
  const reset = h.get('x-ratelimit-reset') ?? h.get('ratelimit-reset');
  const remaining = h.get('x-ratelimit-remaining') ?? h.get('ratelimit-remaining');
  if (reset && /^\d+$/.test(reset) && (status === 429 || remaining === '0')) {
    const n = Number(reset);
    // Epoch seconds (Vercel, Netlify) vs a delta in seconds.
    return n > 1e9 ? Math.max(0, n * 1000 - now) : n * 1000;
  }
  return undefined;
}

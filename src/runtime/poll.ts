import type { Clock } from './clock.ts';
import { TargetError } from '../core/errors.ts';

/**
 * The default cadence of every wait (a release, a deploy, a rollout, a service update): the first
 * look after 500 ms (a Heroku release or a small rollout is often done by then), doubling to one
 * look every 5 s. Four looks reach the cap, so a wait ends at most ~5 s after the provider is
 * done, and a long one costs 12 requests a minute: inside Heroku's refill (75/min), Netlify's
 * 500/min and Vercel's per-endpoint limits, with room for other targets. A provider that
 * documents a stricter budget passes its own cadence (Railway).
 */
export const POLL_DEFAULTS = { intervalMs: 500, backoff: 2, maxIntervalMs: 5_000 } as const;

export interface PollOptions<S> {
  /** One status read. A retryable TargetError (throttled, 5xx, a call timeout) does not end the wait. */
  check: () => Promise<S>;
  /** True when `state` is the one waited for. A terminal failure state throws from here. */
  until: (state: S) => boolean;
  /** How long the whole wait may take. */
  deadlineMs: number;
  /** First wait between two looks (default POLL_DEFAULTS). */
  intervalMs?: number;
  /** Factor applied to the wait after each look. */
  backoff?: number;
  maxIntervalMs?: number;
  clock: Clock;
  signal?: AbortSignal;
  /** The message when the deadline passes: what was seen last (undefined: no read succeeded) and the last transient error. */
  describe: (last: S | undefined, lastError: TargetError | undefined) => string;
  /** For the timeout error. */
  target?: string;
  op?: string;
}

/**
 * Looks at a state until `until` accepts it, backing off, within a deadline. Past the deadline
 * the wait fails as a non-retryable `timeout` (retrying would start the same wait again); an
 * abort of `signal` ends it at once. A server-requested wait (Retry-After) on a throttled look is
 * honoured.
 */
export async function poll<S>(o: PollOptions<S>): Promise<S> {
  const intervalMs = o.intervalMs ?? POLL_DEFAULTS.intervalMs;
  const backoff = o.backoff ?? POLL_DEFAULTS.backoff;
  const maxIntervalMs = o.maxIntervalMs ?? POLL_DEFAULTS.maxIntervalMs;
  const deadline = o.clock.now() + o.deadlineMs;
  let delay = intervalMs;
  let last: S | undefined;
  let lastError: TargetError | undefined;
  for (;;) {
    let wait = delay;
    let seen = false;
    try {
      last = await o.check();
      seen = true;
      lastError = undefined;
    } catch (err) {
      if (!(err instanceof TargetError) || !err.retryable || o.signal?.aborted) throw err;
      lastError = err;
      wait = Math.max(wait, err.retryAfterMs ?? 0);
    }
    if (seen && o.until(last as S)) return last as S;
    const left = deadline - o.clock.now();
    if (left <= 0) throw new TargetError(o.describe(last, lastError), { target: o.target, op: o.op, kind: 'timeout', retryable: false });
    await o.clock.sleep(Math.min(wait, left), o.signal);
    delay = Math.min(maxIntervalMs, Math.round(delay * backoff));
  }
}

import { toTargetError, type TargetError } from '../core/errors.ts';
import { withRetry, type RetryPolicy } from '../runtime/retry.ts';
import type { Clock } from '../runtime/clock.ts';
import type { PreflightResult } from '../targets/types.ts';
import type { LiveTarget } from './live-targets.ts';

export interface PreflightOptions {
  clock: Clock;
  retry?: Partial<RetryPolicy>;
  random?: () => number;
  signal?: AbortSignal;
  onRetry?: (name: string, info: { attempt: number; delayMs: number; message: string; error: TargetError }) => void;
  /** A preflight that failed for good (after its retries). */
  onFailure?: (name: string, error: TargetError) => void;
  /** Each target's result as soon as it is known (a fleet's display shows it then, not at the end). */
  onResult?: (name: string, result: PreflightResult) => void;
}

/**
 * Read-only checks of every target, concurrently. A transient failure is retried (bounded, as
 * writes are); once the retries run out, or on any other failure, the target is `blocked` with the
 * reason. Only `ready` targets can be written: a rotation writes nothing unless all are.
 */
export async function preflightAll(targets: LiveTarget[], o: PreflightOptions): Promise<Map<string, PreflightResult>> {
  const out = new Map<string, PreflightResult>();
  await Promise.all(
    targets.map(async (lt) => {
      const result = await preflightOne(lt, o);
      out.set(lt.spec.name, result);
      o.onResult?.(lt.spec.name, result);
    }),
  );
  return out;
}

async function preflightOne(lt: LiveTarget, o: PreflightOptions): Promise<PreflightResult> {
  const t = lt.target;
  if (!t) return { status: 'blocked', reason: lt.createError?.message ?? 'could not be set up', current: { kind: 'unreadable', reason: 'not set up' } };
  try {
    // In the lane of the target's provider account, like writes: a fleet's preflight is paced too.
    return await lt.lane.run(
      () =>
        withRetry(() => lt.lane.attempt(() => t.preflight(o.signal)), {
          clock: o.clock,
          policy: o.retry,
          random: o.random,
          signal: o.signal,
          onRetry: ({ attempt, delayMs, error }) => o.onRetry?.(lt.spec.name, { attempt, delayMs, message: error.message, error }),
        }),
      o.signal,
    );
  } catch (err) {
    const e = toTargetError(err, lt.spec.name, 'preflight');
    if (!o.signal?.aborted) o.onFailure?.(lt.spec.name, e);
    return { status: 'blocked', reason: e.retryable ? `${e.message} (still failing after retries)` : e.message, current: { kind: 'unreadable', reason: e.message } };
  }
}

/** `ready` or not: the one test every command applies. */
export function isReady(p: PreflightResult | undefined): p is Extract<PreflightResult, { status: 'ready' }> {
  return p?.status === 'ready';
}

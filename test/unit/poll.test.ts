import { describe, it, expect } from 'vitest';
import { POLL_DEFAULTS, poll } from '../../src/runtime/poll.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { TargetError } from '../../src/core/errors.ts';

/** A check that returns these states (or throws these errors) one per look, then keeps the last. */
function looks<S>(...script: Array<S | Error>) {
  let i = 0;
  const check = async (): Promise<S> => {
    const next = script[Math.min(i++, script.length - 1)]!;
    if (next instanceof Error) throw next;
    return next;
  };
  return { check, count: () => i };
}

const describeLast = (last: string | undefined, err: TargetError | undefined) => `still ${last ?? 'unknown'}${err ? ` (${err.message})` : ''}`;

describe('poll', () => {
  it('returns the state `until` accepts, backing off from the default cadence to its cap', async () => {
    const clock = fakeClock();
    const { check, count } = looks('pending', 'pending', 'pending', 'pending', 'pending', 'pending', 'done');
    const out = await poll({ check, until: (s) => s === 'done', deadlineMs: 600_000, clock, describe: describeLast });
    expect(out).toBe('done');
    expect(count()).toBe(7);
    expect(POLL_DEFAULTS).toEqual({ intervalMs: 500, backoff: 2, maxIntervalMs: 5000 });
    expect(clock.slept).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
  });

  it('takes a provider’s own cadence', async () => {
    const clock = fakeClock();
    const { check } = looks('a', 'a', 'a', 'a', 'b');
    await poll({ check, until: (s) => s === 'b', deadlineMs: 600_000, intervalMs: 2000, backoff: 1.5, maxIntervalMs: 4000, clock, describe: describeLast });
    expect(clock.slept).toEqual([2000, 3000, 4000, 4000]);
  });

  it('past the deadline: a non-retryable timeout saying what was seen last, after one last look at the deadline', async () => {
    const clock = fakeClock();
    const t0 = clock.now();
    const { check, count } = looks('building');
    const err = await poll({ check, until: () => false, deadlineMs: 10_000, clock, target: 't', op: 'redeploy', describe: describeLast }).catch((e: unknown) => e as TargetError);
    expect(err).toBeInstanceOf(TargetError);
    expect(err).toMatchObject({ kind: 'timeout', retryable: false, target: 't', op: 'redeploy', message: 'still building' });
    // 500 + 1000 + 2000 + 4000 = 7500, then the rest of the budget (2500): never past it.
    expect(clock.slept).toEqual([500, 1000, 2000, 4000, 2500]);
    expect(clock.now() - t0).toBe(10_000);
    expect(count()).toBe(6);
  });

  it('a terminal state ends the wait at once with the error `until` throws', async () => {
    const clock = fakeClock();
    const { check, count } = looks('building', 'FAILED', 'READY');
    const failed = new TargetError('deployment failed', { kind: 'unavailable', retryable: false });
    const err = await poll({
      check,
      until: (s) => {
        if (s === 'FAILED') throw failed;
        return s === 'READY';
      },
      deadlineMs: 60_000,
      clock,
      describe: describeLast,
    }).catch((e: unknown) => e);
    expect(err).toBe(failed);
    expect(count()).toBe(2);
  });

  it('transient errors (throttled, 5xx, a call timeout) keep it polling, honouring Retry-After', async () => {
    const clock = fakeClock();
    const throttled = new TargetError('429', { kind: 'rate-limited', retryAfterMs: 7000 });
    const down = new TargetError('503', { kind: 'unavailable' });
    const late = new TargetError('did not answer', { kind: 'timeout' });
    const { check, count } = looks<string>(throttled, down, late, 'READY');
    expect(await poll({ check, until: (s) => s === 'READY', deadlineMs: 60_000, clock, describe: describeLast })).toBe('READY');
    expect(count()).toBe(4);
    expect(clock.slept).toEqual([7000, 1000, 2000]);
  });

  it('the timeout message carries the last transient error when no look succeeded', async () => {
    const clock = fakeClock();
    const { check } = looks<string>(new TargetError('HTTP 503', { kind: 'unavailable' }));
    const err = await poll({ check, until: () => true, deadlineMs: 3000, clock, describe: describeLast }).catch((e: unknown) => e as TargetError);
    expect(err).toMatchObject({ kind: 'timeout', message: 'still unknown (HTTP 503)' });
  });

  it('a non-retryable error from a look ends it (a 401 will not heal by waiting)', async () => {
    const clock = fakeClock();
    const denied = new TargetError('401', { kind: 'auth' });
    const { check, count } = looks<string>(denied, 'READY');
    await expect(poll({ check, until: () => true, deadlineMs: 60_000, clock, describe: describeLast })).rejects.toBe(denied);
    expect(count()).toBe(1);
  });

  it('an abort ends the wait during a sleep (real clock)', async () => {
    const { systemClock } = await import('../../src/runtime/clock.ts');
    const ac = new AbortController();
    const { check } = looks('pending');
    const t0 = Date.now();
    setTimeout(() => ac.abort(new Error('stopped by the user')), 50);
    const err = (await poll({ check, until: () => false, deadlineMs: 60_000, intervalMs: 10_000, clock: systemClock, signal: ac.signal, describe: describeLast }).catch(
      (e: unknown) => e,
    )) as Error;
    expect(err.message).toBe('stopped by the user');
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('an abort is not mistaken for a transient error of a look', async () => {
    const clock = fakeClock();
    const ac = new AbortController();
    const check = async () => {
      ac.abort();
      throw new TargetError('cancelled', { kind: 'timeout', retryable: true });
    };
    const err = (await poll({ check, until: () => true, deadlineMs: 60_000, clock, signal: ac.signal, describe: describeLast }).catch((e: unknown) => e)) as TargetError;
    expect(err.message).toBe('cancelled');
    expect(clock.slept).toEqual([]);
  });
});

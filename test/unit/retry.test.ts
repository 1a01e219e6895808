import { describe, it, expect } from 'vitest';
import { DEFAULT_RETRY, backoffDelay, retryAfterFromHeaders, withRetry, type RetryPolicy } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { TargetError } from '../../src/core/errors.ts';
import { rateLimitOf } from '../../src/runtime/http.ts';

const rateLimited = (retryAfterMs?: number) => new TargetError('provider: 429 too many requests', { kind: 'rate-limited', status: 429, retryAfterMs });
const unavailable = () => new TargetError('provider: 503', { kind: 'unavailable', status: 503 });

/** fn that fails with the given errors, one per call, then returns 'done'. */
function failing(errors: unknown[]) {
  const calls: number[] = [];
  const fn = async (attempt: number) => {
    calls.push(attempt);
    const e = errors.shift();
    if (e !== undefined) throw e;
    return 'done';
  };
  return { fn, calls };
}

describe('backoffDelay', () => {
  const p: RetryPolicy = { ...DEFAULT_RETRY, baseMs: 500, capMs: 15_000 };

  it('grows exponentially, capped, with full jitter', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, p, () => 1))).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
    expect(backoffDelay(3, p, () => 0)).toBe(0);
    expect(backoffDelay(3, p, () => 0.5)).toBe(1000);
  });

  it('a server-requested delay wins when longer, never shortens the backoff', () => {
    expect(backoffDelay(1, p, () => 0, 7000)).toBe(7000);
    expect(backoffDelay(5, p, () => 1, 100)).toBe(8000);
    expect(backoffDelay(1, p, () => 1, 0)).toBe(500);
  });
});

describe('withRetry', () => {
  it('returns at once on success', async () => {
    const clock = fakeClock();
    const { fn, calls } = failing([]);
    await expect(withRetry(fn, { clock })).resolves.toBe('done');
    expect(calls).toEqual([1]);
    expect(clock.slept).toEqual([]);
  });

  it('retries transient failures and honours Retry-After exactly (no jitter below it)', async () => {
    const clock = fakeClock();
    const t0 = clock.now();
    const retries: Array<{ attempt: number; delayMs: number; kind: string }> = [];
    const { fn, calls } = failing([rateLimited(3000), rateLimited(10_000), unavailable()]);
    const out = await withRetry(fn, {
      clock,
      random: () => 0,
      onRetry: (i) => retries.push({ attempt: i.attempt, delayMs: i.delayMs, kind: i.error.kind }),
    });
    expect(out).toBe('done');
    expect(calls).toEqual([1, 2, 3, 4]);
    expect(clock.slept).toEqual([3000, 10_000, 0]);
    expect(retries).toEqual([
      { attempt: 1, delayMs: 3000, kind: 'rate-limited' },
      { attempt: 2, delayMs: 10_000, kind: 'rate-limited' },
      { attempt: 3, delayMs: 0, kind: 'unavailable' },
    ]);
    expect(clock.now() - t0).toBe(13_000);
  });

  it('is bounded by attempts: the last error is thrown', async () => {
    const clock = fakeClock();
    const errors = Array.from({ length: 10 }, () => unavailable());
    const { fn, calls } = failing(errors);
    const err = await withRetry(fn, { clock, random: () => 0.1, policy: { attempts: 3 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect((err as TargetError).kind).toBe('unavailable');
    expect(calls).toEqual([1, 2, 3]);
    expect(clock.slept).toHaveLength(2);
  });

  it('is bounded by maxElapsedMs: no attempt starts past the budget', async () => {
    const clock = fakeClock();
    const { fn, calls } = failing(Array.from({ length: 10 }, () => unavailable()));
    const policy = { attempts: 10, baseMs: 1000, capMs: 100_000, maxElapsedMs: 5000 };
    await expect(withRetry(fn, { clock, random: () => 1, policy })).rejects.toBeInstanceOf(TargetError);
    // 1000 + 2000 = 3000 elapsed; the next 4000 would end at 7000 > 5000.
    expect(clock.slept).toEqual([1000, 2000]);
    expect(calls).toEqual([1, 2, 3]);
  });

  it('a Retry-After that would pass the time budget ends the retries', async () => {
    const clock = fakeClock();
    const { fn, calls } = failing([rateLimited(50_000), rateLimited(50_000)]);
    const policy = { maxElapsedMs: 60_000 };
    await expect(withRetry(fn, { clock, random: () => 0, policy })).rejects.toMatchObject({ kind: 'rate-limited' });
    expect(calls).toEqual([1, 2]);
    expect(clock.slept).toEqual([50_000]);
  });

  it('a Retry-After longer than maxRetryAfterMs is not waited for', async () => {
    const clock = fakeClock();
    const { fn, calls } = failing([rateLimited(3_600_000)]);
    await expect(withRetry(fn, { clock })).rejects.toMatchObject({ kind: 'rate-limited', retryAfterMs: 3_600_000 });
    expect(calls).toEqual([1]);
    expect(clock.slept).toEqual([]);
  });

  it('stops at once on a non-retryable error', async () => {
    for (const e of [
      new TargetError('denied', { kind: 'permission', status: 403 }),
      new TargetError('bad', { kind: 'invalid' }),
      new TargetError('503 but told not to', { kind: 'unavailable', retryable: false }),
    ]) {
      const clock = fakeClock();
      const { fn, calls } = failing([e]);
      await expect(withRetry(fn, { clock })).rejects.toBe(e);
      expect(calls).toEqual([1]);
      expect(clock.slept).toEqual([]);
    }
  });

  it('classifies raw errors: a connection reset is retried, an unknown host is not, a plain Error is not', async () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const r1 = failing([reset]);
    await expect(withRetry(r1.fn, { clock: fakeClock() })).resolves.toBe('done');
    expect(r1.calls).toEqual([1, 2]);

    const dns = Object.assign(new Error('getaddrinfo'), { code: 'ENOTFOUND' });
    const r2 = failing([dns]);
    await expect(withRetry(r2.fn, { clock: fakeClock() })).rejects.toMatchObject({ kind: 'unavailable', retryable: false });
    expect(r2.calls).toEqual([1]);

    const r3 = failing([new Error('boom')]);
    await expect(withRetry(r3.fn, { clock: fakeClock() })).rejects.toMatchObject({ kind: 'invalid', retryable: false });
    expect(r3.calls).toEqual([1]);

    const timeout = Object.assign(new Error('t'), { name: 'TimeoutError' });
    const r4 = failing([timeout]);
    await expect(withRetry(r4.fn, { clock: fakeClock() })).resolves.toBe('done');
    expect(r4.calls).toEqual([1, 2]);
  });

  it('an aborted signal stops the retries with the original error', async () => {
    const ac = new AbortController();
    const original = unavailable();
    const calls: number[] = [];
    const fn = async (attempt: number) => {
      calls.push(attempt);
      ac.abort();
      throw original;
    };
    await expect(withRetry(fn, { clock: fakeClock(), signal: ac.signal })).rejects.toBe(original);
    expect(calls).toEqual([1]);
  });

  it('default policy: 6 attempts', async () => {
    const clock = fakeClock();
    const { fn, calls } = failing(Array.from({ length: 10 }, () => unavailable()));
    await expect(withRetry(fn, { clock, random: () => 0 })).rejects.toBeInstanceOf(TargetError);
    expect(calls).toHaveLength(DEFAULT_RETRY.attempts);
  });
});

describe('retryAfterFromHeaders', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const h = (init: Record<string, string>) => new Headers(init);

  it('Retry-After in seconds (integer and decimal)', () => {
    expect(retryAfterFromHeaders(h({ 'Retry-After': '5' }), now)).toBe(5000);
    expect(retryAfterFromHeaders(h({ 'retry-after': '0' }), now)).toBe(0);
    expect(retryAfterFromHeaders(h({ 'retry-after': '1.5' }), now)).toBe(1500);
    expect(retryAfterFromHeaders(h({ 'retry-after': ' 7 ' }), now)).toBe(7000);
  });

  it('Retry-After as an HTTP date, relative to now; a past date is 0', () => {
    expect(retryAfterFromHeaders(h({ 'Retry-After': new Date(now + 30_000).toUTCString() }), now)).toBe(30_000);
    expect(retryAfterFromHeaders(h({ 'Retry-After': 'Thu, 01 Jan 2026 00:02:00 GMT' }), now)).toBe(120_000);
    expect(retryAfterFromHeaders(h({ 'Retry-After': new Date(now - 60_000).toUTCString() }), now)).toBe(0);
  });

  it('retry-after-ms wins over Retry-After', () => {
    expect(retryAfterFromHeaders(h({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(250);
    expect(retryAfterFromHeaders(h({ 'Retry-After-Ms': '1200.4' }), now)).toBe(1200);
  });

  it('X-RateLimit-Reset as epoch seconds, or as a delta in seconds', () => {
    expect(retryAfterFromHeaders(h({ 'X-RateLimit-Reset': String(now / 1000 + 42) }), now)).toBe(42_000);
    expect(retryAfterFromHeaders(h({ 'X-RateLimit-Reset': String(now / 1000 - 10) }), now)).toBe(0);
    expect(retryAfterFromHeaders(h({ 'x-ratelimit-reset': '12' }), now)).toBe(12_000);
  });

  it('nothing usable: undefined', () => {
    expect(retryAfterFromHeaders(h({}), now)).toBeUndefined();
    expect(retryAfterFromHeaders(h({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(retryAfterFromHeaders(h({ 'retry-after-ms': 'abc', 'x-ratelimit-reset': '-1' }), now)).toBeUndefined();
  });

  it('a parsed Retry-After drives withRetry on the fake clock', async () => {
    const clock = fakeClock(now);
    const ra = retryAfterFromHeaders(h({ 'Retry-After': '2' }), clock.now());
    const { fn } = failing([rateLimited(ra)]);
    await expect(withRetry(fn, { clock, random: () => 0 })).resolves.toBe('done');
    expect(clock.slept).toEqual([2000]);
    expect(clock.now()).toBe(now + 2000);
  });
});

describe('RateLimit-Reset (no X-: Render, the IETF draft) counts like X-RateLimit-Reset', () => {
  it('a delta in seconds on a 429, or once RateLimit-Remaining is 0; ignored while budget is left', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    // As Render answers (recorded in render-oss/terraform-provider-render cassettes): a delta.
    expect(retryAfterFromHeaders(new Headers({ 'Ratelimit-Reset': '9', 'Ratelimit-Remaining': '221' }), now, 429)).toBe(9_000);
    expect(retryAfterFromHeaders(new Headers({ 'Ratelimit-Reset': '9', 'Ratelimit-Remaining': '0' }), now, 503)).toBe(9_000);
    expect(retryAfterFromHeaders(new Headers({ 'Ratelimit-Reset': '9', 'Ratelimit-Remaining': '5' }), now, 503)).toBeUndefined();
    // Render's docs call it epoch seconds: both forms work.
    expect(retryAfterFromHeaders(new Headers({ 'RateLimit-Reset': String(now / 1000 + 45) }), now, 429)).toBe(45_000);
  });

  it('rateLimitOf reads it as the reset time', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(rateLimitOf(new Headers({ 'Ratelimit-Reset': '10', 'Ratelimit-Remaining': '224' }), now, 200)).toEqual({ remaining: 224, resetAt: now + 10_000 });
  });
});

describe('X-RateLimit-Reset only asks for a wait when the budget is spent', () => {
  it('is ignored on a 5xx with budget left (Netlify and Vercel send it on every answer)', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const h = new Headers({ 'x-ratelimit-reset': String(now / 1000 + 59), 'x-ratelimit-remaining': '120' });
    expect(retryAfterFromHeaders(h, now, 502)).toBeUndefined();
    expect(retryAfterFromHeaders(h, now, 429)).toBe(59_000);
    const spent = new Headers({ 'x-ratelimit-reset': String(now / 1000 + 30), 'x-ratelimit-remaining': '0' });
    expect(retryAfterFromHeaders(spent, now, 503)).toBe(30_000);
    // Retry-After itself counts on any status (a 503 may carry it).
    expect(retryAfterFromHeaders(new Headers({ 'retry-after': '7' }), now, 503)).toBe(7_000);
  });
});

import { describe, it, expect } from 'vitest';
import { Lane, Pacer } from '../../src/runtime/pacer.ts';
import { TargetError } from '../../src/core/errors.ts';
import { fakeClock } from '../../src/runtime/clock.ts';

const throttled = (retryAfterMs?: number) => new TargetError('Heroku answered 429', { target: 't', op: 'write', kind: 'rate-limited', status: 429, retryAfterMs });
const ok = async () => 'ok';

describe('pacing lane: AIMD window', () => {
  it('starts at `initial`, grows by one per success (slow start) and never past `max`', async () => {
    const lane = new Lane('p', { initial: 4, max: 10 }, fakeClock());
    expect(lane.window).toBe(4);
    for (let i = 0; i < 3; i++) await lane.attempt(ok);
    expect(lane.window).toBe(7);
    for (let i = 0; i < 20; i++) await lane.attempt(ok);
    expect(lane.window).toBe(10);
    expect(lane.stats.peakWindow).toBe(10);
  });

  it('halves on congestion once per round: signals from work started before the cut do not cut again', async () => {
    const lane = new Lane('p', { initial: 16, max: 64 }, fakeClock());
    // 16 requests in flight when the provider starts throttling: all 16 fail.
    const gates: Array<() => void> = [];
    const inFlight = Array.from({ length: 16 }, () =>
      lane.attempt(() => new Promise<string>((_, reject) => gates.push(() => reject(throttled()))),
    ).catch((e: unknown) => e));
    for (const g of gates) g();
    const errs = await Promise.all(inFlight);
    expect(errs.every((e) => e instanceof TargetError && e.kind === 'rate-limited')).toBe(true);
    expect(lane.window).toBe(8);
    expect(lane.stats.cuts).toBe(1);
    // A throttle on work started after the cut is a new round: it halves again.
    await lane.attempt(() => Promise.reject(throttled())).catch(() => {});
    expect(lane.window).toBe(4);
    expect(lane.stats.cuts).toBe(2);
  });

  it('after a cut grows additively (about one per window of successes), never below 1', async () => {
    const lane = new Lane('p', { initial: 2, max: 64 }, fakeClock());
    await lane.attempt(() => Promise.reject(throttled())).catch(() => {});
    expect(lane.window).toBe(1);
    await lane.attempt(() => Promise.reject(throttled())).catch(() => {});
    expect(lane.window).toBe(1);
    for (let i = 0; i < 8; i++) await lane.attempt(ok);
    // Congestion avoidance: +1/window per success, so 8 successes from 1 give ~4, not 9.
    expect(Math.floor(lane.window)).toBeGreaterThanOrEqual(3);
    expect(Math.floor(lane.window)).toBeLessThanOrEqual(4);
  });

  it('5xx and timeouts are congestion; a refusal (403) or a not-found is not', async () => {
    const lane = new Lane('p', { initial: 8, max: 8 }, fakeClock());
    const e = (kind: TargetError['kind'], status?: number) => new TargetError('x', { target: 't', op: 'write', kind, status });
    await lane.attempt(() => Promise.reject(e('permission', 403))).catch(() => {});
    await lane.attempt(() => Promise.reject(e('not-found', 404))).catch(() => {});
    expect(lane.window).toBe(8);
    await lane.attempt(() => Promise.reject(e('unavailable', 503))).catch(() => {});
    expect(lane.window).toBe(4);
    await lane.attempt(() => Promise.reject(e('timeout'))).catch(() => {});
    expect(lane.window).toBe(2);
  });

  it('`run` keeps at most `window` steps in flight and admits more as the window grows', async () => {
    const lane = new Lane('p', { initial: 2, max: 4 }, fakeClock());
    let peak = 0;
    const step = () =>
      lane.run(async () => {
        peak = Math.max(peak, lane.inFlight);
        await new Promise((r) => setImmediate(r));
      });
    await Promise.all(Array.from({ length: 6 }, step));
    expect(peak).toBe(2);
    for (let i = 0; i < 2; i++) await lane.attempt(ok);
    peak = 0;
    await Promise.all(Array.from({ length: 6 }, step));
    expect(peak).toBe(4);
  });
});

describe('pacing lane: the provider\'s own signals', () => {
  it('Retry-After pauses the whole lane until then, once, for every step waiting', async () => {
    const clock = fakeClock();
    const notices: string[] = [];
    const lane = new Lane('heroku:acct', { initial: 4, max: 4 }, clock, (m) => notices.push(m));
    await lane.attempt(() => Promise.reject(throttled(2_000))).catch(() => {});
    const t0 = clock.now();
    await Promise.all([lane.run(ok), lane.run(ok), lane.run(ok)]);
    expect(clock.now() - t0).toBe(2_000);
    expect(notices.filter((n) => /pausing 2 s as the provider asked/.test(n))).toHaveLength(1);
  });

  it('a budget at the reserve lets one probe through per refill interval, and its answer decides', async () => {
    const clock = fakeClock();
    const lane = new Lane('p', { initial: 8, max: 8, reserve: 20, refillPerSecond: 75 / 60 }, clock);
    // Plenty left: no wait.
    let t = await lane.beforeRequest();
    lane.afterRequest(t, { status: 200, rateLimit: { remaining: 100 } });
    expect(clock.slept).toEqual([]);
    // At the reserve: the next request is a probe one refill interval (800 ms) later.
    t = await lane.beforeRequest();
    lane.afterRequest(t, { status: 200, rateLimit: { remaining: 20 } });
    const probe = await lane.beforeRequest();
    expect(probe.probe).toBe(true);
    expect(clock.slept).toEqual([800]);
    // Requests behind the probe wait for its answer; it says the bucket refilled: they go at once.
    let second = false;
    const behind = lane.beforeRequest().then((tk) => ((second = true), tk));
    await new Promise((r) => setImmediate(r));
    expect(second).toBe(false);
    lane.afterRequest(probe, { status: 200, rateLimit: { remaining: 500 } });
    const tk = await behind;
    expect(tk.probe).toBe(false);
    expect(clock.slept).toEqual([800]);
    expect(lane.stats.pacedRequests).toBe(1);
  });

  it('a low budget with a reset time waits for the reset (capped at a minute)', async () => {
    const clock = fakeClock();
    const lane = new Lane('vercel', { initial: 4, max: 4, reserve: 0 }, clock);
    const t = await lane.beforeRequest('GET /v9/projects');
    lane.afterRequest(t, { status: 200, rateLimit: { remaining: 0, resetAt: clock.now() + 3_000 } });
    // Another endpoint's budget is its own.
    await lane.beforeRequest('PATCH /v9/projects/env');
    expect(clock.slept).toEqual([]);
    await lane.beforeRequest('GET /v9/projects');
    expect(clock.slept).toEqual([3_000]);
  });

  it('on a budget the provider reports, the first request goes alone; an answer without headers lets the rest go', async () => {
    const clock = fakeClock();
    const lane = new Lane('vercel', { initial: 8, max: 8, reserve: 0 }, clock);
    const first = await lane.beforeRequest('PATCH /v9/projects/:id/env/:id');
    expect(first.probe).toBe(true);
    let second = false;
    const behind = lane.beforeRequest('PATCH /v9/projects/:id/env/:id').then((t) => ((second = true), t));
    await new Promise((r) => setImmediate(r));
    expect(second).toBe(false);
    lane.afterRequest(first, { status: 200, rateLimit: { remaining: 5, resetAt: 1e15 } });
    lane.afterRequest(await behind, { status: 200, rateLimit: { remaining: 4, resetAt: 1e15 } });
    // An answer overtaken by a later one (remaining 4) does not raise the window's budget again.
    const late = await lane.beforeRequest('PATCH /v9/projects/:id/env/:id');
    lane.afterRequest(late, { status: 200, rateLimit: { remaining: 6, resetAt: 1e15 } });
    // 4 left: four more go without waiting, the fifth waits (it would be past the limit).
    const go = await Promise.all([1, 2, 3, 4].map(() => lane.beforeRequest('PATCH /v9/projects/:id/env/:id')));
    expect(go.every((t) => !t.probe)).toBe(true);
    expect(clock.slept).toEqual([]);
    const fifth = await lane.beforeRequest('PATCH /v9/projects/:id/env/:id');
    expect(fifth.probe).toBe(true);
    expect(clock.slept).toEqual([60_000]);
    // A lane without a reserve (no budget reported, e.g. AWS) never holds the first request back.
    const aws = new Lane('aws', { initial: 8, max: 8 }, fakeClock());
    expect((await aws.beforeRequest()).probe).toBe(false);
    expect((await aws.beforeRequest()).probe).toBe(false);
  });

  it('a published rate is a token bucket: bursts of `burst`, then one per interval', async () => {
    const clock = fakeClock();
    const lane = new Lane('aws', { initial: 8, max: 8, rates: { write: { perSecond: 50, burst: 50 } } }, clock);
    const t0 = clock.now();
    for (let i = 0; i < 50; i++) lane.afterRequest(await lane.beforeRequest('', 'write'), {});
    expect(clock.now()).toBe(t0);
    for (let i = 0; i < 50; i++) lane.afterRequest(await lane.beforeRequest('', 'write'), {});
    // 100 writes at 50/s with a burst of 50: the second 50 take a second.
    expect(clock.now() - t0).toBe(1_000);
    // Reads have no published rate here: never delayed.
    lane.afterRequest(await lane.beforeRequest('', 'read'), {});
    expect(clock.now() - t0).toBe(1_000);
  });

  it('a 429 answer seen by the HTTP client cuts the window and honours its Retry-After', async () => {
    const clock = fakeClock();
    const lane = new Lane('p', { initial: 8, max: 8 }, clock);
    const t = await lane.beforeRequest();
    lane.afterRequest(t, { status: 429, rateLimit: { retryAfterMs: 1_500 } });
    expect(lane.window).toBe(4);
    await lane.run(ok);
    expect(clock.slept).toEqual([1_500]);
  });
});

describe('pacer', () => {
  it('one lane per rate-limit domain: targets of one account share it', () => {
    const pacer = new Pacer(fakeClock());
    const a = pacer.lane('heroku:api:tokenA', { initial: 8, max: 64 });
    expect(pacer.lane('heroku:api:tokenA', { initial: 8, max: 64 })).toBe(a);
    expect(pacer.lane('heroku:api:tokenB', { initial: 8, max: 64 })).not.toBe(a);
    expect(pacer.lanes).toHaveLength(2);
  });
});

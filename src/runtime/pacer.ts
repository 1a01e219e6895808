import type { Clock } from './clock.ts';
import { TargetError } from '../core/errors.ts';
import type { RateLimit } from './http.ts';

/**
 * How fast keyrot talks to one provider account: one `Lane` per rate-limit domain (a provider
 * and the token or account behind it), shared by every target of that account.
 *
 * What was adopted, and why:
 * - A concurrency window with TCP-style AIMD (RFC 5681 slow start and congestion avoidance): the
 *   window (target steps in flight) starts moderate, grows by one per success up to `ssthresh`
 *   (slow start, doubling per round), then by one per round; a congestion signal (429, a
 *   throttling error, 5xx, a timeout) halves it, once per round: signals from work that started
 *   before the last cut do not cut again (TCP's one reduction per window of data), so 64 targets
 *   hitting one 429 burst halve the window once, not 64 times.
 * - From AWS SDK v3's adaptive retry mode (@smithy/core util-retry DefaultRateLimiter): pacing is
 *   shared by every call to one account, and a throttle slows the whole account down, not only
 *   the call that saw it. Its CUBIC curve of a measured send rate is not used: the providers here
 *   either publish a rate (AWS: 50 writes/s per account and region), which becomes a fixed token
 *   bucket (`rates`), or tell how much is left (`RateLimit-Remaining`), which is better than any
 *   estimate; the window covers the rest.
 * - The provider's own signals win over any estimate: `Retry-After` pauses the whole lane until
 *   then; the first request on a budget the provider reports goes alone, so a burst never spends
 *   a budget keyrot has not seen; a `Remaining` at or below `reserve` stops the burst before the
 *   budget runs out and lets one request through per refill interval (or at the window's reset),
 *   whose answer says whether the budget is back (a bucket that refills faster than documented is then used at its speed).
 * - The published limits are the ceiling: `max` and `rates` never grow.
 */
export interface PacingLimits {
  /** Target steps in flight at first (the window's start). */
  initial: number;
  /** The window never grows past this: the provider's published limits, or a courtesy cap. */
  max: number;
  /** Published request rates per class of request (AWS: writes), as token buckets. */
  rates?: Record<string, { perSecond: number; burst: number }>;
  /** How fast the provider's budget refills (Heroku: 75 per minute); paced requests are spaced by it. */
  refillPerSecond?: number;
  /** Requests of the provider's budget left to others (the CLI, dashboards); pacing starts above it. */
  reserve?: number;
}

/** One request's pass through the lane: handed back to `afterRequest`. */
export interface Ticket {
  bucket: string;
  epoch: number;
  probe: boolean;
}

/** What a lane did, for the run's summary. */
export interface LaneStats {
  peakWindow: number;
  cuts: number;
  pausedMs: number;
  pacedRequests: number;
}

interface Budget {
  remaining?: number;
  resetAt?: number;
  /** An answer came back (with or without rate-limit headers): the budget is no longer unknown. */
  answered: boolean;
  inflight: number;
  probing: boolean;
  waiters: Array<() => void>;
}

const BETA = 0.5;
/** Without a documented refill, a paced lane looks again after this long. */
const DEFAULT_PROBE_MS = 1_000;
const NOTICE_EVERY_MS = 5_000;

/** Congestion: the provider is overloaded or throttling (TCP would call it loss). */
export function isCongestion(err: unknown): err is TargetError {
  return err instanceof TargetError && (err.kind === 'rate-limited' || err.kind === 'timeout' || (err.kind === 'unavailable' && err.status !== undefined && err.status >= 500));
}

/** What a failed request tells the lane: a throttle (a `rate-limited` TargetError) is a 429 with the wait it asked for. */
export function throttleOf(err: unknown): { status?: number; rateLimit?: RateLimit } {
  if (!(err instanceof TargetError) || err.kind !== 'rate-limited') return {};
  return { status: 429, rateLimit: err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs } };
}

export class Lane {
  readonly key: string;
  readonly limits: PacingLimits;
  readonly stats: LaneStats;
  window: number;
  #ssthresh: number;
  #inFlight = 0;
  #epoch = 0;
  #pausedUntil = 0;
  readonly #slotWaiters: Array<() => void> = [];
  readonly #budgets = new Map<string, Budget>();
  readonly #tat = new Map<string, number>();
  readonly #clock: Clock;
  readonly #notice: (message: string) => void;
  /** When each kind of notice was last given: one per kind every NOTICE_EVERY_MS, a fleet's worth would drown the output. */
  readonly #said = new Map<string, number>();

  constructor(key: string, limits: PacingLimits, clock: Clock, notice: (message: string) => void = () => {}) {
    this.key = key;
    this.limits = { ...limits, initial: Math.max(1, Math.min(limits.initial, limits.max)) };
    this.window = this.limits.initial;
    this.#ssthresh = limits.max;
    this.#clock = clock;
    this.#notice = notice;
    this.stats = { peakWindow: this.window, cuts: 0, pausedMs: 0, pacedRequests: 0 };
  }

  #say(kind: string, message: string): void {
    const now = this.#clock.now();
    if (now - (this.#said.get(kind) ?? -Infinity) < NOTICE_EVERY_MS) return;
    this.#said.set(kind, now);
    this.#notice(message);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** One target step (a write, a verify...): waits for room in the window and for any pause. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (;;) {
      await this.#waitPause(signal);
      if (this.#inFlight < Math.floor(this.window)) break;
      await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
    }
    this.#inFlight++;
    try {
      return await fn();
    } finally {
      this.#inFlight--;
      this.#wakeSlots();
    }
  }

  /** One attempt of a provider call inside a step: success grows the window, congestion cuts it. */
  async attempt<T>(fn: () => Promise<T>): Promise<T> {
    const epoch = this.#epoch;
    try {
      const out = await fn();
      this.#grow();
      return out;
    } catch (err) {
      if (isCongestion(err)) this.congestion(epoch, err.retryAfterMs, err.message);
      throw err;
    }
  }

  /** Halves the window (once per round: not for work that started before the last cut) and honours a requested wait. */
  congestion(epoch: number, retryAfterMs: number | undefined, why: string): void {
    const now = this.#clock.now();
    if (retryAfterMs !== undefined && retryAfterMs > 0 && now + retryAfterMs > this.#pausedUntil) {
      this.#pausedUntil = now + retryAfterMs;
      this.#say('pause', `${this.key}: pausing ${Math.ceil(retryAfterMs / 100) / 10} s as the provider asked (${why})`);
    }
    if (epoch < this.#epoch) return;
    this.#epoch++;
    this.stats.cuts++;
    const before = Math.floor(this.window);
    this.#ssthresh = Math.max(1, Math.floor(this.window * BETA));
    this.window = this.#ssthresh;
    if (before !== this.window) this.#say('cut', `${this.key}: at most ${this.window} at once (was ${before}) after: ${why}`);
  }

  #grow(): void {
    const was = Math.floor(this.window);
    this.window = Math.min(this.limits.max, this.window < this.#ssthresh ? this.window + 1 : this.window + 1 / this.window);
    this.stats.peakWindow = Math.max(this.stats.peakWindow, Math.floor(this.window));
    if (Math.floor(this.window) > was) this.#wakeSlots();
  }

  #wakeSlots(): void {
    let room = Math.floor(this.window) - this.#inFlight;
    while (room-- > 0 && this.#slotWaiters.length) this.#slotWaiters.shift()!();
  }

  /** Waits out a pause. A stop request ends the wait (the step then sees the signal and stops itself). */
  async #waitPause(signal?: AbortSignal): Promise<void> {
    for (let wait = this.#pausedUntil - this.#clock.now(); wait > 0 && !signal?.aborted; wait = this.#pausedUntil - this.#clock.now()) {
      this.stats.pausedMs += wait;
      await this.#clock.sleep(wait, signal).catch(() => {});
    }
  }

  /**
   * Before one request (its `bucket`: the provider's budget it spends; `cls`: a class with a
   * published rate): waits out a pause, the class's rate and a low budget. Hand the ticket back
   * to `afterRequest` whatever happens.
   */
  async beforeRequest(bucket = '', cls?: string, signal?: AbortSignal): Promise<Ticket> {
    await this.#waitPause(signal);
    if (cls && this.limits.rates?.[cls]) await this.#waitRate(cls, signal);
    const probe = await this.#waitBudget(this.#budget(bucket), bucket, signal);
    return { bucket, epoch: this.#epoch, probe };
  }

  /** After one request: the answer's rate-limit state (if any) and whether it was throttled. */
  afterRequest(t: Ticket, answer: { status?: number; rateLimit?: RateLimit }): void {
    const b = this.#budget(t.bucket);
    b.inflight = Math.max(0, b.inflight - 1);
    const rl = answer.rateLimit;
    b.answered = true;
    // Within one window (same reset) the budget only shrinks: an answer overtaken by a later one
    // must not raise it again. A bucket without a reset time refills, so its latest word stands.
    const sameWindow = rl?.resetAt !== undefined && rl.resetAt === b.resetAt && b.remaining !== undefined;
    if (rl?.remaining !== undefined) b.remaining = sameWindow ? Math.min(b.remaining!, rl.remaining) : rl.remaining;
    if (rl?.resetAt !== undefined) b.resetAt = rl.resetAt;
    if (answer.status === 429) this.congestion(t.epoch, rl?.retryAfterMs, 'the provider answered 429');
    if (t.probe) b.probing = false;
    for (const w of b.waiters.splice(0)) w();
  }

  /**
   * One provider request through the lane, for clients whose answers carry no rate-limit headers
   * (the SDKs, the Kubernetes and Docker clients): it waits as `beforeRequest` does (a pause, the
   * class's published rate), and a throttling answer (`throttleOf`: 429, ThrottlingException,
   * RESOURCE_EXHAUSTED) tells the lane, with the wait the provider asked for. `failureIn`: for
   * clients that return a failure as an outcome instead of throwing it. `answerOf`: for clients
   * whose answer carries its HTTP status (a 429 among them) instead of throwing it.
   */
  async request<T>(
    fn: () => Promise<T>,
    o: { cls?: string; bucket?: string; signal?: AbortSignal; failureIn?: (out: T) => unknown; answerOf?: (out: T) => { status?: number; rateLimit?: RateLimit } } = {},
  ): Promise<T> {
    const ticket = await this.beforeRequest(o.bucket, o.cls, o.signal);
    let failure: unknown;
    let answer: { status?: number; rateLimit?: RateLimit } | undefined;
    try {
      const out = await fn();
      failure = o.failureIn?.(out);
      answer = o.answerOf?.(out);
      return out;
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      this.afterRequest(ticket, answer ?? throttleOf(failure));
    }
  }

  /** A published rate as a token bucket (GCRA): each request gets the next free instant, bursts of `burst`. */
  async #waitRate(cls: string, signal?: AbortSignal): Promise<void> {
    const { perSecond, burst } = this.limits.rates![cls]!;
    const interval = 1000 / perSecond;
    const now = this.#clock.now();
    const tat = this.#tat.get(cls) ?? now;
    const at = Math.max(now, tat - (burst - 1) * interval);
    this.#tat.set(cls, Math.max(tat, at) + interval);
    if (at > now) await this.#clock.sleep(at - now, signal);
  }

  #budget(bucket: string): Budget {
    let b = this.#budgets.get(bucket);
    if (!b) this.#budgets.set(bucket, (b = { inflight: 0, probing: false, answered: false, waiters: [] }));
    return b;
  }

  /** Returns whether this request goes as the lone probe of a low budget. */
  async #waitBudget(b: Budget, bucket: string, signal?: AbortSignal): Promise<boolean> {
    const reserve = this.limits.reserve ?? 0;
    for (;;) {
      if (b.remaining === undefined && this.limits.reserve !== undefined && !b.answered) {
        // A provider that reports its budget (a reserve is set), on a budget not seen yet: one
        // request finds out how much is left before a burst spends it blindly.
        if (!b.probing) {
          b.probing = true;
          b.inflight++;
          return true;
        }
        await new Promise<void>((resolve) => b.waiters.push(resolve));
        continue;
      }
      if (b.remaining === undefined || b.remaining - b.inflight > reserve) {
        b.inflight++;
        return false;
      }
      if (!b.probing) {
        b.probing = true;
        const wait = this.#probeWait(b);
        this.stats.pacedRequests++;
        this.#say('pace', `${this.key}: ${Math.max(0, b.remaining)} requests left in the provider's rate-limit budget${bucket ? ` (${bucket})` : ''}: pacing, next request in ${Math.round(wait)} ms`);
        this.stats.pausedMs += wait;
        await this.#clock.sleep(wait, signal);
        b.inflight++;
        return true;
      }
      await new Promise<void>((resolve) => b.waiters.push(resolve));
    }
  }

  /** Until the window resets (when the provider says when), else one refill interval. */
  #probeWait(b: Budget): number {
    const now = this.#clock.now();
    if (b.resetAt !== undefined && b.resetAt > now) return Math.min(b.resetAt - now, 60_000);
    return this.limits.refillPerSecond ? 1000 / this.limits.refillPerSecond : DEFAULT_PROBE_MS;
  }
}

/** Every lane of a run, by key: targets of one account share one. */
export class Pacer {
  readonly #lanes = new Map<string, Lane>();
  readonly #clock: Clock;
  readonly #notice?: (message: string) => void;

  constructor(clock: Clock, notice?: (message: string) => void) {
    this.#clock = clock;
    this.#notice = notice;
  }

  lane(key: string, limits: PacingLimits): Lane {
    let l = this.#lanes.get(key);
    if (!l) this.#lanes.set(key, (l = new Lane(key, limits, this.#clock, this.#notice)));
    return l;
  }

  get lanes(): Lane[] {
    return [...this.#lanes.values()];
  }
}

/**
 * What a provider counts requests in: a fixed window of `limit` requests per `windowMs`, one per
 * key (a token, a token and a project, an action on a machine). The emulators answer 429 once a
 * window is spent and report what is left in their provider's own headers.
 */
export interface WindowState {
  /** This request fits in the window (it has been counted). */
  ok: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export class RateWindows {
  private readonly windows = new Map<string, { start: number; used: number }>();

  readonly limit: number;
  readonly windowMs: number;

  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Counts one request under `key` (a refused one is not counted). */
  take(key: string, now = Date.now()): WindowState {
    const w = this.current(key, now);
    const ok = w.used < this.limit;
    if (ok) w.used += 1;
    return { ok, limit: this.limit, remaining: this.limit - w.used, resetMs: w.start + this.windowMs - now };
  }

  /** Tests: leave only `remaining` requests in the key's current window. */
  setRemaining(key: string, remaining: number, now = Date.now()): void {
    this.current(key, now).used = Math.max(0, this.limit - remaining);
  }

  private current(key: string, now: number): { start: number; used: number } {
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      w = { start: now, used: 0 };
      this.windows.set(key, w);
    }
    return w;
  }
}

/** Seconds until a window resets, rounded up (what `*-Reset` delta headers carry). */
export const resetSeconds = (w: WindowState): string => String(Math.max(1, Math.ceil(w.resetMs / 1000)));

import type { Lane } from './pacer.ts';

/** A counting semaphore: at most `limit` holders at once, FIFO. */
export class Semaphore {
  #free: number;
  readonly #queue: Array<() => void> = [];
  constructor(limit: number) {
    this.#free = Math.max(1, limit);
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#queue.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/**
 * Per-account pacing plus per-resource mutual exclusion: a target step runs in its provider
 * account's lane (runtime/pacer.ts: an adaptive window shared by the account's targets); targets
 * with the same lockKey (two variables of one .env file) run one at a time, and wait for their turn
 * outside the lane, so a queue on one file holds no room another account's target could use.
 */
export class Limiter {
  readonly #resources = new Map<string, Semaphore>();
  run<T>(lane: Lane, lockKey: string | undefined, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const inner = () => lane.run(fn, signal);
    if (!lockKey) return inner();
    let r = this.#resources.get(lockKey);
    if (!r) this.#resources.set(lockKey, (r = new Semaphore(1)));
    return r.run(inner);
  }
}

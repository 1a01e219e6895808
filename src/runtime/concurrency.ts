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
 * Per-provider caps plus per-resource mutual exclusion: targets of one provider share a
 * semaphore of the provider's concurrency; targets with the same lockKey (two variables of one
 * .env file) run one at a time.
 */
export class Limiter {
  readonly #providers = new Map<string, Semaphore>();
  readonly #resources = new Map<string, Semaphore>();
  readonly #caps: (provider: string) => number;
  constructor(caps: (provider: string) => number) {
    this.#caps = caps;
  }
  run<T>(provider: string, lockKey: string | undefined, fn: () => Promise<T>): Promise<T> {
    let p = this.#providers.get(provider);
    if (!p) this.#providers.set(provider, (p = new Semaphore(this.#caps(provider))));
    const inner = () => p.run(fn);
    if (!lockKey) return inner();
    let r = this.#resources.get(lockKey);
    if (!r) this.#resources.set(lockKey, (r = new Semaphore(1)));
    return r.run(inner);
  }
}

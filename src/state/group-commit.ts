/**
 * Group commit, as databases do it for their logs: while one commit (a write and an fsync) is
 * in flight, new items wait; when it ends, everything that arrived meanwhile goes out in the next
 * commit, together. Each `add` resolves only once the commit holding its item has returned (the
 * item is durable), and rejects with that commit's error, so "an event is durable before the step
 * that depends on it" holds item by item, while a fleet of targets finishing together costs one
 * fsync instead of one each. A lone item is committed at once: nothing waits for company.
 */
export class GroupCommit<T> {
  readonly #commit: (items: T[]) => Promise<void>;
  #pending: Array<{ item: T; resolve: () => void; reject: (err: unknown) => void }> = [];
  #running = false;

  constructor(commit: (items: T[]) => Promise<void>) {
    this.#commit = commit;
  }

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    // Items added in the same turn of the event loop (targets finishing together) share the first commit.
    await null;
    try {
      while (this.#pending.length) {
        const batch = this.#pending;
        this.#pending = [];
        try {
          await this.#commit(batch.map((b) => b.item));
          for (const b of batch) b.resolve();
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.#running = false;
    }
  }
}

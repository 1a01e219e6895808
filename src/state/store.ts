import type { Lock, LockInfo } from './lock.ts';
import type { StateTrust } from './trust.ts';

/**
 * Where keyrot keeps its journal, audit log and locks. `local` (the default) is a directory;
 * `kubernetes` keeps them in the cluster (a Lease per environment as the lock), so several
 * CronJob runs or replicas share one state and exactly one rotates.
 */
export interface StateStore {
  readonly kind: 'local' | 'kubernetes';
  /** For messages: a directory, or "ConfigMap ns/name". */
  readonly where: string;
  /**
   * Appends the journal line(s) computed from the lines already there (the MAC chains to the last
   * one), serialised against other writers. `make` may return several lines joined by `\n` (a
   * group commit): they are written together and made durable together. Returns what was written.
   */
  appendJournalLine(env: string, make: (lines: string[]) => string): Promise<string>;
  /** The environment's journal as NDJSON text ('' when none). */
  readJournalText(env: string): Promise<string>;
  /** Environments that have a journal. */
  journalEnvs(): Promise<string[]>;
  /**
   * Appends one audit line computed from the lines already there, serialised against other
   * writers so the chain never forks. Returns the line written.
   */
  appendAuditLine(make: (lines: string[]) => string): Promise<string>;
  readAuditText(): Promise<string>;
  acquireLock(env: string, meta: { rotation?: string; command: string }): Promise<Lock>;
  readLock(env: string): Promise<LockInfo | null>;
  /** Whether a lock's holder is known to be gone (dead process, expired lease). */
  isStale(info: LockInfo): boolean;
  /** The state key and the heads' anchor, both kept outside the state (trust.ts). */
  readonly trust: StateTrust;
}

/** A state directory path (local store) or a store. */
export type StateRef = StateStore | string;

const cache = new Map<string, StateStore>();

/** Resolves a StateRef; a path gets the local store (loaded lazily, cached per path). */
export async function stateOf(ref: StateRef): Promise<StateStore> {
  if (typeof ref !== 'string') return ref;
  let s = cache.get(ref);
  if (!s) {
    const { localState } = await import('./local.ts');
    s = localState(ref);
    cache.set(ref, s);
  }
  return s;
}

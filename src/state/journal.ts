import { join } from 'node:path';
import { redact } from '../core/redact.ts';
import type { VerifyMethod } from '../targets/types.ts';
import { type StateRef } from './store.ts';
import { appendSealedJournalLine, readVerifiedJournal } from './journal-auth.ts';
export { appendLine } from './local.ts';

/**
 * The rotation journal: append-only NDJSON, one event per step outcome (and, for writes and
 * restores, one when the step starts), fsynced before the engine moves on. Fingerprints and hints
 * only, never a value. The engine's whole state is replayed from it (src/machine/state.ts).
 */
export const JOURNAL_STEPS = [
  'start',
  /** v1 journals only: the new key, in its own event after `start` (now part of `start`). */
  'key',
  'live-check',
  /** What resume found each target holding when it picked the rotation up. */
  'observe',
  /** The rotation turns back: every touched target is restored (a failure, or `resume --rollback`). */
  'decide',
  'write',
  'verify',
  'redeploy',
  'restore',
  'verified-all',
  'revoke',
  'finalize',
  'end',
] as const;
export type JournalStep = (typeof JOURNAL_STEPS)[number];

export const END_OUTCOMES = ['awaiting-revocation', 'completed', 'failed', 'rolled-back'] as const;
export type EndOutcome = (typeof END_OUTCOMES)[number];

/** `started` marks a write, restore or redeploy under way: a crash after it may have changed the target. */
export type StepOutcome = 'started' | 'ok' | 'failed' | 'skipped';

export interface TargetStartInfo {
  name: string;
  type: string;
  location: string;
  /** Fingerprint of the value the target held at preflight; null = absent; 'unreadable' = write-only. */
  old: string | null | 'unreadable';
  readBack: boolean;
}

export interface AlsoRevoke {
  hint: string;
  fingerprint: string;
  /** Why it is retired with the old key (see machine/outcome.ts AlsoRevokeReason). */
  why: string;
}

/** The new key's ids when keyrot minted it through the issuer's admin API. */
export interface MintedIds {
  keyId: string;
  serviceAccountId: string;
  expiresAt: number | null;
}

export interface JournalEvent {
  /** 1: written by keyrot 0.1 (a separate `key` event, no `started` events); 2: this format. */
  v: 1 | 2;
  rotation: string;
  env: string;
  step: JournalStep;
  outcome: StepOutcome | EndOutcome;
  at: string;
  target?: string;
  /** The key written or restored (null: restored to nothing).  */
  fingerprint?: string | null;
  hint?: string;
  receipt?: unknown;
  /** The receipt schema version of the target type that wrote `receipt` (absent in v1: 1). */
  receiptVersion?: number;
  method?: VerifyMethod;
  /** redeploy: after the write (new key) or after a restore (old key). */
  purpose?: 'write' | 'restore';
  detail?: string;
  // start
  mode?: 'rotate' | 'emergency';
  source?: string;
  /** The environment's old key (consensus of readable targets). */
  oldFingerprint?: string | null;
  oldHint?: string | null;
  /** The old key's id at the issuer (Admin API), when known: what `revoke.mode: openai-admin` deletes. */
  oldKeyId?: string | null;
  oldServiceAccountId?: string | null;
  /**
   * Other keys this rotation retires and that must be revoked too: keys some targets held besides
   * the main old key (drift), and an earlier rotation's old key still awaiting revocation.
   */
  alsoRevoke?: AlsoRevoke[];
  targets?: TargetStartInfo[];
  /** start (v2): the new key, in the first durable record, so every crash point can resume. */
  newFingerprint?: string;
  newHint?: string;
  minted?: MintedIds;
  revokedFirst?: boolean;
  // observe
  holds?: Record<string, string | null | 'unreadable'>;
  // decide
  goal?: 'rollback';
  reason?: 'failed' | 'requested';
}

export function journalPath(stateDir: string, env: string): string {
  return join(stateDir, 'journal', `${env}.ndjson`);
}

export class Journal {
  readonly rotation: string;
  readonly env: string;
  readonly #state: StateRef;
  readonly #now: () => number;

  constructor(state: StateRef, env: string, rotation: string, now: () => number = Date.now) {
    this.#state = state;
    this.env = env;
    this.rotation = rotation;
    this.#now = now;
  }

  async append(e: Omit<JournalEvent, 'v' | 'rotation' | 'env' | 'at'>): Promise<JournalEvent> {
    const event: JournalEvent = { v: 2, rotation: this.rotation, env: this.env, at: new Date(this.#now()).toISOString(), ...e };
    if (event.detail) event.detail = redact(event.detail);
    // Sealed with the state key (journal-auth.ts): a line keyrot did not write fails on read.
    await appendSealedJournalLine(this.#state, this.env, redact(JSON.stringify(event)));
    return event;
  }
}

/** Parses journal text WITHOUT authenticating it (tests, tooling); the engine reads through readJournal(). */
export function parseJournal(text: string): JournalEvent[] {
  const out: JournalEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as JournalEvent);
    } catch {
      // A torn last line (crash mid-write, before fsync returned) is not a recorded event.
    }
  }
  return out;
}

/**
 * The environment's events, authenticated: a line that fails its MAC, or a journal cut short of
 * its anchor, is refused (StateTamperedError, exit 1). Read the journal only through this (or
 * verifyJournal() for per-line statuses); parseJournal() does not authenticate.
 */
export async function readJournal(state: StateRef, env: string): Promise<JournalEvent[]> {
  return readVerifiedJournal(state, env);
}

/** Rotation ids sort by time: `rot_20261126T050212Z_k3j9x2`. */
export function newRotationId(now: number, random: () => string): string {
  const ts = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `rot_${ts}_${random()}`;
}

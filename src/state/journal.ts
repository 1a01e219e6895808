import { join } from 'node:path';
import { redact } from '../core/redact.ts';
import type { Receipt, VerifyMethod } from '../targets/types.ts';
import { type StateRef } from './store.ts';
import { appendSealedJournalLine, readVerifiedJournal } from './journal-auth.ts';
export { appendLine } from './local.ts';

/**
 * The rotation journal: append-only NDJSON, one event per step outcome, fsynced before the
 * engine moves on. Fingerprints and hints only, never a value. `keyrot resume` rebuilds exactly
 * which target holds what from it.
 */
export const JOURNAL_STEPS = [
  'start',
  'key',
  'live-check',
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
  /** e.g. "held by target app-env (drift)", "rotation rot_... awaited its revocation". */
  why: string;
}

export interface JournalEvent {
  v: 1;
  rotation: string;
  env: string;
  step: JournalStep;
  outcome: 'ok' | 'failed' | 'skipped' | EndOutcome;
  at: string;
  target?: string;
  fingerprint?: string;
  hint?: string;
  receipt?: Receipt;
  method?: VerifyMethod;
  detail?: string;
  // start only
  mode?: 'rotate' | 'emergency';
  source?: string;
  /** The environment's old key (consensus of readable targets). */
  oldFingerprint?: string | null;
  oldHint?: string | null;
  /** The old key's id at OpenAI (Admin API), when known: what `revoke.mode: openai-admin` deletes. */
  oldKeyId?: string | null;
  oldServiceAccountId?: string | null;
  /**
   * Other keys this rotation retires and that must be revoked too: keys some targets held besides
   * the main old key (drift), and an earlier rotation's old key still awaiting revocation.
   */
  alsoRevoke?: AlsoRevoke[];
  targets?: TargetStartInfo[];
  // end only
  holds?: Record<string, string>;
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
    const event: JournalEvent = { v: 1, rotation: this.rotation, env: this.env, at: new Date(this.#now()).toISOString(), ...e };
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

export interface TargetState {
  info: TargetStartInfo;
  written: boolean;
  writeFailed: boolean;
  receipt?: Receipt;
  verified: boolean;
  verifyMethod?: VerifyMethod;
  redeployed: boolean;
  restored: boolean;
  finalized: boolean;
  /** Fingerprint the journal says the target holds now ('unknown' after a failed write: maybe either). */
  holds: string | null | 'unknown';
  lastError?: string;
}

export interface RotationState {
  id: string;
  env: string;
  mode: 'rotate' | 'emergency';
  source: string;
  startedAt: string;
  endedAt?: string;
  newFingerprint?: string;
  newHint?: string;
  oldFingerprint: string | null;
  oldHint: string | null;
  oldKeyId: string | null;
  oldServiceAccountId: string | null;
  alsoRevoke: AlsoRevoke[];
  /** The new key's ids when keyrot minted it (openai-admin). */
  minted?: { keyId: string; serviceAccountId: string; expiresAt: number | null };
  /** undefined while in progress (or interrupted). */
  outcome?: EndOutcome;
  allVerified: boolean;
  revokedAt?: string;
  revokedFirst: boolean;
  targets: Map<string, TargetState>;
  events: JournalEvent[];
}

/** Rebuilds every rotation of an environment from its journal, oldest first. */
export function replay(events: JournalEvent[]): RotationState[] {
  const rotations = new Map<string, RotationState>();
  for (const e of events) {
    let r = rotations.get(e.rotation);
    if (e.step === 'start') {
      r = {
        id: e.rotation,
        env: e.env,
        mode: e.mode ?? 'rotate',
        source: e.source ?? 'unknown',
        startedAt: e.at,
        oldFingerprint: e.oldFingerprint ?? null,
        oldHint: e.oldHint ?? null,
        oldKeyId: e.oldKeyId ?? null,
        oldServiceAccountId: e.oldServiceAccountId ?? null,
        alsoRevoke: e.alsoRevoke ?? [],
        allVerified: false,
        revokedFirst: false,
        targets: new Map(
          (e.targets ?? []).map((t) => [
            t.name,
            {
              info: t,
              written: false,
              writeFailed: false,
              verified: false,
              redeployed: false,
              restored: false,
              finalized: false,
              holds: t.old === 'unreadable' ? null : t.old,
            } satisfies TargetState,
          ]),
        ),
        events: [],
      };
      if (r.oldFingerprint === undefined) r.oldFingerprint = null;
      rotations.set(e.rotation, r);
    }
    if (!r) continue;
    r.events.push(e);
    const t = e.target ? r.targets.get(e.target) : undefined;
    switch (e.step) {
      case 'key':
        if (e.outcome === 'ok') {
          r.newFingerprint = e.fingerprint;
          r.newHint = e.hint;
          const rc = e.receipt;
          if (rc && typeof rc.keyId === 'string' && typeof rc.serviceAccountId === 'string') {
            r.minted = { keyId: rc.keyId, serviceAccountId: rc.serviceAccountId, expiresAt: typeof rc.expiresAt === 'number' ? rc.expiresAt : null };
          }
        }
        break;
      case 'write':
        if (!t) break;
        if (e.outcome === 'ok') {
          t.written = true;
          t.writeFailed = false;
          t.restored = false;
          // A new value: it still has to be verified and its consumers redeployed.
          t.verified = false;
          t.redeployed = false;
          t.receipt = e.receipt ?? t.receipt;
          t.holds = e.fingerprint ?? r.newFingerprint ?? 'unknown';
        } else if (e.outcome === 'failed') {
          t.writeFailed = true;
          t.holds = 'unknown';
          t.lastError = e.detail;
        }
        break;
      case 'verify':
      case 'redeploy':
        if (!t) break;
        if (e.outcome === 'ok') {
          if (e.step === 'verify') {
            t.verified = true;
            t.verifyMethod = e.method;
          } else t.redeployed = true;
        } else if (e.outcome === 'failed') {
          t.verified = false;
          t.lastError = e.detail;
        }
        break;
      case 'restore':
        if (!t) break;
        if (e.outcome === 'ok') {
          t.restored = true;
          t.written = false;
          t.writeFailed = false;
          t.verified = false;
          t.redeployed = false;
          t.holds = e.fingerprint ?? (t.info.old === 'unreadable' ? r.oldFingerprint : t.info.old);
        } else if (e.outcome === 'failed') {
          t.holds = 'unknown';
          t.lastError = e.detail;
        }
        break;
      case 'verified-all':
        if (e.outcome === 'ok') r.allVerified = true;
        break;
      case 'revoke':
        if (e.outcome === 'ok') {
          r.revokedAt = e.at;
          if (e.detail === 'revoked-first') r.revokedFirst = true;
        }
        break;
      case 'finalize':
        if (t && e.outcome === 'ok') t.finalized = true;
        break;
      case 'end':
        r.outcome = e.outcome as EndOutcome;
        r.endedAt = e.at;
        break;
      default:
        break;
    }
  }
  return [...rotations.values()];
}

/** The key an environment holds according to its journal: the last rotation that got every target verified. */
export function currentKey(rotations: RotationState[]): { hint: string | null; fingerprint: string; since: number; rotation: string } | null {
  for (let i = rotations.length - 1; i >= 0; i--) {
    const r = rotations[i]!;
    if ((r.outcome === 'awaiting-revocation' || r.outcome === 'completed') && r.newFingerprint) {
      const at = r.events.find((e) => e.step === 'verified-all')?.at ?? r.endedAt ?? r.startedAt;
      return { hint: r.newHint ?? null, fingerprint: r.newFingerprint, since: Date.parse(at), rotation: r.id };
    }
  }
  return null;
}

/**
 * The latest rotation whose new key the environment still runs: failed and rolled-back rotations
 * put every target back, so the one before them (and its pending revocation) still stands.
 */
export function latestStanding(rotations: RotationState[]): RotationState | undefined {
  for (let i = rotations.length - 1; i >= 0; i--) {
    const r = rotations[i]!;
    if (r.outcome === 'failed' || r.outcome === 'rolled-back') continue;
    return r;
  }
  return undefined;
}

/** The latest rotation of the environment, if any. */
export async function latestRotation(state: StateRef, env: string): Promise<RotationState | undefined> {
  const all = replay(await readJournal(state, env));
  return all[all.length - 1];
}

/** Rotation ids sort by time: `rot_20261126T050212Z_k3j9x2`. */
export function newRotationId(now: number, random: () => string): string {
  const ts = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `rot_${ts}_${random()}`;
}

import type { AlsoRevoke, EndOutcome, JournalEvent, MintedIds, TargetStartInfo } from '../state/journal.ts';
import { readJournal } from '../state/journal.ts';
import type { StateRef } from '../state/store.ts';
import type { VerifyMethod } from '../targets/types.ts';

/**
 * The one state of a rotation, replayed from its journal. Every decision the engine makes reads
 * this (plus key values held in memory by fingerprint, see keyring.ts); a step changes it only by
 * appending an event, which `apply` folds in — the same function `replay` uses after a crash, so
 * a resumed rotation and an uninterrupted one cannot disagree about what a target holds.
 */

/** What a target holds, as far as the journal knows: a fingerprint, nothing, or unknown. */
export type Holding = string | null | 'unknown';

export interface TargetRecord {
  info: TargetStartInfo;
  /** Fingerprint held now (the new key after a write, the old one after a restore...). */
  holds: Holding;
  /** A write was started since the last restore: the target may hold the new key. */
  touched: boolean;
  /** The last write completed (holds the new key). */
  written: boolean;
  writeFailed: boolean;
  receipt?: { version: number; data: unknown };
  /** Verified since the last write; undefined = not verified. */
  verified?: VerifyMethod;
  /** Its consumers were redeployed onto the new key since the last write. */
  redeployed: boolean;
  /** Restored since the last write. */
  restored: boolean;
  /** Its consumers were redeployed onto the restored value since the last restore. */
  restoreRedeployed: boolean;
  finalized: boolean;
  lastError?: string;
  /**
   * Set while a restore attempt failed or was skipped: `lastError` is then that attempt's problem,
   * and `before` the one it replaced, which a later successful restore puts back.
   */
  restoreProblem?: { before: string | undefined };
}

export interface RotationState {
  id: string;
  env: string;
  mode: 'rotate' | 'emergency';
  source: string;
  startedAt: string;
  endedAt?: string;
  /** v1 journals carried the new key in a second event: a crash in between left it unknown. */
  newFingerprint?: string;
  newHint?: string;
  oldFingerprint: string | null;
  oldHint: string | null;
  oldKeyId: string | null;
  oldServiceAccountId: string | null;
  alsoRevoke: AlsoRevoke[];
  minted?: MintedIds;
  /** `rollback` once the rotation turned back (a failure, or `resume --rollback`). */
  goal: 'forward' | 'rollback';
  rollbackReason?: 'failed' | 'requested';
  /** undefined while in progress (or interrupted). */
  outcome?: EndOutcome;
  allVerified: boolean;
  revokedAt?: string;
  revokedFirst: boolean;
  /** v1 journals have no `started` events: a write in flight at a crash left no trace. */
  legacy: boolean;
  targets: Map<string, TargetRecord>;
  events: JournalEvent[];
}

function newTarget(info: TargetStartInfo): TargetRecord {
  return {
    info,
    holds: info.old === 'unreadable' ? 'unknown' : info.old,
    touched: false,
    written: false,
    writeFailed: false,
    verified: undefined,
    redeployed: false,
    restored: false,
    restoreRedeployed: false,
    finalized: false,
  };
}

/** A fresh rotation from its `start` event. */
export function startState(e: JournalEvent): RotationState {
  return {
    id: e.rotation,
    env: e.env,
    mode: e.mode ?? 'rotate',
    source: e.source ?? 'unknown',
    startedAt: e.at,
    newFingerprint: e.newFingerprint,
    newHint: e.newHint,
    oldFingerprint: e.oldFingerprint ?? null,
    oldHint: e.oldHint ?? null,
    oldKeyId: e.oldKeyId ?? null,
    oldServiceAccountId: e.oldServiceAccountId ?? null,
    alsoRevoke: e.alsoRevoke ?? [],
    minted: e.minted,
    goal: 'forward',
    allVerified: false,
    revokedFirst: Boolean(e.revokedFirst),
    legacy: e.v === 1,
    targets: new Map((e.targets ?? []).map((t) => [t.name, newTarget(t)])),
    events: [],
  };
}

/** Folds one event into the rotation's state (the only way the state changes). */
export function apply(r: RotationState, e: JournalEvent): void {
  r.events.push(e);
  const t = e.target ? r.targets.get(e.target) : undefined;
  switch (e.step) {
    case 'key':
      return applyLegacyKey(r, e);
    case 'observe':
      for (const [name, fp] of Object.entries(e.holds ?? {})) {
        const rec = r.targets.get(name);
        if (rec) rec.holds = fp === 'unreadable' ? rec.holds : fp;
      }
      return;
    case 'decide':
      r.goal = 'rollback';
      r.rollbackReason = e.reason ?? 'failed';
      return;
    case 'write':
      if (t) applyWrite(r, t, e);
      return;
    case 'verify':
      if (t && e.outcome === 'ok') t.verified = e.method ?? 'read-back';
      else if (t && e.outcome === 'failed') (t.verified = undefined), (t.lastError = e.detail);
      return;
    case 'redeploy':
      if (t) applyRedeploy(t, e);
      return;
    case 'restore':
      if (t) applyRestore(r, t, e);
      return;
    case 'verified-all':
      if (e.outcome === 'ok') r.allVerified = true;
      return;
    case 'revoke':
      if (e.outcome === 'ok') {
        r.revokedAt = e.at;
        if (e.detail === 'revoked-first') r.revokedFirst = true;
      }
      return;
    case 'finalize':
      if (t && e.outcome === 'ok') t.finalized = true;
      return;
    case 'end':
      r.outcome = e.outcome as EndOutcome;
      r.endedAt = e.at;
      return;
    default:
      return;
  }
}

function applyLegacyKey(r: RotationState, e: JournalEvent): void {
  if (e.outcome !== 'ok') return;
  r.newFingerprint = e.fingerprint ?? undefined;
  r.newHint = e.hint;
  const rc = e.receipt as Record<string, unknown> | undefined;
  if (rc && typeof rc.keyId === 'string' && typeof rc.serviceAccountId === 'string') {
    r.minted = { keyId: rc.keyId, serviceAccountId: rc.serviceAccountId, expiresAt: typeof rc.expiresAt === 'number' ? rc.expiresAt : null };
  }
}

function applyWrite(r: RotationState, t: TargetRecord, e: JournalEvent): void {
  if (e.outcome === 'started') {
    // From here until an answer is journaled, the target may hold either key.
    t.touched = true;
    t.holds = 'unknown';
    t.restored = false;
    t.restoreRedeployed = false;
    return;
  }
  if (e.outcome === 'ok') {
    t.touched = true;
    t.written = true;
    t.writeFailed = false;
    t.restored = false;
    t.restoreRedeployed = false;
    // A new value: it still has to be verified and its consumers redeployed.
    t.verified = undefined;
    t.redeployed = false;
    if (e.receipt !== undefined) t.receipt = { version: e.receiptVersion ?? 1, data: e.receipt };
    t.holds = e.fingerprint ?? r.newFingerprint ?? 'unknown';
    t.lastError = undefined;
    t.restoreProblem = undefined;
  } else if (e.outcome === 'failed') {
    t.touched = true;
    t.writeFailed = true;
    t.written = false;
    t.holds = 'unknown';
    t.lastError = e.detail;
    t.restoreProblem = undefined;
  }
}

function applyRedeploy(t: TargetRecord, e: JournalEvent): void {
  const afterRestore = e.purpose === 'restore';
  if (e.outcome === 'ok') {
    if (afterRestore) t.restoreRedeployed = true;
    else t.redeployed = true;
  } else if (e.outcome === 'failed') {
    if (afterRestore) t.restoreRedeployed = false;
    else t.verified = undefined;
    t.lastError = e.detail;
  }
}

function applyRestore(r: RotationState, t: TargetRecord, e: JournalEvent): void {
  if (e.outcome === 'started') return;
  if (e.outcome === 'ok') {
    t.restored = true;
    t.restoreRedeployed = false;
    t.written = false;
    t.writeFailed = false;
    t.verified = undefined;
    t.redeployed = false;
    t.holds = e.fingerprint !== undefined ? e.fingerprint : t.info.old === 'unreadable' ? r.oldFingerprint : t.info.old;
    // lastError stays: the report still names what failed before the rollback. An earlier
    // restore attempt's problem does not: this restore ended it.
    if (t.restoreProblem) t.lastError = t.restoreProblem.before;
    t.restoreProblem = undefined;
  } else if (e.outcome === 'failed') {
    t.holds = 'unknown';
    restoreFailed(t, e.detail);
  } else if (e.outcome === 'skipped') {
    // Not attempted (the old value is not known): what it holds is unchanged.
    restoreFailed(t, e.detail);
  }
}

function restoreFailed(t: TargetRecord, detail: string | undefined): void {
  t.restoreProblem ??= { before: t.lastError };
  t.lastError = detail;
}

/** Rebuilds every rotation of an environment from its journal, oldest first. */
export function replay(events: JournalEvent[]): RotationState[] {
  const rotations = new Map<string, RotationState>();
  for (const e of events) {
    if (e.step === 'start') rotations.set(e.rotation, startState(e));
    const r = rotations.get(e.rotation);
    if (r) apply(r, e);
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

/** Every rotation of the environment, replayed from its journal. */
export async function rotationsOf(state: StateRef, env: string): Promise<RotationState[]> {
  return replay(await readJournal(state, env));
}

/** The latest rotation of the environment, if any. */
export async function latestRotation(state: StateRef, env: string): Promise<RotationState | undefined> {
  const all = await rotationsOf(state, env);
  return all[all.length - 1];
}

/** May this target hold the new key (or anything but what it held before)? Then a rollback restores it. */
export function mayHoldNew(r: RotationState, t: TargetRecord): boolean {
  if (t.restored) return false;
  // A write was started since the last restore: restored (idempotent), whatever a read shows. A read
  // shows what consumers get, not every trace of the write: AWS Secrets Manager keeps the new key
  // staged as AWSPENDING while AWSCURRENT still reads the old one (found by kill-points.test.ts).
  if (t.touched || t.written || t.writeFailed) return true;
  if (t.holds !== 'unknown') return t.holds !== t.info.old;
  // Unreadable and no trace of a write: a v1 journal could not record a write in flight.
  return r.legacy && r.events.some((e) => e.step === 'write' || e.step === 'live-check');
}

/** Did this rotation (possibly) change any target yet? */
export function anythingWritten(r: RotationState): boolean {
  return [...r.targets.values()].some((t) => t.touched || t.written || mayHoldNew(r, t));
}

import { currentKey, type RotationState } from '../machine/state.ts';

/** A key whose use `keyrot usage` shows: never its value, only what the journal records. */
export interface WatchedKey {
  role: 'current' | 'awaiting-revocation' | 'retired';
  hint: string | null;
  fingerprint: string;
  /** The Admin API's key id when the journal records it (minted by keyrot, or found at rotation). */
  keyId: string | null;
  /** An `alsoRevoke` key (drift, an earlier rotation's old key): why it was retired with the old key. */
  why?: string;
  /** When every target switched away from it (ms): any use after that is not keyrot's fleet. */
  retiredAt?: number;
}

/**
 * The environment's keys over the window, from its journal: the current key (the last rotation
 * that got every target verified) and every key a rotation retired since `from` (ms), still
 * awaiting revocation or revoked: its old key, then the keys it retired along with it
 * (`alsoRevoke`: drift, an earlier rotation's old key still awaiting revocation). A key id comes
 * from the rotation that minted the key or the one that retired it (`oldKeyId`); keyrot never
 * stores more than the id, hint and fingerprint.
 */
export function watchedKeys(rotations: RotationState[], from: number): WatchedKey[] {
  const minted = new Map<string, string>();
  for (const r of rotations) if (r.newFingerprint && r.minted?.keyId) minted.set(r.newFingerprint, r.minted.keyId);
  const out: WatchedKey[] = [];
  const cur = currentKey(rotations);
  if (cur) out.push({ role: 'current', hint: cur.hint, fingerprint: cur.fingerprint, keyId: minted.get(cur.fingerprint) ?? null });
  const listed = (fp: string) => out.some((k) => k.fingerprint === fp);
  for (const r of [...rotations].reverse()) {
    if (r.outcome !== 'awaiting-revocation' && r.outcome !== 'completed') continue;
    const retiredAt = Date.parse(r.events.find((e) => e.step === 'verified-all')?.at ?? r.endedAt ?? r.startedAt);
    if (retiredAt < from) continue;
    const role = r.outcome === 'completed' ? 'retired' : 'awaiting-revocation';
    if (r.oldFingerprint && !listed(r.oldFingerprint)) {
      out.push({ role, hint: r.oldHint, fingerprint: r.oldFingerprint, keyId: r.oldKeyId ?? minted.get(r.oldFingerprint) ?? null, retiredAt });
    }
    for (const a of r.alsoRevoke) {
      if (!listed(a.fingerprint)) out.push({ role, hint: a.hint, fingerprint: a.fingerprint, keyId: minted.get(a.fingerprint) ?? null, why: a.why, retiredAt });
    }
  }
  return out;
}

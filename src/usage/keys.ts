import { currentKey, type RotationState } from '../machine/state.ts';

/** A key whose use `keyrot usage` shows: never its value, only what the journal records. */
export interface WatchedKey {
  role: 'current' | 'awaiting-revocation' | 'retired';
  hint: string | null;
  fingerprint: string;
  /** The Admin API's key id when the journal records it (minted by keyrot, or found at rotation). */
  keyId: string | null;
}

/**
 * The environment's keys over the window, from its journal: the current key (the last rotation
 * that got every target verified) and every old key a rotation retired since `from` (ms), still
 * awaiting revocation or revoked. A key id comes from the rotation that minted the key or the one
 * that retired it (`oldKeyId`); keyrot never stores more than the id, hint and fingerprint.
 */
export function watchedKeys(rotations: RotationState[], from: number): WatchedKey[] {
  const minted = new Map<string, string>();
  for (const r of rotations) if (r.newFingerprint && r.minted?.keyId) minted.set(r.newFingerprint, r.minted.keyId);
  const out: WatchedKey[] = [];
  const cur = currentKey(rotations);
  if (cur) out.push({ role: 'current', hint: cur.hint, fingerprint: cur.fingerprint, keyId: minted.get(cur.fingerprint) ?? null });
  for (const r of [...rotations].reverse()) {
    if (r.outcome !== 'awaiting-revocation' && r.outcome !== 'completed') continue;
    if (!r.oldFingerprint || out.some((k) => k.fingerprint === r.oldFingerprint)) continue;
    const switched = Date.parse(r.events.find((e) => e.step === 'verified-all')?.at ?? r.endedAt ?? r.startedAt);
    if (switched < from) continue;
    out.push({
      role: r.outcome === 'completed' ? 'retired' : 'awaiting-revocation',
      hint: r.oldHint,
      fingerprint: r.oldFingerprint,
      keyId: r.oldKeyId ?? minted.get(r.oldFingerprint) ?? null,
    });
  }
  return out;
}

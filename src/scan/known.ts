import { readJournal, type JournalEvent } from '../state/journal.ts';
import { replay, type RotationState } from '../machine/state.ts';
import type { StateStore } from '../state/store.ts';

/**
 * The keys keyrot knows by fingerprint, from the journals of every environment:
 * - retired: the old key of a rotation that went through (or is under way). Found anywhere, it is
 *   a leak of a key that should be dead: "a retired key (rotation X of env Y)".
 * - current: the key an environment's targets hold now (the new key of its last successful
 *   rotation, or the old key of a rotation that failed or was rolled back).
 */
export interface KnownKey {
  fingerprint: string;
  status: 'retired' | 'current';
  env: string;
  rotation: string;
  hint?: string;
}

export type KnownKeys = Map<string, KnownKey>;

const DONE = new Set(['awaiting-revocation', 'completed']);

/** Known keys from replayed rotations (any environments, oldest first per environment). */
export function knownKeysFromRotations(rotations: RotationState[]): KnownKeys {
  const retired: KnownKeys = new Map();
  const current: KnownKeys = new Map();
  const byEnv = new Map<string, RotationState[]>();
  for (const r of rotations) byEnv.set(r.env, [...(byEnv.get(r.env) ?? []), r]);
  for (const [env, list] of byEnv) {
    let cur: KnownKey | undefined;
    for (const r of list) {
      const keptOld = r.outcome === 'failed' || r.outcome === 'rolled-back';
      if (r.oldFingerprint && !keptOld) {
        retired.set(r.oldFingerprint, { fingerprint: r.oldFingerprint, status: 'retired', env, rotation: r.id, hint: r.oldHint ?? undefined });
      }
      if (r.newFingerprint && r.outcome && DONE.has(r.outcome)) {
        cur = { fingerprint: r.newFingerprint, status: 'current', env, rotation: r.id, hint: r.newHint };
      } else if (keptOld && r.oldFingerprint) {
        cur = { fingerprint: r.oldFingerprint, status: 'current', env, rotation: r.id, hint: r.oldHint ?? undefined };
      }
    }
    if (cur) current.set(cur.fingerprint, cur);
  }
  // A key retired anywhere is reported as retired, even if another environment still uses it.
  const out: KnownKeys = new Map(current);
  for (const [fp, k] of retired) out.set(fp, k);
  return out;
}

export function knownKeysFromEvents(events: JournalEvent[]): KnownKeys {
  return knownKeysFromRotations(replay(events));
}

/** Every environment's journal in the state store (none: an empty map). */
export async function loadKnownKeys(state: StateStore): Promise<KnownKeys> {
  const rotations: RotationState[] = [];
  for (const env of await state.journalEnvs()) rotations.push(...replay(await readJournal(state, env)));
  return knownKeysFromRotations(rotations);
}

export function describeKnown(k: KnownKey): string {
  return k.status === 'retired' ? `a retired key (rotation ${k.rotation} of env ${k.env})` : `the current key of env ${k.env}`;
}

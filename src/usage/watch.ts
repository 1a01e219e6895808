import { TargetError } from '../core/errors.ts';
import type { KeyIssuer as AdminApi, KeyUsage } from '../keys/openai-admin.ts';
import type { RotationState } from '../machine/state.ts';
import type { WatchConfig } from '../inventory/schema.ts';
import { watchedKeys, type WatchedKey } from './keys.ts';

const DAY = 86_400_000;
/** How far back a retired key is still watched: a key that should be idle stays suspect for a month. */
export const IDLE_WINDOW_DAYS = 30;

export const WATCH_REASONS = ['spike', 'retired-key-used', 'pending-key-used'] as const;
export type WatchReason = (typeof WATCH_REASONS)[number];

/** Something the watch found about one key: hint and fingerprint only, never a value. */
export interface UsageFinding {
  reason: WatchReason;
  key: { role: WatchedKey['role']; hint: string | null; fingerprint: string; keyId: string };
  /** spike: the current key's requests today (UTC) and the environment's daily average before. */
  today?: number;
  baselineDaily?: number;
  /** An idle key's last use (ms), after every target switched away from it at `retiredAt`. */
  lastUsedAt?: number;
  retiredAt?: number;
}

/** One poll of one environment: what was found, and the keys that could not be watched (why). */
export interface UsagePoll {
  findings: UsageFinding[];
  unwatched: Array<{ key: string; why: string }>;
}

/**
 * Polls the Admin API for the environment's keys (from its journal). An idle key (awaiting
 * revocation, or retired within IDLE_WINDOW_DAYS) is "used" when its `last_used_at` is later than
 * the moment every target switched away from it plus `marginMs` (requests in flight at the switch,
 * the same margin revocation waits for): the usage buckets are whole UTC days and cannot tell use
 * before the switch from use after it on the same day. A spike: the current key's requests today
 * above `factor` × the environment's daily average over the `baselineDays` before (every watched
 * key's requests summed, so a rotation does not reset the baseline), and at least `minRequests`.
 * Throws when the Admin API fails (the watch is then down); a key gone from the project (revoked)
 * is not used.
 */
export async function pollUsage(api: AdminApi, rotations: RotationState[], cfg: WatchConfig, marginMs: number, now: number): Promise<UsagePoll> {
  const keys = watchedKeys(rotations, now - IDLE_WINDOW_DAYS * DAY);
  const poll: UsagePoll = { findings: [], unwatched: [] };
  const today = Math.floor(now / DAY);
  const firstDay = (today - cfg.baselineDays) * DAY;
  let baseline = 0;
  let current: { key: UsageFinding['key']; today: number } | undefined;
  for (const k of keys) {
    const keyId = await keyIdOf(api, k, poll);
    if (!keyId) continue;
    const key = { role: k.role, hint: k.hint, fingerprint: k.fingerprint, keyId };
    if (k.role !== 'current') {
      const used = await idleUse(api, keyId, (k.retiredAt ?? now) + marginMs);
      if (used === 'gone') continue;
      if (used !== null) poll.findings.push({ reason: k.role === 'retired' ? 'retired-key-used' : 'pending-key-used', key, lastUsedAt: used, retiredAt: k.retiredAt });
    }
    const usage = await api.usage(keyId, (now - firstDay) / DAY, now);
    baseline += requestsBefore(usage, today);
    if (k.role === 'current') current = { key, today: requestsOn(usage, today) };
  }
  if (current) {
    const baselineDaily = baseline / cfg.baselineDays;
    if (current.today >= cfg.minRequests && current.today > cfg.factor * baselineDaily) {
      poll.findings.push({ reason: 'spike', key: current.key, today: current.today, baselineDaily });
    }
  }
  return poll;
}

/** The key's Admin API id: from the journal, else found by its hint; null (and why) when not. */
async function keyIdOf(api: AdminApi, k: WatchedKey, poll: UsagePoll): Promise<string | null> {
  if (k.keyId) return k.keyId;
  const label = `${k.hint ?? '(no hint)'} (${k.fingerprint})`;
  if (!k.hint) {
    poll.unwatched.push({ key: label, why: 'keyrot did not mint it and its journal records no hint to find it by' });
    return null;
  }
  const found = await api.locate(k.hint);
  if (found.found) return found.keyId;
  // A retired key no longer in the project was revoked: nothing to watch.
  if (k.role !== 'retired') poll.unwatched.push({ key: label, why: found.reason });
  return null;
}

/** The key's last use when it is later than `after`; null when not; 'gone' when it was deleted. */
async function idleUse(api: AdminApi, keyId: string, after: number): Promise<number | 'gone' | null> {
  try {
    const last = await api.lastUsedAt(keyId);
    return last !== null && last > after ? last : null;
  } catch (err) {
    if (err instanceof TargetError && err.kind === 'not-found') return 'gone';
    throw err;
  }
}

function requestsOn(u: KeyUsage, day: number): number {
  return u.buckets.filter((b) => Math.floor(b.start / DAY) === day).reduce((n, b) => n + b.requests, 0);
}

function requestsBefore(u: KeyUsage, day: number): number {
  return u.buckets.filter((b) => Math.floor(b.start / DAY) < day).reduce((n, b) => n + b.requests, 0);
}

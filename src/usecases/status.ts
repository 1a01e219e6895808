import { readAudit, type AuditReadResult } from '../state/audit-log.ts';
import { readJournal, type AlsoRevoke } from '../state/journal.ts';
import { currentKey, latestStanding, replay, type RotationState } from '../machine/state.ts';
import { scheduleInfo } from '../scheduler/scheduler.ts';
import type { Environment, Inventory } from '../inventory/load.ts';
import type { StateStore } from '../state/store.ts';

/**
 * What keyrot's own state says about each environment: no provider is contacted. `keyrot status`
 * prints it, the daemon's /metrics and `keyrot report` are built from it.
 */
export interface EnvStatus {
  env: string;
  key: { hint: string | null; fingerprint: string; since: string; ageDays: number } | null;
  lastRotation: { id: string; outcome: string; mode: string; startedAt: string; endedAt?: string } | null;
  pendingRevocation: { rotation: string; hint: string | null; fingerprint: string | null; since: string; also: AlsoRevoke[] } | null;
  interrupted: string | null;
  /** `overdue`: the schedule has fired since the key was rotated in (older than the schedule's period). */
  schedule: { cron: string; timezone: string; nextRun: string | null; overdue: boolean } | null;
  lastVerify: { at: string; ok: boolean; drift: boolean } | null;
  sharedWith: string[];
  lock: { pid: number; host: string; at: string; stale: boolean } | null;
}

async function scheduleStatus(cron: string, timezone: string, rotatedAt: number | null, now: number): Promise<NonNullable<EnvStatus['schedule']>> {
  const info = await scheduleInfo(cron, timezone, now);
  return {
    cron,
    timezone,
    nextRun: info.nextRun ? new Date(info.nextRun).toISOString() : null,
    overdue: rotatedAt !== null && info.firstFiringAfter(rotatedAt) <= now,
  };
}

export interface StateStatus {
  environments: EnvStatus[];
  /** Every environment's rotations, replayed from its journal. */
  rotations: Map<string, RotationState[]>;
  audit: AuditReadResult;
}

/** Every environment of the inventory, from the state store, as of `now` (ms). */
export async function readStatus(inventory: Inventory, state: StateStore, now: number): Promise<StateStatus> {
  const audit = await readAudit(state);
  const all: EnvStatus[] = [];
  const rotationsByEnv = new Map<string, RotationState[]>();
  for (const env of inventory.environments.values()) {
    const rotations = replay(await readJournal(state, env.name));
    rotationsByEnv.set(env.name, rotations);
    all.push(await environmentStatus(env, rotations, audit, state, now));
  }
  // The seed: "use separate keys for different environments".
  for (const s of all) {
    if (!s.key) continue;
    s.sharedWith = all.filter((o) => o !== s && o.key?.fingerprint === s.key!.fingerprint).map((o) => o.env);
  }
  return { environments: all, rotations: rotationsByEnv, audit };
}

async function environmentStatus(env: Environment, rotations: RotationState[], audit: AuditReadResult, state: StateStore, now: number): Promise<EnvStatus> {
  const name = env.name;
  const last = rotations[rotations.length - 1];
  const verifyEntry = [...audit.entries].reverse().find((e) => e.env === name && e.event.startsWith('verify.'));
  const lock = await state.readLock(name);
  const cur = currentKey(rotations);
  const standing = latestStanding(rotations);
  let key: EnvStatus['key'] = cur ? { hint: cur.hint, fingerprint: cur.fingerprint, since: new Date(cur.since).toISOString(), ageDays: (now - cur.since) / 86_400_000 } : null;
  const vKey = verifyEntry?.details?.key as string | undefined;
  if (!key && vKey && verifyEntry) key = { hint: null, fingerprint: vKey, since: verifyEntry.at, ageDays: NaN };
  return {
    env: name,
    key,
    lastRotation: last ? { id: last.id, outcome: last.outcome ?? 'interrupted', mode: last.mode, startedAt: last.startedAt, endedAt: last.endedAt } : null,
    // A later failed or rolled-back rotation leaves an earlier pending revocation standing.
    pendingRevocation:
      standing?.outcome === 'awaiting-revocation'
        ? { rotation: standing.id, hint: standing.oldHint, fingerprint: standing.oldFingerprint, since: standing.endedAt ?? standing.startedAt, also: standing.alsoRevoke }
        : null,
    interrupted: last && last.outcome === undefined ? last.id : null,
    schedule: env.schedule ? await scheduleStatus(env.schedule.cron, env.schedule.timezone, cur?.since ?? null, now) : null,
    lastVerify: verifyEntry ? { at: verifyEntry.at, ok: verifyEntry.event === 'verify.ok', drift: Boolean(verifyEntry.details?.drift) } : null,
    sharedWith: [],
    lock: lock ? { pid: lock.pid, host: lock.host, at: lock.at, stale: state.isStale(lock) } : null,
  };
}

import type { Inventory } from '../inventory/load.ts';
import type { RotationState } from '../machine/state.ts';
import type { StateStore } from '../state/store.ts';
import { readStatus, type EnvStatus } from '../usecases/status.ts';
import { scheduleInfo } from '../scheduler/scheduler.ts';

/** One rotation, as the report shows it: when, how, how it ended. */
export interface RotationRow {
  id: string;
  mode: 'rotate' | 'emergency';
  startedAt: string;
  endedAt: string | null;
  /** `interrupted` while it has no end. */
  outcome: string;
  allVerified: boolean;
  revokedAt: string | null;
  targets: number;
}

export interface EnvironmentReport {
  env: string;
  key: EnvStatus['key'];
  /** The schedule and its period in days (the key's age is measured against it). */
  schedule: (NonNullable<EnvStatus['schedule']> & { periodDays: number }) | null;
  pendingRevocation: EnvStatus['pendingRevocation'];
  interrupted: string | null;
  lastVerify: EnvStatus['lastVerify'];
  sharedWith: string[];
  rotations: RotationRow[];
}

export interface ReportData {
  generatedAt: string;
  state: string;
  audit: { intact: boolean; entries: number; unauthenticated: number; problems: Array<{ line: number; check: string; problem: string }>; anchored: boolean };
  environments: EnvironmentReport[];
}

/**
 * Everything the report shows, from keyrot's own state (journal and audit log, verified): no
 * provider is contacted, and only hints and fingerprints of keys appear.
 */
export async function reportData(inventory: Inventory, state: StateStore, now: number): Promise<ReportData> {
  const status = await readStatus(inventory, state, now);
  const environments: EnvironmentReport[] = [];
  for (const s of status.environments) {
    const env = inventory.environments.get(s.env)!;
    const period = env.schedule ? (await scheduleInfo(env.schedule.cron, env.schedule.timezone, now)).periodMs : null;
    environments.push({
      env: s.env,
      key: s.key,
      schedule: s.schedule && period !== null ? { ...s.schedule, periodDays: period / 86_400_000 } : null,
      pendingRevocation: s.pendingRevocation,
      interrupted: s.interrupted,
      lastVerify: s.lastVerify,
      sharedWith: s.sharedWith,
      rotations: (status.rotations.get(s.env) ?? []).map(rotationRow),
    });
  }
  const a = status.audit;
  return {
    generatedAt: new Date(now).toISOString(),
    state: state.where,
    audit: { intact: a.broken.length === 0, entries: a.entries.length, unauthenticated: a.legacy.length, problems: a.broken, anchored: a.anchor !== null },
    environments,
  };
}

function rotationRow(r: RotationState): RotationRow {
  return {
    id: r.id,
    mode: r.mode,
    startedAt: r.startedAt,
    endedAt: r.endedAt ?? null,
    outcome: r.outcome ?? 'interrupted',
    allVerified: r.allVerified,
    revokedAt: r.revokedAt ?? null,
    targets: r.targets.size,
  };
}

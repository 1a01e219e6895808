import { Counter, Gauge, Registry } from 'prom-client';
import type { TargetError, TargetErrorKind } from '../core/errors.ts';
import { END_OUTCOMES } from '../state/journal.ts';
import type { Inventory } from '../inventory/load.ts';
import type { StateStatus } from '../usecases/status.ts';
import { alertCounts } from '../usage/alert.ts';
import { WATCH_REASONS } from '../usage/watch.ts';

/**
 * keyrot's Prometheus metrics. Everything about an environment is DERIVED at scrape time from the
 * journal and audit log (`readStatus`; usage alerts are audit entries): a restarted daemon reports
 * the same figures, and two replicas sharing cluster state agree. Only the provider error counter,
 * the scheduler's tick time and whether the usage watch is up are the daemon process's own. No
 * label ever carries a key value, hint or fingerprint.
 * Naming follows https://prometheus.io/docs/practices/naming/ (base units: seconds; `_total` for
 * counters; timestamps as `_timestamp_seconds`).
 */
export const METRIC_NAMES = [
  'keyrot_key_age_seconds',
  'keyrot_key_rotated_timestamp_seconds',
  'keyrot_last_rotation_start_timestamp_seconds',
  'keyrot_last_rotation_end_timestamp_seconds',
  'keyrot_last_rotation_outcome',
  'keyrot_rotation_interrupted',
  'keyrot_revocation_pending',
  'keyrot_revocation_pending_age_seconds',
  'keyrot_schedule_overdue',
  'keyrot_next_run_timestamp_seconds',
  'keyrot_last_verify_timestamp_seconds',
  'keyrot_last_verify_ok',
  'keyrot_drift',
  'keyrot_key_shared',
  'keyrot_targets',
  'keyrot_target_verified',
  'keyrot_rotations_total',
  'keyrot_provider_errors_total',
  'keyrot_audit_intact',
  'keyrot_state_reachable',
  'keyrot_scheduler_last_tick_timestamp_seconds',
  'keyrot_usage_watch_up',
  'keyrot_usage_alerts_total',
] as const;

export type ProviderErrorClass = 'throttled' | 'auth' | '5xx' | 'timeout' | 'other';

const CLASS_OF: Record<TargetErrorKind, ProviderErrorClass> = {
  'rate-limited': 'throttled',
  auth: 'auth',
  permission: 'auth',
  unavailable: '5xx',
  timeout: 'timeout',
  'not-found': 'other',
  conflict: 'other',
  invalid: 'other',
  unsupported: 'other',
  mismatch: 'other',
};

/** The daemon process's own figures: provider errors since start, and the last scheduler tick. */
export class DaemonMetrics {
  readonly providerErrors = new Map<string, number>();
  lastTick: number | null = null;
  /** Per watched environment: could its usage watch read the Admin API at its last poll? */
  readonly watchUp = new Map<string, boolean>();

  /** For EngineOptions.onProviderError. */
  countProviderError = (targetType: string, error: TargetError): void => {
    const key = `${targetType}\u0000${CLASS_OF[error.kind] ?? 'other'}`;
    this.providerErrors.set(key, (this.providerErrors.get(key) ?? 0) + 1);
  };
}

const seconds = (iso: string | undefined | null) => (iso ? Date.parse(iso) / 1000 : undefined);

/** A registry holding the figures of `status` (null: the state store could not be read). */
export function metricsRegistry(inventory: Inventory, status: StateStatus | null, daemon: DaemonMetrics, now: number): Registry {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = ['env']) => new Gauge({ name, help, labelNames, registers: [registry] });
  gauge('keyrot_state_reachable', 'The state store (journal, audit log) could be read at this scrape.', []).set(status ? 1 : 0);
  const tick = gauge('keyrot_scheduler_last_tick_timestamp_seconds', 'When the scheduler last checked what is due (Unix time).', []);
  if (daemon.lastTick !== null) tick.set(daemon.lastTick / 1000);
  const errors = new Counter({ name: 'keyrot_provider_errors_total', help: 'Failed provider calls since the daemon started (retried ones included), by target type (openai-admin: the OpenAI Admin API) and class.', labelNames: ['provider', 'class'], registers: [registry] });
  for (const [key, n] of daemon.providerErrors) {
    const [provider, cls] = key.split('\u0000');
    errors.inc({ provider: provider!, class: cls! }, n);
  }
  const targets = gauge('keyrot_targets', 'Targets of the environment in the inventory, by target type.', ['env', 'type']);
  for (const env of inventory.environments.values()) {
    const byType = new Map<string, number>();
    for (const t of env.targets) byType.set(t.type, (byType.get(t.type) ?? 0) + 1);
    for (const [type, n] of byType) targets.set({ env: env.name, type }, n);
  }
  const up = gauge('keyrot_usage_watch_up', 'The usage watch of the environment could read the OpenAI Admin API at its last poll (0: not running, see the log).');
  for (const [env, ok] of daemon.watchUp) up.set({ env }, ok ? 1 : 0);
  usageAlertMetric(registry, inventory, status);
  if (status) environmentMetrics(registry, gauge, status, now);
  return registry;
}

/** Usage alerts from the audit log (one per environment, key, reason and day), 0 for a watched environment without any. */
function usageAlertMetric(registry: Registry, inventory: Inventory, status: StateStatus | null): void {
  const alerts = new Counter({ name: 'keyrot_usage_alerts_total', help: 'Usage alerts raised by the watch, by reason (spike, retired-key-used, pending-key-used).', labelNames: ['env', 'reason'], registers: [registry] });
  if (!status) return;
  for (const env of inventory.environments.values()) if (env.watch) for (const reason of WATCH_REASONS) alerts.inc({ env: env.name, reason }, 0);
  for (const [env, byReason] of alertCounts(status.audit.entries)) for (const [reason, n] of byReason) alerts.inc({ env, reason }, n);
}

type GaugeFactory = (name: string, help: string, labelNames?: string[]) => Gauge;

function environmentMetrics(registry: Registry, gauge: GaugeFactory, status: StateStatus, now: number): void {
  gauge('keyrot_audit_intact', 'Every audit entry and journal line verified (MAC, hash chain, anchor).', []).set(status.audit.broken.length ? 0 : 1);
  const age = gauge('keyrot_key_age_seconds', 'Age of the key in place, since the rotation that verified it everywhere.');
  const rotatedAt = gauge('keyrot_key_rotated_timestamp_seconds', 'When the key in place was rotated in (Unix time).');
  const started = gauge('keyrot_last_rotation_start_timestamp_seconds', 'Start of the last rotation (Unix time).');
  const ended = gauge('keyrot_last_rotation_end_timestamp_seconds', 'End of the last rotation (Unix time); absent while it runs or is interrupted.');
  const outcome = gauge('keyrot_last_rotation_outcome', 'Outcome of the last rotation: 1 for its outcome, 0 for the others.', ['env', 'outcome']);
  const interrupted = gauge('keyrot_rotation_interrupted', 'The last rotation was interrupted and awaits keyrot resume.');
  const pending = gauge('keyrot_revocation_pending', 'A rotation awaits revocation of the old key.');
  const pendingAge = gauge('keyrot_revocation_pending_age_seconds', 'How long the revocation has been awaited.');
  const overdue = gauge('keyrot_schedule_overdue', 'The schedule fired since the key was rotated in: a scheduled rotation did not happen.');
  const nextRun = gauge('keyrot_next_run_timestamp_seconds', 'Next scheduled run (Unix time).');
  const verifyAt = gauge('keyrot_last_verify_timestamp_seconds', 'Last keyrot verify of the environment (Unix time).');
  const verifyOk = gauge('keyrot_last_verify_ok', 'The last keyrot verify found no problem.');
  const drift = gauge('keyrot_drift', 'The last keyrot verify saw targets holding different keys.');
  const shared = gauge('keyrot_key_shared', 'Another environment holds the same key.');
  for (const s of status.environments) {
    const env = { env: s.env };
    if (s.key && Number.isFinite(s.key.ageDays)) {
      age.set(env, Math.round(s.key.ageDays * 86_400));
      rotatedAt.set(env, seconds(s.key.since)!);
    }
    if (s.lastRotation) {
      started.set(env, seconds(s.lastRotation.startedAt)!);
      if (s.lastRotation.endedAt) ended.set(env, seconds(s.lastRotation.endedAt)!);
      for (const o of [...END_OUTCOMES, 'interrupted']) outcome.set({ env: s.env, outcome: o }, s.lastRotation.outcome === o ? 1 : 0);
    }
    interrupted.set(env, s.interrupted ? 1 : 0);
    pending.set(env, s.pendingRevocation ? 1 : 0);
    if (s.pendingRevocation) pendingAge.set(env, Math.max(0, Math.round((now - Date.parse(s.pendingRevocation.since)) / 1000)));
    if (s.schedule) {
      overdue.set(env, s.schedule.overdue ? 1 : 0);
      if (s.schedule.nextRun) nextRun.set(env, seconds(s.schedule.nextRun)!);
    }
    if (s.lastVerify) {
      verifyAt.set(env, seconds(s.lastVerify.at)!);
      verifyOk.set(env, s.lastVerify.ok ? 1 : 0);
      drift.set(env, s.lastVerify.drift ? 1 : 0);
    }
    shared.set(env, s.sharedWith.length ? 1 : 0);
  }
  rotationMetrics(registry, gauge, status);
}

/** Per target of the last rotation, and rotations by outcome over the whole journal. */
function rotationMetrics(registry: Registry, gauge: GaugeFactory, status: StateStatus): void {
  const verified = gauge('keyrot_target_verified', 'The target was verified to hold the new key in the last rotation.', ['env', 'target', 'type']);
  const total = new Counter({ name: 'keyrot_rotations_total', help: 'Rotations in the journal, by outcome and mode.', labelNames: ['env', 'outcome', 'mode'], registers: [registry] });
  for (const [env, rotations] of status.rotations) {
    for (const r of rotations) total.inc({ env, outcome: r.outcome ?? 'interrupted', mode: r.mode });
    const last = rotations[rotations.length - 1];
    for (const [name, t] of last?.targets ?? []) verified.set({ env, target: name, type: t.info.type }, t.verified ? 1 : 0);
  }
}

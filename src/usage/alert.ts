import type { AuditEntry } from '../state/audit-log.ts';
import { keyrotCommand, type CommandFlags } from '../render/command.ts';
import { redactValue } from '../core/redact.ts';
import type { WatchConfig } from '../inventory/schema.ts';
import type { UsageFinding, WatchReason } from './watch.ts';

/** The audit event of a usage alert: the record of "already alerted" and of the alerts metric. */
export const USAGE_ALERT_EVENT = 'usage.alert';

/** The webhook body of a usage alert: Slack-compatible `text` plus fields; hints and fingerprints only. */
export interface UsageAlert {
  text: string;
  event: 'usage-alert';
  reason: WatchReason;
  env: string;
  key: UsageFinding['key'];
  /** The UTC day the alert is for: one alert per environment, key, reason and day. */
  day: string;
  today?: number;
  baselineDaily?: number;
  factor?: number;
  lastUsedAt?: string;
  retiredAt?: string;
  /** What to run. */
  action: string;
  at: string;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

export function usageAlert(env: string, f: UsageFinding, cfg: WatchConfig, now: number, flags: CommandFlags): UsageAlert {
  const action = keyrotCommand(flags, 'emergency', '-e', env);
  const key = `${f.key.hint ?? '(no hint)'} (${f.key.fingerprint})`;
  const used = `was used at ${iso(f.lastUsedAt)}, after every target had switched away from it (${iso(f.retiredAt)})`;
  const text =
    f.reason === 'spike'
      ? `keyrot: the key ${key} of ${env} made ${f.today} requests today (UTC), above ${cfg.factor}× its daily average of ${f.baselineDaily!.toFixed(1)} over the ${cfg.baselineDays} days before. If this is not your own traffic the key may have leaked: run \`${action}\`.`
      : f.reason === 'retired-key-used'
        ? `keyrot: the retired key ${key} of ${env} ${used}, and the OpenAI API still lists it: it was not revoked, and someone outside the inventory holds it. Revoke it now in the OpenAI dashboard (API keys), and run \`${action}\`: the current key may have leaked the same way.`
        : `keyrot: the old key ${key} of ${env}, awaiting revocation, ${used}: someone outside the inventory holds it. Run \`${action}\` (a new key everywhere now, this one carried into its revocation), then look for where it leaked (\`${keyrotCommand(flags, 'scan')}\`).`;
  return redactValue({
    text,
    event: 'usage-alert' as const,
    reason: f.reason,
    env,
    key: f.key,
    day: utcDay(now),
    ...(f.reason === 'spike' ? { today: f.today, baselineDaily: f.baselineDaily, factor: cfg.factor } : { lastUsedAt: iso(f.lastUsedAt), retiredAt: iso(f.retiredAt) }),
    action,
    at: new Date(now).toISOString(),
  });
}

/** The audit entry recording an alert (`delivered: false`: the webhook failed, the next poll sends it again). */
export function alertAuditEntry(a: UsageAlert, delivered: boolean | null): { event: string; env: string; details: Record<string, unknown> } {
  return { event: USAGE_ALERT_EVENT, env: a.env, details: { reason: a.reason, key: a.key.fingerprint, hint: a.key.hint, day: a.day, delivered } };
}

const alertId = (e: AuditEntry) => `${e.env}\u0000${String(e.details?.reason)}\u0000${String(e.details?.key)}\u0000${String(e.details?.day)}`;

/** Was this alert already raised (and delivered, or there was no webhook to deliver it to)? */
export function alreadyAlerted(entries: AuditEntry[], a: UsageAlert): boolean {
  const id = `${a.env}\u0000${a.reason}\u0000${a.key.fingerprint}\u0000${a.day}`;
  return entries.some((e) => e.event === USAGE_ALERT_EVENT && e.details?.delivered !== false && alertId(e) === id);
}

/** Alerts raised per environment and reason: each (key, reason, day) once, however many retries it took. */
export function alertCounts(entries: AuditEntry[]): Map<string, Map<WatchReason, number>> {
  const seen = new Set<string>();
  const out = new Map<string, Map<WatchReason, number>>();
  for (const e of entries) {
    if (e.event !== USAGE_ALERT_EVENT || !e.env || seen.has(alertId(e))) continue;
    seen.add(alertId(e));
    const byReason = out.get(e.env) ?? new Map<WatchReason, number>();
    const reason = e.details?.reason as WatchReason;
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
    out.set(e.env, byReason);
  }
  return out;
}

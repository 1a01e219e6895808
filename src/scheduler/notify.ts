import type { Clock } from '../runtime/clock.ts';
import { httpJson } from '../runtime/http.ts';
import { withRetry } from '../runtime/retry.ts';
import { toTargetError } from '../core/errors.ts';
import type { NextStep, RotationReport } from '../machine/outcome.ts';
import { commandLine, type CommandFlags } from '../render/command.ts';
import { renderNotices } from '../render/notices.ts';
import { redactValue } from '../core/redact.ts';
import { resolveCredential, type CredentialRef } from '../inventory/credentials.ts';
import type { Logger } from '../runtime/logger.ts';
import { registerSensitive } from '../core/secret.ts';
import { endpointProblem, hostOf } from '../inventory/endpoints.ts';
import type { UsageAlert } from '../usage/alert.ts';

export const NOTIFY_EVENTS = ['awaiting-revocation', 'success', 'failure', 'emergency'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/**
 * The webhook payload: Slack-compatible `text` plus structured fields. Hints and fingerprints
 * only: it never carries a key (and passes through the redactor anyway).
 */
export interface Notification {
  text: string;
  event: NotifyEvent;
  env: string;
  rotation?: string;
  outcome?: string;
  oldKey?: { hint: string; fingerprint: string } | null;
  newKey?: { hint: string; fingerprint: string } | null;
  targets?: Array<{ name: string; holds: string; error?: string }>;
  /** What a person should do now. */
  action?: string;
  /** Everything the rotation reported, in words (the same lines the CLI prints). */
  messages?: string[];
  /**
   * The audit log's head when this was sent: kept by the receiver, it lets `keyrot history
   * --anchor SEQ:HEAD` prove later that the log was not cut short or rewritten since.
   */
  audit?: { seq: number; head: string } | null;
  at: string;
}

export function notificationFor(
  event: NotifyEvent,
  rep: RotationReport,
  now: number,
  audit?: { seq: number; head: string } | null,
  flags: CommandFlags = {},
): Notification {
  const failed = rep.targets.filter((t) => t.error).map((t) => t.name);
  const steps = nextSteps(rep);
  const run = steps.map((s) => `\`${commandLine(s, flags)}\``).join(' or ');
  const text =
    event === 'awaiting-revocation'
      ? `keyrot: every target of ${rep.env} holds the new key ${rep.new?.hint ?? ''}. Revoke the old key ${rep.old?.hint ?? ''} (${rep.old?.fingerprint ?? '?'}), then run ${run}.`
      : event === 'success'
        ? `keyrot: rotation of ${rep.env} complete; the old key ${rep.old?.hint ?? ''} is revoked.`
        : event === 'emergency'
          ? `keyrot EMERGENCY: the key of ${rep.env} was rotated after a compromise (outcome: ${rep.outcome}). ${rep.outcome === 'awaiting-revocation' ? `Revoke ${rep.old?.hint ?? 'the old key'} NOW, then ${run}.` : ''}`
          : `keyrot: rotation of ${rep.env} FAILED (${rep.outcome})${failed.length ? ` at ${failed.join(', ')}` : ''}. ${rep.outcome === 'interrupted' ? `A person is needed: run ${run}.` : 'Every target is back on the old key; do not revoke it.'}`;
  return redactValue({
    text,
    event,
    env: rep.env,
    rotation: rep.rotation,
    outcome: rep.outcome,
    oldKey: rep.old ?? null,
    newKey: rep.new ?? null,
    targets: rep.targets.map((t) => ({ name: t.name, holds: t.holds, error: t.error })),
    action: steps.length ? steps.map((s) => commandLine(s, flags)).join(' | ') : undefined,
    messages: renderNotices(rep.notices, flags),
    audit: audit ?? null,
    at: new Date(now).toISOString(),
  });
}

/** The commands the report's notices ask a person to run, in order, without repeats. */
function nextSteps(rep: RotationReport): NextStep[] {
  const seen = new Set<string>();
  const out: NextStep[] = [];
  for (const n of rep.notices) {
    const steps = 'next' in n ? (Array.isArray(n.next) ? n.next : [n.next]) : [];
    for (const s of steps) {
      const k = commandLine(s);
      if (!seen.has(k)) seen.add(k), out.push(s);
    }
  }
  return out;
}

/** Which event a finished rotation reports, if any. */
export function eventFor(rep: RotationReport, mode: 'rotate' | 'emergency' | 'revoke'): NotifyEvent | undefined {
  if (mode === 'emergency') return 'emergency';
  if (rep.outcome === 'awaiting-revocation') return 'awaiting-revocation';
  if (rep.outcome === 'completed') return 'success';
  if (rep.outcome === 'failed' || rep.outcome === 'interrupted' || rep.outcome === 'refused') return 'failure';
  return undefined;
}

/**
 * POSTs the notification to `notify.webhook`, retried (3 attempts, backoff). A failed webhook
 * never fails the rotation: it is logged, and the return value says whether it was delivered.
 */
export async function sendNotification(
  webhook: CredentialRef | undefined,
  n: Notification | UsageAlert,
  opts: { baseDir: string; env: NodeJS.ProcessEnv; clock: Clock; logger: Logger; field?: string },
): Promise<boolean> {
  const field = opts.field ?? 'notify.webhook';
  if (!webhook) return false;
  let url: string;
  try {
    url = (await resolveCredential(webhook, opts.baseDir, opts.env)).reveal();
    // The whole URL is registered with the redactor; its path (and query) alone is the secret too,
    // and is what appears in messages (a network error names the URL without its query, a webhook
    // service may quote the path it was called on).
    try {
      const u = new URL(url);
      for (const part of [u.href, `${u.pathname}${u.search}`, u.pathname, u.search.slice(1)]) registerSensitive(part);
    } catch {
      /* not a URL: httpJson says so without quoting it */
    }
  } catch (err) {
    opts.logger.warn(`${field} ${webhook.raw}: ${toTargetError(err).message}; no notification sent`);
    return false;
  }
  // Checked at start for env:VAR (a usage error); a file: reference is only read now.
  const problem = endpointProblem(url, 'url', `the URL (host ${hostOf(url)})`);
  if (problem) {
    opts.logger.warn(`${field} ${webhook.raw}: ${problem}; no notification sent`);
    return false;
  }
  try {
    await withRetry(
      () => httpJson({ method: 'POST', url, body: n, timeoutMs: 10_000 }, { clock: opts.clock, provider: 'the notification webhook', endpointHint: `point ${field} at the webhook’s own URL` }),
      { clock: opts.clock, policy: { attempts: 3, baseMs: 1000, maxElapsedMs: 30_000 } },
    );
    return true;
  } catch (err) {
    // Only the host: a webhook's path is its secret (Slack, Teams).
    opts.logger.warn(`the notification webhook at ${hostOf(url)} failed: ${toTargetError(err).message}`);
    return false;
  }
}


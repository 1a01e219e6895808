import { randomBytes } from 'node:crypto';
import { appendAudit } from '../../state/audit-log.ts';
import { revoke } from '../../usecases/revoke.ts';
import { rotate } from '../../usecases/rotate.ts';
import { next, type RotationReport } from '../../machine/outcome.ts';
import { issuerFor } from '../../issuers/index.ts';
import { EXIT, ExitError, TargetError, toTargetError } from '../../core/errors.ts';
import type { Environment } from '../../inventory/load.ts';
import { OPENAI_KEYS_PAGE } from '../../keys/kinds.ts';
import type { Secret } from '../../core/secret.ts';
import {
  adminIssuer,
  commandContext,
  commandFlags,
  engineOptions,
  environment,
  keySourceResolved,
  notifyReport,
  obtainNewKey,
  refusalError,
  startChangingCommand,
  type CommandContext,
  type CommonFlags,
} from '../context.ts';
import { watchInterrupts } from '../interrupt.ts';
import { keyrotCommand as nextCommand } from '../../render/command.ts';
import { typedAnswer } from '../prompt.ts';
import { journalMark, whereThingsStand } from '../where-things-stand.ts';
import { bold, green, printRotationReport, yellow } from '../output.ts';
import { paused } from '../live-reporter.ts';
import { checkSource } from './rotate.ts';
import { billingLine, checkBilling, type BillingFinding } from '../../usage/billing.ts';

export type ChecklistState = 'done' | 'skipped' | 'operator' | 'failed';
export interface ChecklistItem {
  step: string;
  state: ChecklistState;
  detail: string;
}

/** What the emergency found besides the rotation itself. */
export interface EmergencyFindings {
  /** OpenAI already answers 401 to the old key (disabled or revoked before keyrot got there). */
  oldKeyDisabled: boolean;
  /** Why the new key was not live-checked (key.kind generic, key.verify: false); unset when it was. */
  liveSkipped?: string;
  usage?: { ok: true; days: number; requests: number; inputTokens: number; outputTokens: number; byModel: Record<string, number> } | { ok: false; why: string };
  scan?: { ok: true; leaks: number; locations: string[]; files: number } | { ok: false; why: string };
  /** The costs check (Admin API only); unset when key.admin is not configured. */
  billing?: BillingFinding;
}

/**
 * The emergency response checklist (the seed: "immediately revoke, generate a new key, update all
 * environments, review usage logs, check billing, audit your codebase"), each line marked done,
 * skipped (and why), failed, or left to the operator.
 */
export function emergencyChecklist(
  rep: RotationReport,
  revokedFirst: boolean,
  kind: 'openai' | 'generic',
  f: EmergencyFindings,
  flags: CommonFlags,
): ChecklistItem[] {
  const dashboard = kind === 'openai' ? OPENAI_KEYS_PAGE : "the issuer's console";
  const ok = rep.outcome === 'awaiting-revocation' || rep.outcome === 'completed';
  const verified = rep.targets.filter((t) => t.holds === 'new' && t.verifiedBy).length;
  const revoked = revokedFirst || rep.outcome === 'completed';
  const items: ChecklistItem[] = [
    {
      step: 'Revoke the compromised key',
      state: revoked || f.oldKeyDisabled ? 'done' : 'operator',
      detail: revoked
        ? `${rep.old?.hint ?? 'old key'} recorded as revoked${revokedFirst ? ' before the rotation' : ''}`
        : f.oldKeyDisabled
          ? `OpenAI already rejects ${rep.old?.hint ?? 'the old key'} (401): it was disabled or revoked before this rotation; record it with \`${nextCommand(flags, 'revoke', '-e', rep.env, '--yes')}\``
          : `revoke ${rep.old?.hint ?? 'the old key'} (${rep.old?.fingerprint ?? '?'})${(rep.alsoRevoke ?? []).map((a) => `, ${a.hint} (${a.fingerprint})`).join('')} in ${dashboard} NOW, then run \`${nextCommand(flags, 'revoke', '-e', rep.env)}\``,
    },
    {
      step: 'Generate a new key',
      state: rep.new ? 'done' : 'failed',
      detail: rep.new
        ? `${rep.new.hint} (${rep.new.fingerprint}), ${f.liveSkipped ? `not live-checked (${f.liveSkipped})` : 'live-checked before any write'}`
        : 'no new key was accepted',
    },
    {
      step: 'Update all environments',
      state: ok ? 'done' : 'failed',
      detail: ok ? `${verified} of ${rep.targets.length} targets verified holding the new key` : `rotation ${rep.outcome}: see the table above`,
    },
  ];
  const u = f.usage;
  items.push(
    !u
      ? { step: 'Review usage logs', state: 'skipped', detail: 'not checked' }
      : u.ok
        ? {
            step: 'Review usage logs',
            state: u.requests > 0 ? 'operator' : 'done',
            detail:
              u.requests > 0
                ? `the old key made ${u.requests} requests in the last ${u.days} days (${Object.entries(u.byModel)
                    .map(([m, n]) => `${m}: ${n}`)
                    .join(', ')}; ${u.inputTokens} input / ${u.outputTokens} output tokens): check they were yours in the OpenAI dashboard Usage page`
                : `no completions usage by the old key in the last ${u.days} days`,
          }
        : { step: 'Review usage logs', state: 'skipped', detail: `${u.why}: review the old key's usage in the OpenAI dashboard Usage page` },
  );
  items.push({ step: 'Check billing', ...billingLine(f.billing) });
  const sc = f.scan;
  items.push(
    !sc
      ? { step: 'Audit your codebase for the leaked key', state: 'skipped', detail: 'not scanned' }
      : sc.ok
        ? sc.leaks
          ? {
              step: 'Audit your codebase for the leaked key',
              state: 'operator',
              detail: `keyrot scan found ${sc.leaks} key(s) outside the inventory: ${sc.locations.slice(0, 5).join(', ')}${sc.locations.length > 5 ? ', …' : ''}; remove them (and from git history) and run \`${nextCommand(flags, 'scan', '--git')}\``,
            }
          : { step: 'Audit your codebase for the leaked key', state: 'done', detail: `keyrot scan: no key found in ${sc.files} files of the working tree outside the inventory's own dotenv/file targets (run \`${nextCommand(flags, 'scan', '--git')}\` for the history)` }
        : { step: 'Audit your codebase for the leaked key', state: 'skipped', detail: sc.why },
  );
  return items;
}

async function typedConfirmation(old: Secret | null, env: string, byAdmin?: string): Promise<boolean> {
  process.stderr.write(
    `\nREVOKE FIRST: the old key of "${env}" will be revoked BEFORE the new key is written.\n` +
      `Apps keep failing until every target holds the new key.\n` +
      `  key          ${old?.hint ?? '(no readable target holds it)'}\n  fingerprint  ${old?.fingerprint ?? '-'}\n` +
      (byAdmin ? `${byAdmin}.\n` : `Revoke it now in ${OPENAI_KEYS_PAGE}.\n`),
  );
  const answer = await typedAnswer(byAdmin ? 'Type REVOKE (in capitals) to go ahead; anything else aborts: ' : 'Type REVOKED (in capitals) once it is revoked; anything else aborts: ');
  return answer.trim() === (byAdmin ? 'REVOKE' : 'REVOKED');
}

export async function emergency(flags: CommonFlags & { newKey?: string; revokeFirst?: boolean; reason?: string }): Promise<number> {
  startChangingCommand([flags.newKey]);
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const source = checkSource(flags.newKey ?? env.keySource);
  keySourceResolved([source]);
  if (flags.revokeFirst && !flags.yes && !ctx.interactive) {
    throw new ExitError(EXIT.usage, '--revoke-first needs a typed confirmation on a terminal, or --yes once the old key is revoked');
  }
  // Emergency: no grace period, whatever the inventory says.
  ctx.inventory = { ...ctx.inventory, config: { ...ctx.inventory.config, revoke: { ...ctx.inventory.config.revoke, grace: 0 } } };
  const incident = `inc_${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}_${randomBytes(3).toString('hex')}`;
  await appendAudit(ctx.state, {
    event: 'incident.opened',
    env: env.name,
    details: { incident, reason: flags.reason ?? 'key compromised (no reason given)', revokeFirst: Boolean(flags.revokeFirst) },
  });
  const progress: Progress = { revokedFirst: false };
  const stopIfRequested = await interruptionHandling(ctx, env, incident, progress);
  const findings: EmergencyFindings = {
    oldKeyDisabled: false,
    liveSkipped: env.key.kind !== 'openai' ? 'key.kind: generic' : env.key.verify ? undefined : 'key.verify: false',
  };
  let report: RotationReport;
  try {
    report = await emergencyRotation(ctx, env, source, flags, findings, progress);
  } catch (raw) {
    await stopIfRequested();
    const err = refusalError(ctx, env, raw);
    await appendAudit(ctx.state, { event: 'incident.update', env: env.name, details: { incident, rotation: 'failed to start', error: (err as Error).message } });
    throw err;
  }
  await stopIfRequested(report);
  // The order README "Unattended rotation, emergencies" documents: the leak scan and the old key's recent usage first, then the revocation
  // step (the operator sees them before confirming), then the checklist.
  findings.scan = await scanWorkingTree(ctx);
  findings.usage = await reviewUsage(ctx, env, report);
  const admin = adminIssuer(ctx, env);
  if (admin) findings.billing = await checkBilling(admin, ctx.clock.now());
  await stopIfRequested(report);
  if (report.outcome === 'awaiting-revocation') report = await revocationAfterReview(ctx, env, report, Boolean(flags.yes), findings);
  await stopIfRequested(report);
  const checklist = emergencyChecklist(report, Boolean(flags.revokeFirst), env.key.kind, findings, flags);
  await appendAudit(ctx.state, {
    event: 'incident.checklist',
    env: env.name,
    rotation: report.rotation,
    details: { incident, outcome: report.outcome, checklist },
  });
  printRotationReport(ctx.out, report, commandFlags(ctx), { incident, checklist });
  await notifyReport(ctx, report, 'emergency');
  if (!ctx.out.json) {
    const c = ctx.out.color;
    const mark = { done: green('[done]    ', c), skipped: yellow('[skipped] ', c), operator: bold('[you]     ', c), failed: '[FAILED]  ' };
    ctx.out.human(['', bold(`Emergency checklist (incident ${incident})`, c), ...checklist.map((i) => `  ${mark[i.state]}${i.step}: ${i.detail}`)].join('\n'));
  }
  return report.exitCode;
}

/** How far the emergency got that the journal does not show (Ctrl-C after it must say so). */
interface Progress {
  /** --revoke-first revoked the old key (before the rotation's journal starts). */
  revokedFirst: boolean;
}

/**
 * Ctrl-C during an emergency: returns the check the command makes between its stages. Once a stop
 * was requested it records the interruption in the incident, notifies (the rotation's state is
 * real), and ends the command with exit 130 and where things stand.
 */
async function interruptionHandling(
  ctx: CommandContext,
  env: Environment,
  incident: string,
  progress: Progress,
): Promise<(report?: RotationReport) => Promise<void>> {
  const stop = watchInterrupts();
  const mark = await journalMark(ctx, env.name);
  stop.whereThingsStand = () => whereThingsStand(ctx, env.name, mark, { command: 'emergency', revokedFirst: progress.revokedFirst });
  return async (report) => {
    if (!stop.requested) return;
    if (report) await notifyReport(ctx, report, 'emergency');
    const err = await stop.exitError();
    await appendAudit(ctx.state, { event: 'incident.update', env: env.name, details: { incident, interrupted: err.message } });
    throw err;
  };
}

/** The emergency's rotation: to "awaiting revocation" (revoked after the review), or revoke-first. */
async function emergencyRotation(
  ctx: CommandContext,
  env: Environment,
  source: string,
  flags: { revokeFirst?: boolean; yes?: boolean },
  findings: EmergencyFindings,
  progress: Progress,
): Promise<RotationReport> {
  const o = await engineOptions(ctx, env);
  try {
    return await rotate(o, {
      mode: 'emergency',
      source,
      obtainKey: (at) => paused(o.reporter, () => obtainNewKey(ctx, env, source, at)),
      revokeFirst: flags.revokeFirst
        ? async (old) => {
            progress.revokedFirst = await revokeFirst(ctx, env, old, Boolean(flags.yes), (fn) => paused(o.reporter, fn));
            return progress.revokedFirst;
          }
        : undefined,
      deferRevocation: !flags.revokeFirst,
      inspectOldKey: async (old) => {
        // "Detects a key the issuer has already disabled": the old key answers 401.
        const issuer = issuerFor(env.key, { processEnv: ctx.processEnv, clock: ctx.clock });
        if (!old || !issuer.liveCheck) return [];
        try {
          await issuer.liveCheck(old);
          return [];
        } catch (err) {
          if (err instanceof TargetError && err.status === 401) {
            findings.oldKeyDisabled = true;
            return [{ code: 'old-key-rejected' as const, old: { hint: old.hint, fingerprint: old.fingerprint }, issuer: issuer.title }];
          }
          return [];
        }
      },
    });
  } finally {
    o.done();
  }
}

const USAGE_DAYS = 7;

/** The old key's completions usage over the last days, grouped by model (Admin API only). */
async function reviewUsage(ctx: CommandContext, env: Environment, rep: RotationReport): Promise<EmergencyFindings['usage']> {
  const issuer = adminIssuer(ctx, env);
  if (!issuer) return { ok: false, why: 'key.admin is not configured (the usage API needs an OpenAI admin key)' };
  if (!rep.oldKeyId) return { ok: false, why: 'the old key was not found in the project through the Admin API' };
  try {
    const u = await (await issuer()).usage(rep.oldKeyId, USAGE_DAYS, ctx.clock.now());
    return { ok: true, days: USAGE_DAYS, requests: u.requests, inputTokens: u.inputTokens, outputTokens: u.outputTokens, byModel: u.byModel };
  } catch (err) {
    return { ok: false, why: `the usage API failed: ${toTargetError(err).message}` };
  }
}

/** `keyrot scan` of the inventory's directory: where else the key (or a retired one) sits. */
async function scanWorkingTree(ctx: CommandContext): Promise<EmergencyFindings['scan']> {
  try {
    const { runScan, loadKnownKeys, expectedFilesOf } = await import('../../scan/index.ts');
    const res = await runScan({
      paths: [ctx.inventory.baseDir],
      cwd: ctx.inventory.baseDir,
      known: await loadKnownKeys(ctx.state),
      expectedFiles: expectedFilesOf(ctx.inventory),
      env: ctx.processEnv,
    });
    const leaks = res.findings.filter((f) => f.leak);
    return { ok: true, leaks: leaks.length, locations: leaks.map((f) => f.location), files: res.scanned.files };
  } catch (err) {
    return { ok: false, why: `the scan failed: ${(err as Error).message}` };
  }
}

/**
 * --revoke-first: with the Admin API (key.admin), delete the old key now (a typed confirmation
 * first, unless --yes); otherwise the operator revokes it in the dashboard and confirms it.
 */
async function revokeFirst(
  ctx: CommandContext,
  env: Environment,
  old: Secret | null,
  yes: boolean,
  pause: <T>(fn: () => Promise<T>) => Promise<T>,
): Promise<boolean> {
  const issuer = adminIssuer(ctx, env);
  if (!issuer || !old) return yes ? true : pause(() => typedConfirmation(old, env.name));
  if (!yes && !(await pause(() => typedConfirmation(old, env.name, 'keyrot will delete it through the OpenAI Admin API')))) return false;
  const res = await (await issuer()).revoke({ key: old });
  if (!res.revoked) {
    throw new ExitError(EXIT.failed, `--revoke-first: the OpenAI Admin API did not revoke ${old.hint}: ${res.detail}. Revoke it in the dashboard, then run again with --yes.`);
  }
  process.stderr.write(`Old key ${old.hint} revoked through the OpenAI Admin API${res.alreadyGone ? ' (it was already gone)' : ''}.\n`);
  return true;
}

/**
 * The emergency's revocation step, after the scan and the usage review: through the Admin API
 * (immediately: no disuse wait in an emergency), or the operator confirms on a terminal; with
 * --yes or without a terminal the rotation stays awaiting revocation (keyrot never invents one).
 */
async function revocationAfterReview(
  ctx: CommandContext,
  env: Environment,
  report: RotationReport,
  yes: boolean,
  f: EmergencyFindings,
): Promise<RotationReport> {
  const admin = ctx.inventory.config.revoke.mode === 'openai-admin';
  if (!admin && (!ctx.interactive || yes)) {
    const issuer = issuerFor(env.key, { processEnv: ctx.processEnv, clock: ctx.clock });
    if (!report.old) return report;
    return {
      ...report,
      notices: [...report.notices, { code: 'awaiting-revocation', old: report.old, revokeAt: issuer.revokeAt, also: report.alsoRevoke ?? [], next: next('revoke', env.name) }],
    };
  }
  if (f.usage?.ok && f.usage.requests > 0) {
    process.stderr.write(`The old key made ${f.usage.requests} requests in the last ${f.usage.days} days.\n`);
  }
  const o = await engineOptions(ctx, env);
  try {
    const r = await revoke(o);
    return { ...report, outcome: r.outcome, exitCode: r.exitCode, cancelled: r.cancelled, notices: [...report.notices, ...r.notices] };
  } catch (raw) {
    const err = refusalError(ctx, env, raw);
    return { ...report, notices: [...report.notices, { code: 'revocation-step-failed', error: toTargetError(err).message, next: next('revoke', env.name) }] };
  } finally {
    o.done();
  }
}

import { createInterface } from 'node:readline/promises';
import { randomBytes } from 'node:crypto';
import { appendAudit } from '../../audit/audit-log.ts';
import { rotate, type RotationReport } from '../../engine/rotation.ts';
import { EXIT, ExitError } from '../../engine/errors.ts';
import { OPENAI_KEYS_PAGE } from '../../keys/kinds.ts';
import { obtainKey } from '../../keys/sources.ts';
import type { Secret } from '../../keys/secret.ts';
import { commandContext, engineOptions, environment, keySourceContext, type CommonFlags } from '../context.ts';
import { bold, green, paused, printRotationReport, yellow } from '../output.ts';
import { checkSource } from './rotate.ts';

export type ChecklistState = 'done' | 'skipped' | 'operator' | 'failed';
export interface ChecklistItem {
  step: string;
  state: ChecklistState;
  detail: string;
}

/**
 * The emergency response checklist (the seed: "immediately revoke, generate a new key, update all
 * environments, review usage logs, check billing, audit your codebase"), each line marked done,
 * skipped (and why), failed, or left to the operator.
 */
export function emergencyChecklist(rep: RotationReport, revokedFirst: boolean, kind: 'openai' | 'generic'): ChecklistItem[] {
  const dashboard = kind === 'openai' ? OPENAI_KEYS_PAGE : "the issuer's console";
  const ok = rep.outcome === 'awaiting-revocation' || rep.outcome === 'completed';
  const verified = rep.targets.filter((t) => t.holds === 'new' && t.verifiedBy).length;
  const revoked = revokedFirst || rep.outcome === 'completed';
  return [
    {
      step: 'Revoke the compromised key',
      state: revoked ? 'done' : 'operator',
      detail: revoked
        ? `${rep.old?.hint ?? 'old key'} recorded as revoked${revokedFirst ? ' before the rotation' : ''}`
        : `revoke ${rep.old?.hint ?? 'the old key'} (${rep.old?.fingerprint ?? '?'}) in ${dashboard}, then run \`keyrot revoke -e ${rep.env}\``,
    },
    {
      step: 'Generate a new key',
      state: rep.new ? 'done' : 'failed',
      detail: rep.new ? `${rep.new.hint} (${rep.new.fingerprint}), live-checked before any write` : 'no new key was accepted',
    },
    {
      step: 'Update all environments',
      state: ok ? 'done' : 'failed',
      detail: ok ? `${verified} of ${rep.targets.length} targets verified holding the new key` : `rotation ${rep.outcome}: see the table above`,
    },
    {
      step: 'Review usage logs',
      state: 'skipped',
      detail:
        'not available in this version of keyrot (the OpenAI Admin API usage review is not built yet): review the old key\'s usage in the OpenAI dashboard Usage page',
    },
    { step: 'Check billing', state: 'operator', detail: 'look for unexpected spend in the OpenAI dashboard Billing page; set a usage limit if none' },
    {
      step: 'Audit your codebase for the leaked key',
      state: 'skipped',
      detail: 'not available in this version of keyrot (`keyrot scan` is not built yet): search the repository and its history for the old key',
    },
  ];
}

async function typedConfirmation(old: Secret | null, env: string): Promise<boolean> {
  process.stderr.write(
    `\nREVOKE FIRST: the old key of "${env}" will be treated as revoked BEFORE the new key is written.\n` +
      `Apps keep failing until every target holds the new key.\n` +
      `  key          ${old?.hint ?? '(no readable target holds it)'}\n  fingerprint  ${old?.fingerprint ?? '-'}\n` +
      `Revoke it now in ${OPENAI_KEYS_PAGE}.\n`,
  );
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question('Type REVOKED once it is revoked (anything else aborts): ');
    return answer.trim() === 'REVOKED';
  } finally {
    rl.close();
  }
}

export async function emergency(flags: CommonFlags & { newKey?: string; revokeFirst?: boolean; reason?: string }): Promise<number> {
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const source = checkSource(flags.newKey ?? env.keySource);
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
  const o = await engineOptions(ctx, env);
  let report: RotationReport;
  try {
    report = await rotate(o, {
      mode: 'emergency',
      source,
      obtainKey: () => paused(o.reporter, () => obtainKey(source, keySourceContext(ctx))),
      revokeFirst: flags.revokeFirst ? (old) => (flags.yes ? Promise.resolve(true) : paused(o.reporter, () => typedConfirmation(old, env.name))) : undefined,
    });
  } catch (err) {
    o.done();
    await appendAudit(ctx.state, { event: 'incident.update', env: env.name, details: { incident, rotation: 'failed to start', error: (err as Error).message } });
    throw err;
  } finally {
    o.done();
  }
  const checklist = emergencyChecklist(report, Boolean(flags.revokeFirst), env.key.kind);
  await appendAudit(ctx.state, {
    event: 'incident.checklist',
    env: env.name,
    rotation: report.rotation,
    details: { incident, outcome: report.outcome, checklist },
  });
  printRotationReport(ctx.out, report, { incident, checklist });
  if (!ctx.out.json) {
    const c = ctx.out.color;
    const mark = { done: green('[done]    ', c), skipped: yellow('[skipped] ', c), operator: bold('[you]     ', c), failed: '[FAILED]  ' };
    ctx.out.human(['', bold(`Emergency checklist (incident ${incident})`, c), ...checklist.map((i) => `  ${mark[i.state]}${i.step}: ${i.detail}`)].join('\n'));
  }
  return report.exitCode;
}

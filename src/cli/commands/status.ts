import { EXIT } from '../../core/errors.ts';
import { readStatus, type EnvStatus } from '../../usecases/status.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { commandContext, startReadingCommand, type CommonFlags } from '../context.ts';
import { bold, dim, green, red, yellow } from '../output.ts';
import type { Column } from '../table.ts';
import { keyrotCommand as nextCommand } from '../../render/command.ts';

const STATUS_COLUMNS: Column[] = [
  { header: '', fit: 'fixed' },
  { header: '', fit: 'wrap', min: 30 },
];

/** One environment's status as label/value rows (the value wraps to the screen). */
function statusRows(s: EnvStatus, flags: CommonFlags, c: boolean): string[][] {
  const rows: string[][] = [];
  const row = (label: string, value: string) => rows.push([label, value]);
  row(
    'key',
    s.key
      ? `${s.key.hint ?? '(hint unknown)'} ${dim(s.key.fingerprint, c)}${Number.isFinite(s.key.ageDays) ? `, age ${formatDuration(s.key.ageDays * 86_400_000)} (since ${s.key.since.slice(0, 10)})` : ''}`
      : dim(`unknown: never rotated by keyrot (run \`${nextCommand(flags, 'verify', '-e', s.env)}\`)`, c),
  );
  const last = s.lastRotation;
  row('last', last ? `${last.id} ${last.outcome === 'failed' || last.outcome === 'interrupted' ? red(last.outcome, c) : green(last.outcome, c)}${last.mode === 'emergency' ? ' (emergency)' : ''}` : dim('no rotation yet', c));
  if (s.pendingRevocation) {
    row('pending', yellow(`revoke ${s.pendingRevocation.hint ?? 'the old key'} (${s.pendingRevocation.fingerprint}), then: ${nextCommand(flags, 'revoke', '-e', s.env)}`, c));
    for (const a of s.pendingRevocation.also) row('', yellow(`and revoke ${a.hint} (${a.fingerprint}): ${a.why}`, c));
  }
  if (s.interrupted) row('resume', red(`rotation ${s.interrupted} was interrupted: ${nextCommand(flags, 'resume', '-e', s.env)} (or --rollback)`, c));
  row('schedule', s.schedule ? `${s.schedule.cron} (${s.schedule.timezone}), next ${s.schedule.nextRun ?? '—'}` : dim('none', c));
  if (s.schedule?.overdue) row('overdue', red(`the key is older than the schedule's period: the scheduled rotation did not happen (${nextCommand(flags, 'schedule', '--once')})`, c));
  row('verify', s.lastVerify ? `${s.lastVerify.at.slice(0, 19)}Z ${s.lastVerify.ok ? green('ok', c) : red(s.lastVerify.drift ? 'drift' : 'problem', c)}` : dim(`never (run \`${nextCommand(flags, 'verify', '-e', s.env)}\`)`, c));
  if (s.sharedWith.length) row('shared', red(`the same key as ${s.sharedWith.join(', ')}: use a separate key per environment`, c));
  if (s.lock) row('lock', yellow(`held by pid ${s.lock.pid} on ${s.lock.host} since ${s.lock.at}${s.lock.stale ? ' (stale: its process is gone)' : ''}`, c));
  return rows;
}

/** Per environment, from the state directory only (no provider is contacted). */
export async function status(flags: CommonFlags): Promise<number> {
  startReadingCommand('status', flags);
  const ctx = await commandContext(flags);
  const out = ctx.out;
  const names = flags.env ? [flags.env] : [...ctx.inventory.environments.keys()];
  if (flags.env && !ctx.inventory.environments.has(flags.env)) {
    const { selectEnvironment } = await import('../../inventory/load.ts');
    selectEnvironment(ctx.inventory, flags.env); // throws the usage error listing environments
  }
  const { environments: all, audit } = await readStatus(ctx.inventory, ctx.state, Date.now());
  const shown = all.filter((s) => names.includes(s.env));
  const problems = shown.filter((s) => s.interrupted || s.sharedWith.length || s.schedule?.overdue || (s.lastVerify && !s.lastVerify.ok));
  if (out.json) {
    out.result({ state: ctx.state.where, auditIntact: audit.broken.length === 0, environments: shown });
  } else {
    const c = out.color;
    const lines: string[] = [];
    for (const s of shown) {
      lines.push(bold(s.env, c), out.table(STATUS_COLUMNS, statusRows(s, flags, c), { header: false }), '');
    }
    if (audit.broken.length) lines.push(red(`The audit log hash chain is broken: run \`${nextCommand(flags, 'history')}\` for details.`, c));
    out.human(lines.join('\n').trimEnd());
  }
  return problems.length || audit.broken.length ? EXIT.failed : EXIT.ok;
}

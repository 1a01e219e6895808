import { appendAudit } from '../../state/audit-log.ts';
import { EXIT, toTargetError } from '../../core/errors.ts';
import { readJournal } from '../../state/journal.ts';
import { currentKey, latestRotation, replay } from '../../machine/state.ts';
import { scheduleInfo } from '../../scheduler/scheduler.ts';
import { closeAll, createTargets } from '../../machine/live-targets.ts';
import { preflightAll } from '../../machine/preflight.ts';
import { decodeReceipt } from '../../machine/live-targets.ts';
import { next } from '../../machine/outcome.ts';
import { issuerFor } from '../../issuers/index.ts';
import type { TargetDefinition } from '../../targets/types.ts';
import { withRetry } from '../../runtime/retry.ts';
import { Secret } from '../../core/secret.ts';
import { commandContext, environment, startReadingCommand, type CommonFlags } from '../context.ts';
import { bold, dim, green, red, yellow } from '../output.ts';
import type { Column } from '../table.ts';
import { plural } from '../../render/plural.ts';
import { keyrotCommand } from '../../render/command.ts';
import { TargetError } from '../../core/errors.ts';

const VERIFY_COLUMNS: Column[] = [
  { header: '', fit: 'fixed' },
  { header: 'TARGET', min: 16 },
  { header: 'TYPE', min: 8 },
  { header: 'HOLDS', fit: 'fixed' },
  { header: 'BY', fit: 'fixed' },
  { header: 'DETAIL', fit: 'wrap', min: 20 },
];

/**
 * The live check's answer. `rejected`: the issuer refused the key (401: revoked, wrong): a dead
 * key, exit 1. `unreachable`: no answer about the key (network, timeout, 5xx after retries, an
 * endpoint that is not the API): nothing is known, exit 4.
 */
export interface LiveResult {
  ok: boolean;
  status: 'live' | 'restricted' | 'rejected' | 'unreachable';
  detail: string;
}

function liveFailure(err: unknown): LiveResult {
  const e = toTargetError(err);
  const rejected = e instanceof TargetError && e.kind === 'auth';
  return { ok: false, status: rejected ? 'rejected' : 'unreachable', detail: e.message };
}

interface VerifyRow {
  name: string;
  type: string;
  holds: { hint: string; fingerprint: string } | 'absent' | 'unreadable' | 'error';
  matches: boolean;
  method: 'read-back' | 'metadata' | 'none';
  detail?: string;
}

type Ctx = Awaited<ReturnType<typeof commandContext>>;
type Targets = Awaited<ReturnType<typeof createTargets>>;
type Preflight = Awaited<ReturnType<typeof preflightAll>>;
type Rotation = Awaited<ReturnType<typeof latestRotation>>;

/** What verify found: a problem is exit 1; `unchecked` (the issuer did not answer) exit 4. */
interface Findings {
  problems: string[];
  warnings: string[];
  unchecked?: string;
}

/** Reads every target now: all hold the same key, and it is live. Exit 1 on drift or a dead key, 4 when the issuer cannot be reached. */
export async function verify(flags: CommonFlags): Promise<number> {
  const stop = startReadingCommand('verify', flags);
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const out = ctx.out;
  const targets = await createTargets({ inventory: ctx.inventory, env, processEnv: ctx.processEnv, clock: ctx.clock, logger: ctx.logger });
  try {
    out.info(dim(`Reading ${plural(targets.length, 'target')} of "${env.name}"...`, out.color));
    const pf = await preflightAll(targets, { clock: ctx.clock });
    const { expected, fingerprints } = await expectedKey(ctx, env.name, pf);
    const last = await latestRotation(ctx.state, env.name);
    const rows = await verifyRows(targets, pf, expected, last, env.name);
    const drift = rows.some((r) => !r.matches);
    const issuer = issuerFor(env.key, { processEnv: ctx.processEnv, clock: ctx.clock });
    const live = expected && issuer.liveCheck && env.key.verify ? await checkLive(() => issuer.liveCheck!(expected), ctx) : undefined;
    const f = await findingsOf(ctx, env, { expected, last, rows, live });
    // Ctrl-C waits for the entry: a line cut in half would fail `keyrot history` from then on.
    await stop.uninterrupted(() =>
      appendAudit(ctx.state, {
        event: f.problems.length ? 'verify.problem' : 'verify.ok',
        env: env.name,
        details: { key: expected?.fingerprint ?? null, drift, fingerprints, live: live?.ok ?? null, liveStatus: live?.status ?? null },
      }),
    );
    if (out.json) {
      const key = expected ? { hint: expected.hint, fingerprint: expected.fingerprint } : null;
      out.result({ env: env.name, key, drift, live, problems: f.problems, warnings: f.unchecked ? [...f.warnings, f.unchecked] : f.warnings, targets: rows });
    } else {
      out.human(verifyText(ctx, { env, rows, expected, live, findings: f, issuerTitle: issuer.title }));
    }
    if (!f.problems.length && f.unchecked) return EXIT.unreachable;
    return f.problems.length ? EXIT.failed : EXIT.ok;
  } finally {
    await closeAll(targets);
  }
}

/** The key most targets hold; on a tie, the one keyrot last rotated in (not whichever was read first). */
async function expectedKey(ctx: Ctx, envName: string, pf: Preflight): Promise<{ expected: Secret | undefined; fingerprints: string[] }> {
  const values = [...pf.values()].flatMap((p) => (p.current.kind === 'value' ? [p.current.value] : []));
  const counts = new Map<string, { v: Secret; n: number }>();
  for (const v of values) counts.set(v.fingerprint, { v, n: (counts.get(v.fingerprint)?.n ?? 0) + 1 });
  const journalKey = currentKey(replay(await readJournal(ctx.state, envName)))?.fingerprint;
  const expected = [...counts.values()].sort((a, b) => b.n - a.n || Number(b.v.fingerprint === journalKey) - Number(a.v.fingerprint === journalKey))[0]?.v;
  return { expected, fingerprints: [...counts.keys()] };
}

/** One row per target: what it holds, read back, or proved by its metadata when write-only. */
async function verifyRows(targets: Targets, pf: Preflight, expected: Secret | undefined, last: Rotation, envName: string): Promise<VerifyRow[]> {
  const rows: VerifyRow[] = [];
  for (const lt of targets) {
    const p = pf.get(lt.spec.name)!;
    const base = { name: lt.spec.name, type: lt.spec.type };
    if (p.status !== 'ready') rows.push({ ...base, holds: 'error', matches: false, method: 'none', detail: p.reason });
    else if (p.current.kind === 'value') {
      const v = p.current.value;
      rows.push({ ...base, holds: { hint: v.hint, fingerprint: v.fingerprint }, matches: Boolean(expected && v.equals(expected)), method: 'read-back' });
    } else if (p.current.kind === 'absent') rows.push({ ...base, holds: 'absent', matches: false, method: 'read-back', detail: 'holds no key' });
    else if (!expected) rows.push({ ...base, holds: 'unreadable', matches: false, method: 'none', detail: 'write-only, and no readable target to compare with' });
    else rows.push({ ...base, ...(await verifyByMetadata(lt, expected, last, envName)) });
  }
  return rows;
}

/** Write-only: ask the target to prove it holds the expected key by its metadata. */
async function verifyByMetadata(lt: Targets[number], expected: Secret, last: Rotation, envName: string): Promise<Omit<VerifyRow, 'name' | 'type'>> {
  const rec = last?.targets.get(lt.spec.name);
  let receipt: unknown;
  try {
    receipt = rec ? decodeReceipt(lt.spec.definition as TargetDefinition<object, unknown>, rec, next('resume', envName)) : undefined;
  } catch {
    receipt = undefined; // written by another keyrot version: verified without it
  }
  try {
    const v = await lt.target!.verify(expected, { rotationId: last?.id ?? 'verify', fingerprint: expected.fingerprint }, receipt);
    return { holds: 'unreadable', matches: true, method: 'metadata', detail: v.detail };
  } catch (err) {
    return { holds: 'unreadable', matches: false, method: 'metadata', detail: toTargetError(err).message };
  }
}

/** The issuer's live check, retried; a refusal and no answer are told apart (LiveResult). */
async function checkLive(check: () => Promise<{ status: string; detail: string }>, ctx: Ctx): Promise<LiveResult> {
  try {
    const r = await withRetry(check, { clock: ctx.clock, policy: { attempts: 3 } });
    return { ok: true, status: r.status === 'restricted' ? 'restricted' : 'live', detail: r.detail };
  } catch (err) {
    return liveFailure(err);
  }
}

async function findingsOf(
  ctx: Ctx,
  env: ReturnType<typeof environment>,
  d: { expected: Secret | undefined; last: Rotation; rows: VerifyRow[]; live: LiveResult | undefined },
): Promise<Findings> {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (d.last && d.last.outcome === undefined) {
    warnings.push(`rotation ${d.last.id} was interrupted: finish it with \`${keyrotCommand(ctx.flags, 'resume', '-e', env.name)}\` or undo it with \`${keyrotCommand(ctx.flags, 'resume', '-e', env.name, '--rollback')}\``);
  }
  if (!d.expected) problems.push('no target holds a readable key');
  // The seed: "use separate keys for different environments".
  if (d.expected) {
    for (const other of ctx.inventory.environments.keys()) {
      if (other === env.name) continue;
      const theirs = currentKey(replay(await readJournal(ctx.state, other)));
      if (theirs?.fingerprint === d.expected.fingerprint) problems.push(`environment "${other}" uses the same key (${d.expected.fingerprint}): give each environment its own key`);
    }
  }
  const mine = currentKey(replay(await readJournal(ctx.state, env.name)));
  if (env.schedule && mine && mine.fingerprint === d.expected?.fingerprint) {
    const info = await scheduleInfo(env.schedule.cron, env.schedule.timezone, ctx.clock.now());
    if (info.firstFiringAfter(mine.since) <= ctx.clock.now()) {
      warnings.push(`the key is older than the schedule's period (rotated in ${new Date(mine.since).toISOString()}): a scheduled rotation did not happen`);
    }
  }
  const off = d.rows.filter((r) => !r.matches);
  if (off.length) problems.push(`drift: ${off.map((r) => r.name).join(', ')} ${off.length === 1 ? 'does' : 'do'} not hold the same key as the others`);
  if (d.live?.status === 'rejected') problems.push(`the key is not live: ${d.live.detail}`);
  // Not a verdict on the key: the issuer did not answer. Said apart, with its own exit code.
  const unchecked = d.live?.status === 'unreachable' ? `could not check the key: ${d.live.detail}` : undefined;
  return { problems, warnings, unchecked };
}

/** The human report: the table, the live check, warnings, and the verdict. */
function verifyText(
  ctx: Ctx,
  d: { env: { name: string; key: { kind: string } }; rows: VerifyRow[]; expected: Secret | undefined; live: LiveResult | undefined; findings: Findings; issuerTitle: string },
): string {
  const c = ctx.out.color;
  const { live, expected, rows } = d;
  const { problems, warnings, unchecked } = d.findings;
  const t = rows.map((r) => [
    r.matches ? green('✓', c) : red('✗', c),
    r.name,
    r.type,
    typeof r.holds === 'object' ? `${r.holds.hint} ${dim(r.holds.fingerprint, c)}` : r.holds,
    r.method,
    r.detail ?? '',
  ]);
  const lines = [bold(`Verify "${d.env.name}"`, c), ctx.out.table(VERIFY_COLUMNS, t)];
  if (live) lines.push(live.ok ? green(`Live: ${live.detail}`, c) : live.status === 'rejected' ? red(`Not live: ${live.detail}`, c) : yellow(`Not checked: ${live.detail}`, c));
  else if (expected) lines.push(yellow(`Live check skipped (${d.env.key.kind !== 'openai' ? 'key.kind: generic' : 'key.verify: false'})`, c));
  for (const w of warnings) lines.push(yellow(`warning: ${w}`, c));
  if (problems.length) lines.push(red(`Problems: ${problems.join('; ')}.`, c));
  else if (unchecked) lines.push(yellow(`Every target holds ${expected!.hint} (${expected!.fingerprint}), but ${unchecked}: run verify again once ${d.issuerTitle} is reachable.`, c));
  else lines.push(green(`${rows.length === 1 ? 'The target holds' : `All ${plural(rows.length, 'target')} hold`} ${expected!.hint} (${expected!.fingerprint}).`, c));
  return lines.join('\n');
}

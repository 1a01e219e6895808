import { appendAudit, readAudit, type AuditReadResult } from '../../state/audit-log.ts';
import { EXIT } from '../../core/errors.ts';
import { existsSync } from 'node:fs';
import { loadInventory, selectEnvironment } from '../../inventory/load.ts';
import { openState } from '../../state/open.ts';
import { legacyNote, verifyJournal, type VerifiedJournal } from '../../state/journal-auth.ts';
import { ranges } from '../../state/seal.ts';
import type { StateStore } from '../../state/store.ts';
import { resolveConfigPath, resolveStateDir, createOutFor, startReadingCommand, usage, type CommonFlags } from '../context.ts';
import { dim, red, type Out } from '../output.ts';
import type { Column } from '../table.ts';
import { plural } from '../../render/plural.ts';
import { keyrotCommand } from '../../render/command.ts';

const HISTORY_COLUMNS: Column[] = [
  { header: 'TIME', fit: 'fixed' },
  { header: 'EVENT', min: 12 },
  { header: 'ENV', min: 8 },
  { header: 'ROTATION', min: 12 },
  { header: 'DETAILS', fit: 'wrap', min: 20 },
];

/**
 * The audit log, newest first, verified: each entry's MAC, the hash chain, the head against the
 * anchor; and every environment's journal the same way. Any failure says which check failed and
 * exits 1.
 */
export async function history(flags: CommonFlags & { limit?: string; anchor?: string; reanchor?: boolean }): Promise<number> {
  // --reanchor writes the anchor: Ctrl-C then ends it as Node does, the read-only line would be untrue.
  if (!flags.reanchor) startReadingCommand('history', flags);
  const out = createOutFor(flags);
  const limitText = String(flags.limit ?? 50);
  if (!/^[1-9][0-9]*$/.test(limitText)) usage(`-n ${limitText}: expected a positive whole number of entries`);
  const expected = flags.anchor === undefined ? undefined : parseAnchorFlag(flags.anchor);
  const configPath = resolveConfigPath(flags);
  // The inventory says where the state lives (state: kubernetes); without one, the local directory.
  const inventory = existsSync(configPath) ? await loadInventory(configPath) : undefined;
  if (inventory && flags.env) selectEnvironment(inventory, flags.env); // a typo in -e is an error, not an empty log
  const state = await openState(inventory, resolveStateDir(flags, configPath));
  const stateDir = state.where;
  const audit = await readAudit(state, expected);
  const journals = await Promise.all((await state.journalEnvs()).filter((e) => !flags.env || e === flags.env).map((e) => verifyJournal(state, e)));
  if (flags.reanchor) return reanchor(out, state, audit, journals);
  const { entries, broken } = audit;
  const limit = Number(limitText);
  const shown = entries
    .filter((e) => !flags.env || e.env === flags.env)
    .reverse()
    .slice(0, limit);
  const journalProblems = journals.flatMap((j) => j.problems.map((p) => `journal of "${j.env}": ${p}`));
  if (out.json) {
    out.result({
      stateDir,
      intact: broken.length === 0 && journalProblems.length === 0,
      broken,
      legacy: audit.legacy,
      head: audit.head,
      anchor: audit.anchor,
      journals: journals.map((j) => ({ env: j.env, legacy: j.legacy, problems: j.problems })),
      entries: shown,
    });
  } else if (!shown.length) {
    out.human(
      `No audit entries${flags.env && entries.length ? ` for environment "${flags.env}"` : ' yet'} in ${stateDir}.` +
        (inventory ? '' : ` (No inventory at ${configPath}: pass -c PATH if the state lives elsewhere.)`),
    );
  } else {
    const rows = shown.map((e) => [e.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), e.event, e.env ?? '', e.rotation ?? '', summarize(e.details)]);
    out.human(out.table(HISTORY_COLUMNS, rows, { indent: '' }));
    out.human(dim(`${shown.length} of ${plural(entries.length, 'entry', 'entries')}, ${state.kind === 'local' ? `${stateDir}/audit.ndjson` : stateDir}`, out.color));
  }
  if (!out.json) printVerification(out, state, audit, journals);
  if (broken.length || journalProblems.length) {
    out.err(red(`keyrot's state FAILS verification (entries edited, removed, reordered, forged, or the log cut short):`, out.color));
    for (const b of broken) out.err(`  audit log line ${b.line} [${b.check}]: ${b.problem}`);
    for (const p of journalProblems) out.err(`  ${p}`);
    out.err(`  Check who can write ${stateDir}; restore it from a backup. After a deliberate archive of the state, \`${keyrotCommand(flags, 'history', '--reanchor')}\` records its current heads.`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

/** `--anchor SEQ:HEAD`, as a notification's `audit` field gives it. */
function parseAnchorFlag(text: string): { seq: number; head: string } {
  const m = /^([1-9][0-9]*):([0-9a-f]{64})$/.exec(text.trim());
  if (!m) usage(`--anchor ${text}: expected SEQ:HEAD, the audit head a notification carried (e.g. 42:<64 hex>)`);
  return { seq: Number(m[1]), head: m[2]! };
}

/** What was checked, in one or two dim lines (stderr): legacy entries, the anchor. */
function printVerification(out: Out, state: StateStore, audit: AuditReadResult, journals: VerifiedJournal[]): void {
  const legacy = legacyNote(audit.legacy, ['entry', 'entries']);
  if (legacy) out.err(dim(`Audit log: ${legacy}.`, out.color));
  for (const j of journals) {
    const note = legacyNote(j.legacy, ['line', 'lines']);
    if (note) out.err(dim(`Journal of "${j.env}": ${note}.`, out.color));
  }
  if (!audit.head || audit.broken.length) return;
  const sealed = audit.entries.length - audit.legacy.length;
  const anchor = audit.anchor
    ? `the head (seq ${audit.head.seq}) against the anchor at ${audit.anchor.where} (seq ${audit.anchor.seq})`
    : `no anchor is recorded at ${state.trust.anchors.where}, so a log cut short is not detectable here; compare the head (seq ${audit.head.seq}, ${audit.head.head}) with your notifications (--anchor SEQ:HEAD)`;
  if (sealed > 0) out.info(dim(`Verified: ${plural(sealed, "entry's MAC", "entries' MACs")} (state key ${state.trust.keyWhere}), the hash chain, ${anchor}.`, out.color));
}

/** `--reanchor`: after a deliberate archive, record the current heads, once every line verifies. */
async function reanchor(out: Out, state: StateStore, audit: AuditReadResult, journals: VerifiedJournal[]): Promise<number> {
  const lineProblems = [...audit.broken.filter((b) => b.check !== 'anchor').map((b) => `audit log line ${b.line}: ${b.problem}`), ...journals.flatMap((j) => j.problems.filter((p) => p !== j.anchorProblem).map((p) => `journal of "${j.env}": ${p}`))];
  if (lineProblems.length) {
    out.err(red('Not re-anchored: these lines fail verification, and an anchor must not vouch for them:', out.color));
    for (const p of lineProblems) out.err(`  ${p}`);
    return EXIT.failed;
  }
  const before = await state.trust.anchors.read();
  const heads = {
    audit: audit.head ?? undefined,
    journals: Object.fromEntries(
      journals.flatMap((j) => {
        const sealed = j.lines.filter((l) => l.status === 'ok');
        return sealed.length ? [[j.env, { n: sealed.length, mac: lastMacOf(j) }]] : [];
      }),
    ),
  };
  await state.trust.anchors.reset(heads);
  const entry = await appendAudit(state, {
    event: 'state.reanchored',
    details: { previousAuditSeq: before?.audit?.seq ?? null, auditSeq: heads.audit?.seq ?? null, journals: Object.keys(heads.journals).join(',') },
  });
  out.human(`Re-anchored ${state.trust.anchors.where} at the current heads (audit seq ${entry.seq}${Object.keys(heads.journals).length ? `; journals ${Object.keys(heads.journals).join(', ')}` : ''}).`);
  if (audit.legacy.length) out.err(dim(`Audit log: ${ranges(audit.legacy, ['entry', 'entries'])} stay unverifiable (written before authentication).`, out.color));
  return EXIT.ok;
}

function lastMacOf(j: VerifiedJournal): string {
  return j.lines.filter((l) => l.status === 'ok').at(-1)!.mac!;
}

function summarize(d: Record<string, unknown> | undefined): string {
  if (!d) return '';
  return Object.entries(d)
    .filter(([, v]) => v !== undefined && v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ')
    .slice(0, 120);
}

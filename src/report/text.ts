import type { EnvironmentReport, ReportData, RotationRow } from './data.ts';

/** `--format json`: the report's data as is. */
export function reportJson(d: ReportData): string {
  return JSON.stringify(d, null, 2) + '\n';
}

const CSV_COLUMNS = ['env', 'rotation', 'mode', 'started', 'ended', 'outcome', 'all_verified', 'revoked', 'targets'] as const;

/** `--format csv`: one row per rotation (RFC 4180 quoting), for a spreadsheet or an auditor's tool. */
export function reportCsv(d: ReportData): string {
  const rows: string[][] = [[...CSV_COLUMNS]];
  for (const e of d.environments) {
    for (const r of e.rotations) {
      rows.push([e.env, r.id, r.mode, r.startedAt, r.endedAt ?? '', r.outcome, String(r.allVerified), r.revokedAt ?? '', String(r.targets)]);
    }
  }
  return rows.map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

function csvField(v: string): string {
  // A leading =, +, - or @ makes spreadsheets evaluate the cell: quote it as text (OWASP "CSV injection").
  const safe = /^[=+\-@]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** `--format md`: the same as the HTML page, as Markdown tables. */
export function reportMarkdown(d: ReportData): string {
  const out = [`# keyrot report`, '', `Generated ${d.generatedAt} from ${mdText(d.state)}.`, '', auditLine(d), ''];
  for (const e of d.environments) out.push(...environmentMarkdown(e), '');
  return out.join('\n');
}

function auditLine(d: ReportData): string {
  const a = d.audit;
  if (!a.intact) return `**Audit log: verification FAILED** (${a.problems.map((p) => `line ${p.line}: ${p.check}: ${mdText(p.problem)}`).join('; ')}).`;
  return `Audit log: ${a.entries} entries, every MAC, hash and the chain verified${a.anchored ? ', head matches its anchor' : ' (no anchor recorded)'}${a.unauthenticated ? `; ${a.unauthenticated} entries predate authentication` : ''}.`;
}

function environmentMarkdown(e: EnvironmentReport): string[] {
  const lines = [`## ${mdText(e.env)}`, ''];
  const key = e.key ? `${mdText(e.key.hint ?? '(hint unknown)')} \`${e.key.fingerprint}\`` : 'unknown (never rotated by keyrot)';
  lines.push(`- Key: ${key}${e.key && Number.isFinite(e.key.ageDays) ? `, ${e.key.ageDays.toFixed(1)} days old` : ''}`);
  if (e.schedule) lines.push(`- Schedule: \`${e.schedule.cron}\` (${e.schedule.timezone}), every ${e.schedule.periodDays.toFixed(0)} days${e.schedule.overdue ? ' — **overdue**' : ''}`);
  if (e.pendingRevocation) lines.push(`- **Revocation pending** since ${e.pendingRevocation.since}: ${mdText(e.pendingRevocation.hint ?? 'the old key')} \`${e.pendingRevocation.fingerprint}\``);
  if (e.interrupted) lines.push(`- **Rotation ${e.interrupted} was interrupted**: run keyrot resume`);
  if (e.lastVerify) lines.push(`- Last verify: ${e.lastVerify.at} ${e.lastVerify.ok ? 'ok' : e.lastVerify.drift ? '**drift**' : '**problem**'}`);
  if (e.sharedWith.length) lines.push(`- **Same key as** ${e.sharedWith.map(mdText).join(', ')}`);
  lines.push('', '| rotation | mode | started | ended | outcome | revoked | targets |', '| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of [...e.rotations].reverse()) lines.push(rotationMarkdown(r));
  if (!e.rotations.length) lines.push('| (none yet) | | | | | | |');
  return lines;
}

function rotationMarkdown(r: RotationRow): string {
  return `| ${r.id} | ${r.mode} | ${r.startedAt} | ${r.endedAt ?? ''} | ${r.outcome} | ${r.revokedAt ?? ''} | ${r.targets} |`;
}

/** Text from the state, made inert in Markdown (no links, HTML or table breaks). */
function mdText(s: string): string {
  return s.replace(/[\\`*_{}[\]()<>#+!|]/g, (c) => `\\${c}`);
}

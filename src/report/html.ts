import type { EnvironmentReport, ReportData, RotationRow } from './data.ts';
import { esc } from './escape.ts';
import { timelineSvg } from './timeline.ts';

/**
 * `--format html`: one self-contained page (inline CSS and SVG; no script, no network: its CSP
 * forbids both), for people: per environment the key's age against its schedule, a timeline of
 * rotations, warnings, pending revocations, and whether the audit chain verified.
 */
export function reportHtml(d: ReportData): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>keyrot report ${esc(d.generatedAt.slice(0, 10))}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>keyrot report</h1><p>Generated ${esc(d.generatedAt)} from <code>${esc(d.state)}</code>.</p>${auditHtml(d)}</header>
${d.environments.map(environmentHtml).join('\n')}
<footer><p>Keys appear as hints and fingerprints only. Built from keyrot's journal and audit log.</p></footer>
</body>
</html>
`;
}

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1b1f24}
h1{margin:0 0 .2rem}h2{margin:2rem 0 .5rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
code{font:13px ui-monospace,monospace;background:#f6f8fa;padding:0 .25rem;border-radius:3px}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.warn{color:#9a6700;font-weight:600}
.banner{padding:.5rem .8rem;border-radius:6px;margin:.5rem 0}.banner.ok{background:#dafbe1}.banner.bad{background:#ffebe9}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:.5rem}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eaeef2}
.age{height:10px;background:#eaeef2;border-radius:5px;max-width:420px;overflow:hidden}.age>div{height:100%}
ul.facts{list-style:none;padding:0}ul.facts li{margin:.2rem 0}
svg text{font:11px system-ui,sans-serif;fill:#57606a}`;

function auditHtml(d: ReportData): string {
  const a = d.audit;
  if (!a.intact) {
    const problems = a.problems.map((p) => `<li>line ${p.line}: <b>${esc(p.check)}</b>: ${esc(p.problem)}</li>`).join('');
    return `<div class="banner bad" id="audit">Audit log verification FAILED: an entry was edited, removed or cut short.<ul>${problems}</ul></div>`;
  }
  const anchor = a.anchored ? 'its head matches the anchor kept outside the state' : 'no anchor recorded';
  const legacy = a.unauthenticated ? `; ${a.unauthenticated} entries predate authentication` : '';
  return `<div class="banner ok" id="audit">Audit log verified: ${a.entries} entries, every MAC and hash and the chain; ${anchor}${esc(legacy)}.</div>`;
}

function environmentHtml(e: EnvironmentReport): string {
  return `<section class="environment" data-env="${esc(e.env)}">
<h2>${esc(e.env)}</h2>
<ul class="facts">${factsHtml(e)}</ul>
${ageHtml(e)}
${timelineSvg(e)}
${rotationsTable(e.rotations)}
</section>`;
}

function factsHtml(e: EnvironmentReport): string {
  const facts: string[] = [];
  facts.push(e.key ? `<li>Key <code>${esc(e.key.hint ?? '(hint unknown)')}</code> <code>${esc(e.key.fingerprint)}</code> since ${esc(e.key.since.slice(0, 10))}</li>` : '<li class="warn">Key unknown: never rotated by keyrot</li>');
  facts.push(e.schedule ? `<li>Schedule <code>${esc(e.schedule.cron)}</code> (${esc(e.schedule.timezone)}), next run ${esc(e.schedule.nextRun ?? '—')}</li>` : '<li>No schedule</li>');
  if (e.schedule?.overdue) facts.push('<li class="bad">Overdue: the schedule fired since the key was rotated in</li>');
  if (e.pendingRevocation) facts.push(`<li class="warn">Revocation pending since ${esc(e.pendingRevocation.since)}: <code>${esc(e.pendingRevocation.hint ?? 'the old key')}</code> <code>${esc(e.pendingRevocation.fingerprint ?? '')}</code></li>`);
  if (e.interrupted) facts.push(`<li class="bad">Rotation ${esc(e.interrupted)} was interrupted: run <code>keyrot resume -e ${esc(e.env)}</code></li>`);
  if (e.lastVerify) facts.push(`<li class="${e.lastVerify.ok ? 'ok' : 'bad'}">Last verify ${esc(e.lastVerify.at)}: ${e.lastVerify.ok ? 'every target holds the key' : e.lastVerify.drift ? 'drift: targets hold different keys' : 'a problem'}</li>`);
  if (e.sharedWith.length) facts.push(`<li class="bad">Same key as ${esc(e.sharedWith.join(', '))}: use a separate key per environment</li>`);
  return facts.join('');
}

/** The key's age as a bar against its schedule's period (green within it, red past it). */
function ageHtml(e: EnvironmentReport): string {
  if (!e.key || !Number.isFinite(e.key.ageDays)) return '';
  const age = `${e.key.ageDays.toFixed(1)} days old`;
  if (!e.schedule) return `<p>${age}</p>`;
  const ratio = e.key.ageDays / e.schedule.periodDays;
  const colour = ratio > 1 ? '#cf222e' : ratio > 0.85 ? '#bf8700' : '#2da44e';
  return `<p>${age} of a ${e.schedule.periodDays.toFixed(0)}-day period</p><div class="age" role="img" aria-label="${(ratio * 100).toFixed(0)}% of the period"><div style="width:${Math.min(100, ratio * 100).toFixed(1)}%;background:${colour}"></div></div>`;
}

function rotationsTable(rows: RotationRow[]): string {
  if (!rows.length) return '<p>No rotation yet.</p>';
  const body = [...rows]
    .reverse()
    .map((r) => `<tr><td><code>${esc(r.id)}</code></td><td>${esc(r.mode)}</td><td>${esc(r.startedAt)}</td><td>${esc(r.endedAt ?? '')}</td><td class="${OUTCOME_CLASS[r.outcome] ?? ''}">${esc(r.outcome)}</td><td>${esc(r.revokedAt ?? '')}</td><td>${r.targets}</td></tr>`)
    .join('');
  return `<table><thead><tr><th>rotation</th><th>mode</th><th>started</th><th>ended</th><th>outcome</th><th>revoked</th><th>targets</th></tr></thead><tbody>${body}</tbody></table>`;
}

const OUTCOME_CLASS: Record<string, string> = { completed: 'ok', 'awaiting-revocation': 'warn', failed: 'bad', 'rolled-back': 'bad', interrupted: 'bad' };

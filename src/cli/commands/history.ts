import { readAudit } from '../../audit/audit-log.ts';
import { EXIT } from '../../engine/errors.ts';
import { resolveConfigPath, resolveStateDir, createOutFor, type CommonFlags } from '../context.ts';
import { dim, red, table } from '../output.ts';

/** The audit log, newest first; a broken hash chain is reported and exits 1. */
export async function history(flags: CommonFlags & { limit?: string }): Promise<number> {
  const out = createOutFor(flags);
  const stateDir = resolveStateDir(flags, resolveConfigPath(flags));
  const { entries, broken } = await readAudit(stateDir);
  const limit = Math.max(1, Number(flags.limit ?? 50) || 50);
  const shown = entries
    .filter((e) => !flags.env || e.env === flags.env)
    .reverse()
    .slice(0, limit);
  if (out.json) {
    out.result({ stateDir, intact: broken.length === 0, broken, entries: shown });
  } else if (!entries.length) {
    out.human(`No audit entries yet in ${stateDir}.`);
  } else {
    const rows = [['TIME', 'EVENT', 'ENV', 'ROTATION', 'DETAILS']];
    for (const e of shown) {
      rows.push([e.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), e.event, e.env ?? '', e.rotation ?? '', summarize(e.details)]);
    }
    out.human(table(rows, ''));
    out.human(dim(`${shown.length} of ${entries.length} entries, ${stateDir}/audit.ndjson`, out.color));
  }
  if (broken.length) {
    out.err(red(`The audit log's hash chain is BROKEN (entries were edited, removed or reordered):`, out.color));
    for (const b of broken) out.err(`  line ${b.line}: ${b.problem}`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

function summarize(d: Record<string, unknown> | undefined): string {
  if (!d) return '';
  return Object.entries(d)
    .filter(([, v]) => v !== undefined && v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ')
    .slice(0, 120);
}

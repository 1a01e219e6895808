import { readAudit } from '../../state/audit-log.ts';
import { EXIT } from '../../core/errors.ts';
import { existsSync } from 'node:fs';
import { loadInventory, selectEnvironment } from '../../inventory/load.ts';
import { openState } from '../../state/open.ts';
import { resolveConfigPath, resolveStateDir, createOutFor, usage, type CommonFlags } from '../context.ts';
import { dim, red, table } from '../output.ts';

/** The audit log, newest first; a broken hash chain is reported and exits 1. */
export async function history(flags: CommonFlags & { limit?: string }): Promise<number> {
  const out = createOutFor(flags);
  const limitText = String(flags.limit ?? 50);
  if (!/^[1-9][0-9]*$/.test(limitText)) usage(`-n ${limitText}: expected a positive whole number of entries`);
  const configPath = resolveConfigPath(flags);
  // The inventory says where the state lives (state: kubernetes); without one, the local directory.
  const inventory = existsSync(configPath) ? await loadInventory(configPath) : undefined;
  if (inventory && flags.env) selectEnvironment(inventory, flags.env); // a typo in -e is an error, not an empty log
  const state = await openState(inventory, resolveStateDir(flags, configPath));
  const stateDir = state.where;
  const { entries, broken } = await readAudit(state);
  const limit = Number(limitText);
  const shown = entries
    .filter((e) => !flags.env || e.env === flags.env)
    .reverse()
    .slice(0, limit);
  if (out.json) {
    out.result({ stateDir, intact: broken.length === 0, broken, entries: shown });
  } else if (!shown.length) {
    out.human(
      `No audit entries${flags.env && entries.length ? ` for environment "${flags.env}"` : ' yet'} in ${stateDir}.` +
        (inventory ? '' : ` (No inventory at ${configPath}: pass -c PATH if the state lives elsewhere.)`),
    );
  } else {
    const rows = [['TIME', 'EVENT', 'ENV', 'ROTATION', 'DETAILS']];
    for (const e of shown) {
      rows.push([e.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), e.event, e.env ?? '', e.rotation ?? '', summarize(e.details)]);
    }
    out.human(table(rows, ''));
    out.human(dim(`${shown.length} of ${entries.length} entries, ${state.kind === 'local' ? `${stateDir}/audit.ndjson` : stateDir}`, out.color));
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

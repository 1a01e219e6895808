import { existsSync } from 'node:fs';
import { EXIT, ExitError, TargetError } from '../../core/errors.ts';
import { loadInventory, type Inventory } from '../../inventory/load.ts';
import {
  EngineUnreachableError,
  expectedFilesOf,
  ImageNotFoundError,
  KIND_LABEL,
  loadKnownKeys,
  runScan,
  ScanUsageError,
  type Finding,
  type KnownKeys,
  type ScanResult,
} from '../../scan/index.ts';
import { createOutFor, resolveConfigPath, resolveStateDir, startReadingCommand, type CommonFlags } from '../context.ts';
import { bold, dim, green, red, type Out } from '../output.ts';
import type { Column } from '../table.ts';
import { plural } from '../../render/plural.ts';
import { keyrotCommand } from '../../render/command.ts';

const SCAN_COLUMNS: Column[] = [
  { header: 'LOCATION', min: 20 },
  { header: 'KIND', min: 8 },
  { header: 'KEY', fit: 'fixed' },
  { header: 'FINGERPRINT', fit: 'fixed' },
  { header: 'NOTE', fit: 'wrap', min: 20 },
];

export type ScanFlags = CommonFlags & { git?: boolean; image?: string[] | string };

/**
 * `keyrot scan [PATH...]`: OpenAI key formats and the fingerprints of the keys keyrot retired,
 * in files (default: the working tree), with --git the whole history, with --image a Docker
 * image's history and config. Exit 1 on a leak, 0 when clean, 2 on a bad path or image.
 */
export async function scan(flags: ScanFlags, paths: string[]): Promise<number> {
  startReadingCommand('scan', flags);
  const out = createOutFor(flags);
  const configPath = resolveConfigPath(flags);
  const stateDir = resolveStateDir(flags, configPath);

  // The inventory (optional): its dotenv/file targets hold the current key legitimately.
  let inventory: Inventory | undefined;
  if (existsSync(configPath)) {
    try {
      inventory = await loadInventory(configPath);
    } catch {
      out.info(dim(`note: ${configPath} is not a valid inventory: its dotenv/file targets are not recognised as expected places`, out.color));
    }
  }

  // Retired (and current) keys by fingerprint, from every environment's journal.
  let known: KnownKeys = new Map();
  try {
    const [{ openState }, { useFingerprintsOf }] = await Promise.all([import('../../state/open.ts'), import('../../state/trust.ts')]);
    const state = await openState(inventory, stateDir);
    // kind: generic: the journals hold fingerprints under the state key; candidates must get the same.
    if (inventory && !(await useFingerprintsOf(inventory.config.key.kind, state.trust, false))) {
      out.info(dim(`note: no state key at ${state.trust.keyWhere}: generic keys keyrot retired are not recognised by fingerprint`, out.color));
    }
    known = await loadKnownKeys(state);
  } catch (err) {
    out.info(dim(`note: cannot read the journals in ${stateDir} (${(err as Error).message}): retired keys are not recognised by fingerprint`, out.color));
  }

  const images = flags.image === undefined ? [] : Array.isArray(flags.image) ? flags.image : [flags.image];
  let result: ScanResult;
  try {
    result = await runScan({
      paths,
      git: Boolean(flags.git),
      images,
      known,
      expectedFiles: inventory ? expectedFilesOf(inventory) : undefined,
    });
  } catch (err) {
    if (err instanceof ScanUsageError || err instanceof ImageNotFoundError) throw new ExitError(EXIT.usage, err.message);
    if (err instanceof EngineUnreachableError) throw new ExitError(EXIT.failed, err.message);
    // A DOCKER_HOST keyrot cannot use (ssh://, TLS, not a URL).
    if (err instanceof TargetError && (err.kind === 'invalid' || err.kind === 'unsupported')) throw new ExitError(EXIT.usage, err.message);
    throw err;
  }

  if (out.json) {
    out.result({
      findings: result.findings,
      leaks: result.leaks,
      expected: result.expected,
      scanned: result.scanned,
      skipped: result.skipped,
    });
  }
  printHuman(out, result, { git: Boolean(flags.git), known: known.size, flags });
  return result.leaks > 0 ? EXIT.failed : EXIT.ok;
}

function printHuman(out: Out, r: ScanResult, ctx: { git: boolean; known: number; flags: CommonFlags }): void {
  const lines: string[] = [];
  const what = [plural(r.scanned.files, 'file')];
  if (ctx.git) what.push(plural(r.scanned.commits, 'commit'));
  if (r.scanned.images) what.push(plural(r.scanned.images, 'image'));
  const extra: string[] = [];
  if (r.scanned.binaries) extra.push(`${plural(r.scanned.binaries, 'binary file')} skipped`);
  if (r.skipped.length) extra.push(`${plural(r.skipped.length, 'file')} not scanned`);
  if (ctx.known) extra.push(`${plural(ctx.known, 'known key fingerprint')} checked`);
  lines.push(`Scanned ${what.join(', ')}${extra.length ? ` (${extra.join(', ')})` : ''}.`);

  if (r.findings.length) {
    lines.push('', out.table(SCAN_COLUMNS, r.findings.map((f) => row(f, out.color))));
  }
  if (r.skipped.length) {
    lines.push('', 'Not scanned:');
    for (const s of r.skipped.slice(0, 20)) lines.push(`  ${s.path}: ${s.reason}`);
    if (r.skipped.length > 20) lines.push(`  ... and ${r.skipped.length - 20} more (--json lists them all)`);
  }
  lines.push('');
  if (r.leaks) {
    const retired = r.findings.some((f) => f.leak && f.kind === 'retired');
    // One key in three files is one key to rotate, not three.
    const distinct = new Set(r.findings.filter((f) => f.leak).map((f) => f.fingerprint)).size;
    const where = r.leaks > distinct ? ` in ${plural(r.leaks, 'place')}` : '';
    lines.push(
      red(bold(`${plural(distinct, 'leaked key')} found${where}.`, out.color), out.color) +
        ` Treat each key as compromised: rotate it now (\`${keyrotCommand(ctx.flags, 'emergency')}\`), then remove it from the files` +
        (ctx.git ? ' and rewrite the history (git filter-repo), or accept that it stays there revoked' : '') +
        '.' +
        (retired ? ' A retired key found here must also be confirmed revoked in the provider dashboard.' : ''),
    );
  } else {
    lines.push(green('No leaked key found.', out.color));
  }
  if (r.expected) lines.push(dim(`${plural(r.expected, 'finding')} in the inventory's own dotenv/file targets (expected, not a leak).`, out.color));
  out.human(lines.join('\n'));
}

function row(f: Finding, color: boolean): string[] {
  const kind = KIND_LABEL[f.kind];
  return [
    f.leak ? red(f.location, color) : dim(f.location, color),
    f.leak ? kind : dim(kind, color),
    f.hint,
    f.fingerprint,
    f.note,
  ];
}

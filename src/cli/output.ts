import { printable, printableJson } from '../core/printable.ts';
import { redactValue } from '../core/redact.ts';
import type { RotationReport } from '../machine/outcome.ts';
import { withUserFlags, type CommandFlags } from '../render/command.ts';
import { renderTable, type Column, type TableOptions } from './table.ts';
import { renderNotices } from '../render/notices.ts';

/** Where human text goes: stderr when --json owns stdout, else stdout. */
export interface Out {
  json: boolean;
  /** Human text (results): stdout, or stderr under --json. */
  human(text: string): void;
  /** Diagnostics and progress: always stderr. */
  err(text: string): void;
  /** Progress and notes (stderr): left out under --quiet. */
  info(text: string): void;
  /** The machine-readable result: stdout, once. */
  result(value: unknown): void;
  /** A table sized to the screen (cli/table.ts). */
  table(columns: Column[], rows: string[][], opts?: Omit<TableOptions, 'width'>): string;
  tty: boolean;
  color: boolean;
  quiet: boolean;
  verbose: boolean;
  /** The screen's width for tables; undefined: print in full (--wide, or not a terminal). */
  width: number | undefined;
}

export interface OutOptions {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  wide?: boolean;
}

/**
 * Colour on a stream: FORCE_COLOR forces it (https://force-color.org; "0"/"false" turn it off, as
 * Node reads it), NO_COLOR turns it off (https://no-color.org), else only on a terminal.
 */
export function colorFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  if (env.NO_COLOR) return false;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

/** The width tables fit: none with --wide; COLUMNS when set; the terminal's; none when not a terminal. */
export function screenWidth(stream: { isTTY?: boolean; columns?: number }, wide: boolean, env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (wide) return undefined;
  const columns = Number(env.COLUMNS);
  if (Number.isInteger(columns) && columns > 0) return columns;
  return stream.isTTY && stream.columns ? stream.columns : undefined;
}

export function createOut(options: boolean | OutOptions): Out {
  const o: OutOptions = typeof options === 'boolean' ? { json: options } : options;
  const json = Boolean(o.json);
  const tty = Boolean(process.stderr.isTTY);
  const humanStream = json ? process.stderr : process.stdout;
  const color = colorFor(humanStream);
  const quiet = Boolean(o.quiet) || logLevelAlias() === 'quiet';
  const verbose = !quiet && (Boolean(o.verbose) || logLevelAlias() === 'verbose');
  const width = screenWidth(humanStream, Boolean(o.wide));
  const say = (stream: NodeJS.WriteStream, t: string) => stream.write(withUserFlags(printable(t)) + '\n');
  return {
    json,
    tty,
    color,
    quiet,
    verbose,
    width,
    // The output boundary: every line keyrot prints passes here (or through reportError).
    human: (t) => say(humanStream, t),
    err: (t) => say(process.stderr, t),
    info: (t) => (quiet ? undefined : say(process.stderr, t)),
    result: (v) => process.stdout.write(printableJson(JSON.stringify(redactValue(v), null, 2)) + '\n'),
    table: (columns, rows, opts) => renderTable(columns, rows, { ...opts, width }),
  };
}

/** KEYROT_LOG_LEVEL, the older way to ask: debug = --verbose, warn or error = --quiet. */
export function logLevelAlias(env: NodeJS.ProcessEnv = process.env): 'verbose' | 'quiet' | undefined {
  const level = env.KEYROT_LOG_LEVEL?.toLowerCase();
  return level === 'debug' ? 'verbose' : level === 'warn' || level === 'error' ? 'quiet' : undefined;
}

const c = (code: number) => (s: string, on: boolean) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
export const green = c(32);
export const red = c(31);
export const yellow = c(33);
export const dim = c(2);
export const bold = c(1);

/** Shortens a long cell for a table, keeping both ends (`--json` has the full text). */
export function clip(text: string, max = 48): string {
  if (text.length <= max) return text;
  const keep = max - 1;
  return `${text.slice(0, Math.ceil(keep / 2))}…${text.slice(text.length - Math.floor(keep / 2))}`;
}

/** A plain aligned table, in full (the live display's; results use Out.table, which fits the screen). */
export function table(rows: string[][], indent = '  '): string {
  if (!rows.length) return '';
  return renderTable(rows[0]!.map(() => ({ header: '' })), rows, { indent, header: false, keepEmpty: true });
}

const HOLDS_LABEL = {
  new: 'new key',
  old: 'old key',
  absent: 'nothing (as before)',
  unknown: 'UNKNOWN',
  other: 'another key',
} as const;

const REPORT_COLUMNS: Column[] = [
  { header: 'TARGET' },
  { header: 'TYPE' },
  { header: 'HOLDS NOW', fit: 'fixed' },
  { header: 'VERIFIED BY', fit: 'fixed' },
  { header: 'PROBLEM', fit: 'wrap', min: 24 },
];

/** The per-target table that ends every rotation: what each target holds now. */
export function printRotationReport(out: Out, rep: RotationReport, flags: CommandFlags, extra?: Record<string, unknown>): void {
  const messages = renderNotices(rep.notices, flags);
  if (out.json) out.result({ ...rep, messages, ...extra });
  const lines: string[] = [];
  const title =
    rep.outcome === 'awaiting-revocation'
      ? green('Rotation done: awaiting revocation of the old key', out.color)
      : rep.outcome === 'completed'
        ? green('Rotation complete', out.color)
        : rep.outcome === 'rolled-back'
          ? yellow('Rotation undone', out.color)
          : red(`Rotation ${rep.outcome}`, out.color);
  lines.push('', `${title}${rep.rotation ? dim(`  ${rep.rotation}`, out.color) : ''}`);
  if (rep.old || rep.new) {
    lines.push(
      `  old key ${rep.old ? `${rep.old.hint} (${rep.old.fingerprint})` : '—'}   new key ${rep.new ? `${rep.new.hint} (${rep.new.fingerprint})` : '—'}`,
    );
  }
  if (rep.targets.length) {
    const rows = rep.targets.map((t) => {
      const holds = HOLDS_LABEL[t.holds];
      return [
        t.name,
        t.type,
        t.holds === 'new' ? green(holds, out.color) : t.holds === 'unknown' ? red(holds, out.color) : holds,
        t.verifiedBy ?? '—',
        t.error ? red(t.error, out.color) : '',
      ];
    });
    lines.push(out.table(REPORT_COLUMNS, rows));
  }
  if (messages.length) lines.push('', ...messages);
  out.human(lines.join('\n'));
}

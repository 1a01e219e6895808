/**
 * Plain aligned tables (no borders: easy to read in a terminal and in a CI log) that fit the
 * terminal: columns give way by their kind when the table is wider than the screen, columns with
 * nothing in them are left out, and `--wide` (no width) prints everything in full.
 */

/** How a column gives way when the table is too wide. */
export type Fit =
  /** Never narrower than its content: short fixed-shape values (fingerprints, states). */
  | 'fixed'
  /** Shortened in the middle, keeping both ends (names, paths: the end tells them apart). */
  | 'clip'
  /** Continued on the next lines (sentences: details, problems). */
  | 'wrap';

export interface Column {
  header: string;
  fit?: Fit;
  /** The narrowest it may get (default: 12 for wrap, 10 for clip). */
  min?: number;
  /** Columns give way in this order, lowest first (default 1); among equals, the widest first. */
  priority?: number;
  /** Left out (lowest priority first) when the table cannot fit otherwise; a note says so. */
  optional?: boolean;
}

export interface TableOptions {
  /** The screen's width; undefined: no limit (`--wide`, or not a terminal). */
  width?: number;
  indent?: string;
  /** Keep a column even when every cell is empty (default: left out). */
  keepEmpty?: boolean;
  /** Print the header row (default true). */
  header?: boolean;
}

const GAP = 2;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

/** Columns a code point takes on a terminal: 2 for East Asian wide and emoji, else 1. */
function charWidth(cp: number): number {
  if (cp < 0x1100) return 1;
  const wide =
    (cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

/** The width a string takes on screen (colour codes take none). */
export function visibleWidth(s: string): number {
  let w = 0;
  for (const ch of stripAnsi(s)) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/** Cells that say nothing: a column of only these is left out. */
const isEmpty = (cell: string) => stripAnsi(cell).trim() === '' || stripAnsi(cell).trim() === '—';

/** A cell wholly in one colour keeps it when cut; mixed colours are cut as plain text. */
function splitColour(cell: string): { pre: string; text: string; post: string } {
  const m = /^((?:\x1b\[[0-9;]*m)+)([^\x1b]*)(\x1b\[0m)$/.exec(cell);
  return m ? { pre: m[1]!, text: m[2]!, post: m[3]! } : { pre: '', text: stripAnsi(cell), post: '' };
}

/** The first `w` columns' worth of `text` (plain). */
function head(text: string, w: number): string {
  let out = '';
  let used = 0;
  for (const ch of text) {
    const cw = charWidth(ch.codePointAt(0)!);
    if (used + cw > w) break;
    out += ch;
    used += cw;
  }
  return out;
}

const tail = (text: string, w: number) => [...head([...text].reverse().join(''), w)].reverse().join('');

/** Shortens a cell to `w` columns in the middle, keeping both ends. */
export function clipTo(cell: string, w: number): string {
  if (visibleWidth(cell) <= w) return cell;
  const { pre, text, post } = splitColour(cell);
  if (w <= 1) return pre + head(text, w) + post;
  const keep = w - 1;
  return `${pre}${head(text, Math.ceil(keep / 2))}…${tail(text, Math.floor(keep / 2))}${post}`;
}

/**
 * A cell as lines of at most `w` columns, broken between words (a longer word is cut). A command in
 * backticks is never broken: copied from the screen, it must still be one command.
 */
export function wrapTo(cell: string, w: number): string[] {
  if (visibleWidth(cell) <= w) return [cell];
  const { pre, text, post } = splitColour(cell);
  const lines: string[] = [];
  let line = '';
  for (const word of text.match(/\S*`[^`]*`\S*|\S+/g) ?? []) {
    let rest = word;
    while (visibleWidth(rest) > w && !rest.includes('`')) {
      if (line) lines.push(line);
      line = '';
      const cut = head(rest, w);
      lines.push(cut);
      rest = rest.slice(cut.length);
    }
    if (!rest) continue;
    if (line && visibleWidth(line) + 1 + visibleWidth(rest) > w) {
      lines.push(line);
      line = rest;
    } else {
      line = line ? `${line} ${rest}` : rest;
    }
  }
  if (line) lines.push(line);
  return lines.map((l) => pre + l + post);
}

const minOf = (c: Column) => c.min ?? (c.fit === 'wrap' ? 12 : 10);

/** Widths that fit `room`, taking from wrapping columns first, then the widest clipping ones. */
export function fitWidths(columns: Column[], natural: number[], room: number | undefined): number[] {
  const widths = [...natural];
  if (room === undefined) return widths;
  const total = () => totalWidth(widths);
  const priority = (i: number) => columns[i]!.priority ?? 1;
  for (const kind of ['wrap', 'clip'] as const) {
    while (total() > room) {
      let pick = -1;
      columns.forEach((c, i) => {
        const floor = Math.min(natural[i]!, Math.max(minOf(c), visibleWidth(c.header)));
        if ((c.fit ?? 'clip') !== kind || widths[i]! <= floor) return;
        if (pick < 0 || priority(i) < priority(pick) || (priority(i) === priority(pick) && widths[i]! > widths[pick]!)) pick = i;
      });
      if (pick < 0) break;
      widths[pick]!--;
    }
  }
  return widths;
}

const totalWidth = (widths: number[]) => widths.reduce((a, b) => a + b, 0) + GAP * (widths.length - 1);

/** The table as text; columns whose cells are all empty are left out unless `keepEmpty`. */
export function renderTable(columns: Column[], rows: string[][], opts: TableOptions = {}): string {
  const indent = opts.indent ?? '  ';
  const showHeader = opts.header ?? true;
  let keep = columns.map((_, i) => opts.keepEmpty || rows.some((r) => !isEmpty(r[i] ?? '')));
  const room = opts.width === undefined ? undefined : opts.width - visibleWidth(indent);
  const layout = () => {
    const cols = columns.filter((_, i) => keep[i]);
    const body = rows.map((r) => r.filter((_, i) => keep[i]).map((cell) => cell ?? ''));
    const all = showHeader ? [cols.map((c) => c.header), ...body] : body;
    const natural = cols.map((_, i) => Math.max(0, ...all.map((r) => visibleWidth(r[i]!))));
    return { cols, all, widths: fitWidths(cols, natural, room) };
  };
  let l = layout();
  // Still too wide: leave out the optional columns, least needed first, and say so.
  const left: string[] = [];
  while (room !== undefined && totalWidth(l.widths) > room) {
    const candidates = columns.map((c, i) => ({ c, i })).filter(({ c, i }) => keep[i] && c.optional);
    if (!candidates.length) break;
    const drop = candidates.sort((a, b) => (a.c.priority ?? 1) - (b.c.priority ?? 1))[0]!;
    keep = keep.map((k, i) => k && i !== drop.i);
    left.push(drop.c.header);
    l = layout();
  }
  if (!l.all.length || !l.cols.length) return '';
  const out = l.all.flatMap((r) => renderRow(l.cols, r, l.widths, indent));
  if (left.length) out.push(`${indent}(${left.join(', ')} left out to fit the terminal: --wide shows ${left.length === 1 ? 'it' : 'them'})`);
  return out.join('\n');
}

/** One row as screen lines: clipped cells, wrapped cells continued below, columns aligned. */
function renderRow(cols: Column[], row: string[], widths: number[], indent: string): string[] {
  const cells = row.map((cell, i) => ((cols[i]!.fit ?? 'clip') === 'wrap' ? wrapTo(cell, widths[i]!) : [clipTo(cell, widths[i]!)]));
  const height = Math.max(...cells.map((c) => c.length));
  const lines: string[] = [];
  for (let line = 0; line < height; line++) {
    const parts = cells.map((c, i) => {
      const text = c[line] ?? '';
      return i === cells.length - 1 ? text : text + ' '.repeat(Math.max(0, widths[i]! - visibleWidth(text)));
    });
    lines.push((indent + parts.join(' '.repeat(GAP))).trimEnd());
  }
  return lines;
}

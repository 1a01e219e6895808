/**
 * A byte-preserving editor for .env files. keyrot changes one variable's value and nothing else:
 * comments, order, blank lines, quoting style, `export ` prefixes, CRLF line endings and every
 * other variable stay byte-for-byte as they were.
 *
 * Grammar followed (the common subset of dotenv, docker compose and shells):
 *   [export ]NAME = value [# comment]
 *   value: unquoted (ends at ` #` or end of line), 'single' (literal), "double" (\" \\ \n escapes,
 *   may span lines) or `backtick`.
 */
export interface Assignment {
  name: string;
  /** Offsets in the text of the value as written (quotes included). */
  valueStart: number;
  valueEnd: number;
  quote: '' | '"' | "'" | '`';
  /** The decoded value. */
  value: string;
  /** Offsets of the whole line(s), line ending included, for removal. */
  lineStart: number;
  lineEnd: number;
}

// A UTF-8 byte order mark (Windows editors) may precede the first line's name.
const LINE_RE = /^(\uFEFF?[ \t]*)(export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)([ \t]*=[ \t]*)/;

export function parseDotenv(text: string): Assignment[] {
  const out: Assignment[] = [];
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const lineEndNoNl = nl < 0 ? text.length : nl;
    const line = text.slice(pos, lineEndNoNl);
    const m = LINE_RE.exec(line);
    if (!m) {
      pos = nl < 0 ? text.length : nl + 1;
      continue;
    }
    const name = m[3]!;
    const vStart = pos + m[0].length;
    const first = text[vStart];
    if (first === '"' || first === "'" || first === '`') {
      // Find the closing quote, possibly on a later line ("double" values may span lines).
      let i = vStart + 1;
      let closed = -1;
      while (i < text.length) {
        const ch = text[i]!;
        if (first === '"' && ch === '\\') {
          i += 2;
          continue;
        }
        if (ch === first) {
          closed = i;
          break;
        }
        if (ch === '\n' && first !== '"') break; // single/backtick: one line only
        i++;
      }
      if (closed >= 0) {
        const raw = text.slice(vStart + 1, closed);
        const value = first === '"' ? unescapeDouble(raw) : raw;
        const endNl = text.indexOf('\n', closed);
        const lineEnd = endNl < 0 ? text.length : endNl + 1;
        out.push({ name, valueStart: vStart, valueEnd: closed + 1, quote: first, value, lineStart: pos, lineEnd });
        pos = lineEnd;
        continue;
      }
      // Unterminated quote: treat as an unquoted value to the end of the line.
    }
    let vEnd = lineEndNoNl;
    if (text[vEnd - 1] === '\r') vEnd--;
    const rest = text.slice(vStart, vEnd);
    const hash = rest.search(/[ \t]#/);
    let valueText = hash >= 0 ? rest.slice(0, hash) : rest;
    if (rest.startsWith('#')) valueText = '';
    valueText = valueText.replace(/[ \t]+$/, '');
    out.push({
      name,
      valueStart: vStart,
      valueEnd: vStart + valueText.length,
      quote: '',
      value: valueText,
      lineStart: pos,
      lineEnd: nl < 0 ? text.length : nl + 1,
    });
    pos = nl < 0 ? text.length : nl + 1;
  }
  return out;
}

function unescapeDouble(raw: string): string {
  return raw.replace(/\\([\\"nrt$`])/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c] ?? c);
}

/** Writes `value` in the same quoting style the file used, or the plainest safe one. */
export function encodeValue(value: string, quote: Assignment['quote']): string {
  const plainSafe = /^[A-Za-z0-9_\-.:/+=@,%~]*$/.test(value);
  if (quote === "'" && !value.includes("'") && !value.includes('\n')) return `'${value}'`;
  if (quote === '`' && !value.includes('`') && !value.includes('\n')) return `\`${value}\``;
  if (quote === '' && plainSafe) return value;
  return `"${value.replace(/[\\"$`]/g, (c) => '\\' + c).replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

/** The value the file gives NAME (the last assignment wins, as with dotenv and compose), or null. */
export function getVar(text: string, name: string): string | null {
  const all = parseDotenv(text).filter((a) => a.name === name);
  return all.length ? all[all.length - 1]!.value : null;
}

/** Sets NAME everywhere it is assigned (so whichever wins holds the value), or appends it. */
export function setVar(text: string, name: string, value: string): string {
  const all = parseDotenv(text).filter((a) => a.name === name);
  if (all.length === 0) {
    const eol = text.includes('\r\n') ? '\r\n' : '\n';
    const sep = text.length === 0 || text.endsWith('\n') ? '' : eol;
    return `${text}${sep}${name}=${encodeValue(value, '')}${eol}`;
  }
  let out = text;
  for (const a of [...all].reverse()) {
    let encoded = encodeValue(value, a.quote);
    // `NAME=#comment` / `NAME= # comment`: an empty value right before the comment. Keep a blank
    // between the new value and the `#`, or the comment would become part of the value.
    if (a.quote === '' && encoded !== '' && out[a.valueEnd] === '#') encoded += ' ';
    out = out.slice(0, a.valueStart) + encoded + out.slice(a.valueEnd);
  }
  return out;
}

/** Removes every assignment of NAME (restore of a variable keyrot added). */
export function removeVar(text: string, name: string): string {
  let out = text;
  for (const a of parseDotenv(text).filter((x) => x.name === name).reverse()) {
    out = out.slice(0, a.lineStart) + out.slice(a.lineEnd);
  }
  return out;
}

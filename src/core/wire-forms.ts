/**
 * Finds known values (keys, tokens) in text in every form text can carry them:
 * - clear, base64 or base64url at each of the three byte alignments a value can have inside a
 *   longer encoded payload (Kubernetes Secret data, Google payloads, Docker secret Data, a Basic
 *   credential): only the characters that depend on the value's bytes alone (RFC 4648 §4-5: a
 *   character carries 6 bits, so the first and last ones mix in the neighbouring bytes), and hex
 *   in either case;
 * - each character of those spelled as itself, percent-encoded (%2D, RFC 3986 §2.1) or
 *   JSON-escaped (\u002d, \", RFC 8259 §7), with line breaks and indentation anywhere (a value
 *   wrapped by a terminal, a log shipper or a MIME encoder, RFC 2045 §6.8).
 *
 * One linear pass makes a normalised view of the text (escapes decoded, line breaks dropped) that
 * remembers where each of its characters came from; the forms are then plain substrings of it.
 */

export interface Found {
  start: number;
  end: number;
  value: string;
}

/** A view of the text in which forms are plain substrings: view[i] came from text.slice(start(i), end(i)). */
interface View {
  view: string;
  /** The view with hex digits in lower case (same length). */
  hexView: string;
  start(i: number): number;
  end(i: number): number;
}

/** A line break and the indentation after it (a wrapped value). */
const BREAK = String.raw`\r?\n[ \t]*|\r`;
/**
 * The normalisations, each a pattern of the tokens it rewrites: line breaks alone (dropped), with
 * JSON's escapes (\n dropped; \uXXXX, \", \\, \/ decoded), with percent-escapes of ASCII
 * characters decoded. Separate views, so that a value that itself holds a "%41" or a backslash is
 * still found in the spelling that keeps it.
 */
const NORMALISATIONS = [
  new RegExp(BREAK, 'g'),
  new RegExp(String.raw`${BREAK}|\\r\\n[ \t]*|\\n[ \t]*|\\u[0-9a-fA-F]{4}|\\["\\/]`, 'g'),
  new RegExp(String.raw`${BREAK}|%[0-7][0-9a-fA-F]`, 'g'),
];

function decodeToken(token: string): string {
  if (token.startsWith('%')) return String.fromCharCode(parseInt(token.slice(1), 16));
  if (token.startsWith('\\u')) return String.fromCharCode(parseInt(token.slice(2), 16));
  if (token.length === 2 && token.startsWith('\\') && token !== '\\n') return token[1]!;
  return ''; // a line break
}

function makeView(view: string, start: (i: number) => number, end: (i: number) => number): View {
  return { view, hexView: view.replace(/[A-F]/g, (c) => c.toLowerCase()), start, end };
}

/** A run of the view: `length` characters copied from text[t...] (plain), or one decoded from text[t, t + tokenLength). */
interface Segment {
  v: number;
  t: number;
  length: number;
  tokenLength?: number;
}

/**
 * The text with `tokens` rewritten, or undefined when it has none (the view would be the text).
 * Linear: plain runs are copied whole, and view positions map back through the segments.
 */
function normalise(text: string, tokens: RegExp): View | undefined {
  const segments: Segment[] = [];
  const parts: string[] = [];
  let v = 0;
  let last = 0;
  const plain = (from: number, to: number) => {
    if (to <= from) return;
    segments.push({ v, t: from, length: to - from });
    parts.push(text.slice(from, to));
    v += to - from;
  };
  tokens.lastIndex = 0;
  for (let m = tokens.exec(text); m; m = tokens.exec(text)) {
    plain(last, m.index);
    const ch = decodeToken(m[0]);
    if (ch) {
      segments.push({ v, t: m.index, length: 1, tokenLength: m[0].length });
      parts.push(ch);
      v++;
    }
    last = m.index + m[0].length;
  }
  if (last === 0) return undefined;
  plain(last, text.length);
  const segmentAt = (i: number): Segment => {
    let lo = 0;
    let hi = segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segments[mid]!.v <= i) lo = mid;
      else hi = mid - 1;
    }
    return segments[lo]!;
  };
  const start = (i: number) => {
    const seg = segmentAt(i);
    return seg.tokenLength === undefined ? seg.t + (i - seg.v) : seg.t;
  };
  const end = (i: number) => {
    const seg = segmentAt(i);
    return seg.tokenLength === undefined ? seg.t + (i - seg.v) + 1 : seg.t + seg.tokenLength;
  };
  return makeView(parts.join(''), start, end);
}

const formsCache = new Map<string, { exact: string[]; hex: string }>();

/** The forms of a value other than its characters' spellings: clear, base64 cores, hex. */
function formsOf(value: string): { exact: string[]; hex: string } {
  let forms = formsCache.get(value);
  if (!forms) {
    const bytes = Buffer.from(value, 'utf8');
    const exact = new Set([value]);
    for (const offset of [0, 1, 2]) {
      const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
      const first = Math.ceil((offset * 8) / 6); // the first character made of the value's bits only
      const end = Math.floor(((offset + bytes.length) * 8) / 6); // past the last one
      for (const alphabet of ['base64', 'base64url'] as const) {
        const core = padded.toString(alphabet).slice(first, end);
        if (core.length >= 8) exact.add(core);
      }
    }
    forms = { exact: [...exact], hex: bytes.toString('hex') };
    formsCache.set(value, forms);
  }
  return forms;
}

/**
 * Every occurrence of every value (pass the longest first: a value containing another is taken
 * whole), as non-overlapping spans of `text`, in order. The text is searched as it is (a value
 * with a "%41" or a backslash in it) and normalised.
 */
export function findKnownValues(text: string, values: readonly string[]): Found[] {
  if (!values.length || !text) return [];
  const views = [makeView(text, (i) => i, (i) => i + 1), ...NORMALISATIONS.flatMap((tokens) => normalise(text, tokens) ?? [])];
  const taken = new Uint8Array(text.length);
  const spans: Found[] = [];
  const claim = (v: View, at: number, length: number, value: string) => {
    const start = v.start(at);
    const end = v.end(at + length - 1);
    if (taken.subarray(start, end).some((t) => t === 1)) return;
    taken.fill(1, start, end);
    spans.push({ start, end, value });
  };
  const search = (v: View, haystack: string, form: string, value: string) => {
    for (let at = haystack.indexOf(form); at >= 0; at = haystack.indexOf(form, at + form.length)) claim(v, at, form.length, value);
  };
  for (const value of values) {
    const { exact, hex } = formsOf(value);
    for (const v of views) {
      for (const form of exact) search(v, v.view, form, value);
      search(v, v.hexView, hex, value);
    }
  }
  return spans.sort((a, b) => a.start - b.start);
}

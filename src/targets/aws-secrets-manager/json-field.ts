/**
 * A formatting-preserving editor for one string field of a JSON object (an AWS "key/value"
 * secret such as `{"OPENAI_API_KEY":"sk-...","DB_URL":"..."}`).
 *
 * `JSON.parse` + `JSON.stringify` would rewrite every other field's bytes (key order, indentation,
 * spacing, `\u00e9` vs `é`, `\/`), and consumers that hash or diff the secret would see a change
 * nobody made. So we locate the byte span of the field's string literal and replace only that
 * span; everything else is copied through untouched.
 */

export class JsonFieldError extends Error {
  override name = 'JsonFieldError';
}

interface Member {
  key: string;
  /** Span of the key literal (quotes included). */
  keyStart: number;
  keyEnd: number;
  /** Span of the value (a string literal's quotes included). */
  valueStart: number;
  valueEnd: number;
}

interface ObjectLayout {
  open: number;
  close: number;
  members: Member[];
}

const WS = new Set([' ', '\t', '\n', '\r']);

function skipWs(text: string, i: number): number {
  while (i < text.length && WS.has(text[i]!)) i++;
  return i;
}

/** End index (exclusive) of the string literal starting at `i` (text[i] === '"'). */
function scanString(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length) {
    const c = text[j]!;
    if (c === '\\') j += 2;
    else if (c === '"') return j + 1;
    else j++;
  }
  throw new JsonFieldError('unterminated string');
}

/** End index (exclusive) of any JSON value starting at `i`. */
function scanValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return scanString(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    let j = i;
    while (j < text.length) {
      const d = text[j]!;
      if (d === '"') {
        j = scanString(text, j);
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return j + 1;
      }
      j++;
    }
    throw new JsonFieldError('unbalanced brackets');
  }
  // number, true, false, null: up to the next delimiter
  let j = i;
  while (j < text.length && !WS.has(text[j]!) && text[j] !== ',' && text[j] !== '}' && text[j] !== ']') j++;
  if (j === i) throw new JsonFieldError(`unexpected character at offset ${i}`);
  return j;
}

/** Validates with JSON.parse (the authority on what is JSON), then maps the top-level members. */
function layout(text: string): ObjectLayout {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new JsonFieldError('the secret value is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new JsonFieldError('the secret value is JSON but not an object');
  }
  const open = skipWs(text, 0);
  const members: Member[] = [];
  let i = skipWs(text, open + 1);
  if (text[i] === '}') return { open, close: i, members };
  for (;;) {
    const keyStart = i;
    const keyEnd = scanString(text, i);
    const key = JSON.parse(text.slice(keyStart, keyEnd)) as string;
    i = skipWs(text, keyEnd);
    i = skipWs(text, i + 1); // ':'
    const valueStart = i;
    const valueEnd = scanValue(text, i);
    members.push({ key, keyStart, keyEnd, valueStart, valueEnd });
    i = skipWs(text, valueEnd);
    if (text[i] === '}') return { open, close: i, members };
    i = skipWs(text, i + 1); // ','
  }
}

/**
 * The field's string value; null when the field is absent. JSON.parse semantics: with duplicate
 * keys the last one wins. Throws JsonFieldError when the text is not a JSON object or the field
 * is not a string.
 */
export function getJsonField(text: string, field: string): string | null {
  const l = layout(text);
  const hits = l.members.filter((m) => m.key === field);
  const last = hits.at(-1);
  if (!last) return null;
  const raw = text.slice(last.valueStart, last.valueEnd);
  const value: unknown = JSON.parse(raw);
  if (typeof value !== 'string') {
    throw new JsonFieldError(`field "${field}" holds a ${value === null ? 'null' : typeof value}, not a string`);
  }
  return value;
}

/**
 * Sets `field` to `value`, changing nothing but that string literal. Every occurrence of a
 * duplicated key is replaced (so every JSON reader sees the same key). An absent field is
 * appended as the last member, copying the spacing of the existing members.
 */
export function setJsonField(text: string, field: string, value: string): string {
  const l = layout(text);
  const literal = JSON.stringify(value);
  const hits = l.members.filter((m) => m.key === field);
  if (hits.length > 0) {
    for (const m of hits) {
      const current: unknown = JSON.parse(text.slice(m.valueStart, m.valueEnd));
      if (typeof current !== 'string') {
        throw new JsonFieldError(`field "${field}" holds a ${current === null ? 'null' : typeof current}, not a string`);
      }
    }
    let out = text;
    // Right to left so earlier offsets stay valid.
    for (const m of [...hits].reverse()) {
      if (JSON.parse(out.slice(m.valueStart, m.valueEnd)) === value) continue; // keep its exact escaping
      out = out.slice(0, m.valueStart) + literal + out.slice(m.valueEnd);
    }
    return out;
  }
  const keyLiteral = JSON.stringify(field);
  const last = l.members.at(-1);
  if (!last) {
    // `{}` or `{\n}`: put the member right after the brace, keeping whatever whitespace was inside.
    return text.slice(0, l.open + 1) + `${keyLiteral}:${literal}` + text.slice(l.open + 1);
  }
  // Copy the layout of the last member: the whitespace before its key and around its colon.
  const prev = l.members.at(-2);
  const beforeKeyFrom = prev ? text.indexOf(',', prev.valueEnd) + 1 : l.open + 1;
  const indent = text.slice(beforeKeyFrom, last.keyStart);
  const colon = text.slice(last.keyEnd, last.valueStart);
  return text.slice(0, last.valueEnd) + `,${indent}${keyLiteral}${colon}${literal}` + text.slice(last.valueEnd);
}

/** A new JSON object holding only the field (secret without a value yet). */
export function newJsonWithField(field: string, value: string): string {
  return JSON.stringify({ [field]: value });
}

import type { StateKey } from './state-key.ts';

/**
 * Sealed lines: how the journal and the audit log are authenticated.
 *
 * A sealed line is the entry's JSON with two members appended, `"kid"` (which state key) and
 * `"mac"`: HMAC-SHA256 under the state key of the stream's name, the previous sealed line's MAC
 * and the entry's JSON text as written. So the MAC covers the exact bytes on disk (nothing is
 * re-serialised to check it), a line copied into another stream fails, and a line removed,
 * reordered or inserted breaks the line after it. Without the key none of it can be recomputed.
 *
 * Lines written before authentication existed carry no MAC: they are accepted only before the
 * first sealed line, and reported as not verifiable.
 */

const SEAL_RE = /,"kid":"([0-9a-f]{8})","mac":"([0-9a-f]{64})"\}$/;
const PURPOSE = 'keyrot-line';

export interface Unsealed {
  /** The entry's JSON as written, without kid and mac. */
  body: string;
  kid: string;
  mac: string;
}

export function unseal(line: string): Unsealed | null {
  const m = SEAL_RE.exec(line);
  if (!m) return null;
  return { body: `${line.slice(0, m.index)}}`, kid: m[1]!, mac: m[2]! };
}

function macFor(key: StateKey, stream: string, prev: string, body: string): string {
  return key.mac(PURPOSE, `${stream}\n${prev}\n${body}`);
}

/** The MAC the next line chains to: the last sealed line's ('' when there is none). */
export function lastMac(lines: readonly string[]): string {
  for (let i = lines.length - 1; i >= 0; i--) {
    const u = unseal(lines[i]!);
    if (u) return u.mac;
  }
  return '';
}

/** Seals a JSON object text (`{...}`, not empty) as the next line of `stream`. */
export function seal(key: StateKey, stream: string, lines: readonly string[], body: string): { line: string; mac: string } {
  return sealAfter(key, stream, lastMac(lines), body);
}

/** Seals `body` as the line after the one whose MAC is `prev` ('' for the first sealed line). */
export function sealAfter(key: StateKey, stream: string, prev: string, body: string): { line: string; mac: string } {
  if (!body.startsWith('{') || !body.endsWith('}') || body === '{}') throw new TypeError('seal: expected a non-empty JSON object');
  const mac = macFor(key, stream, prev, body);
  return { line: `${body.slice(0, -1)},"kid":"${key.id}","mac":"${mac}"}`, mac };
}

export type LineStatus = 'ok' | 'legacy' | 'torn' | 'bad';

export interface CheckedLine {
  /** 1-based, among non-empty lines. */
  line: number;
  status: LineStatus;
  /** The parsed entry (without kid and mac); absent when torn. */
  value?: Record<string, unknown>;
  mac?: string;
  /** Why the line is bad. */
  problem?: string;
}

/**
 * Checks every line of a stream: `ok` (sealed, verifies), `legacy` (no MAC, before any sealed
 * line), `torn` (not JSON: a crash mid-append; skipped, as readers always did), `bad` (a MAC that
 * fails, another key, no key to check with, or no MAC after sealed lines).
 */
export function checkLines(lines: readonly string[], key: StateKey | null, stream: string, keyWhere: string): CheckedLine[] {
  const out: CheckedLine[] = [];
  let prev = '';
  let sealedSeen = false;
  lines.forEach((text, i) => {
    const line = i + 1;
    const u = unseal(text);
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(u ? u.body : text) as Record<string, unknown>;
      if (typeof value !== 'object' || value === null) throw new Error('not an object');
    } catch {
      out.push({ line, status: 'torn' });
      return;
    }
    if (!u) {
      out.push(
        sealedSeen
          ? { line, status: 'bad', value, problem: 'carries no MAC but follows authenticated lines: it was inserted, or its MAC was stripped' }
          : { line, status: 'legacy', value },
      );
      return;
    }
    sealedSeen = true;
    let problem: string | undefined;
    if (!key) problem = `was authenticated with state key ${u.kid}, but there is no state key here (${keyWhere})`;
    else if (u.kid !== key.id) problem = `was authenticated with another state key (${u.kid}; the key here, ${key.where}, is ${key.id})`;
    else if (macFor(key, stream, prev, u.body) !== u.mac) problem = 'fails authentication: it was edited, or a line before it was removed, reordered or inserted';
    out.push(problem ? { line, status: 'bad', value, mac: u.mac, problem } : { line, status: 'ok', value, mac: u.mac });
    prev = u.mac;
  });
  return out;
}

/** "entries 1–40" / "entry 3": consecutive line numbers as ranges. */
export function ranges(numbers: readonly number[], noun: [string, string]): string {
  const parts: string[] = [];
  for (let i = 0; i < numbers.length; ) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j]! + 1) j++;
    parts.push(i === j ? `${numbers[i]}` : `${numbers[i]}–${numbers[j]}`);
    i = j + 1;
  }
  return `${numbers.length === 1 ? noun[0] : noun[1]} ${parts.join(', ')}`;
}

import { fingerprint } from '../core/secret.ts';

/**
 * What a leak scan looks for in a piece of text: OpenAI key formats (docs/openai.md) and
 * values whose fingerprint is a key keyrot knows (retired by a rotation, or current). Only
 * fingerprints and positions leave this module's callers: the token itself is used to compute a
 * hint and a fingerprint and then dropped.
 */

export type KeyFormat = 'project' | 'service-account' | 'admin' | 'legacy';

export const FORMAT_LABEL: Record<KeyFormat, string> = {
  project: 'project key',
  'service-account': 'service-account key',
  admin: 'admin key',
  legacy: 'legacy key',
};

/**
 * Any `sk-` token: the characters OpenAI keys are made of, with a boundary before `sk-` so that
 * `task-…`, `risk-…`, `desk-…` or `--sk-x` never start a token. Classified by `keyFormat`.
 */
const SK_TOKEN = /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{8,}/g;

/** docs/openai.md: `sk-(?:proj|svcacct)-[A-Za-z0-9_\-]{20,200}` and `sk-admin-[A-Za-z0-9_\-]{20,200}` (whole token). */
const PROJECT = /^sk-proj-[A-Za-z0-9_-]{20,}$/;
const SVCACCT = /^sk-svcacct-[A-Za-z0-9_-]{20,}$/;
const ADMIN = /^sk-admin-[A-Za-z0-9_-]{20,}$/;
/** Legacy user keys: `sk-` + 48 alphanumerics (later with the `T3BlbkFJ` marker, "OpenAI" in base64). */
const LEGACY_ALNUM = /^sk-[A-Za-z0-9]{32,}$/;
const LEGACY_LONG = /^sk-[A-Za-z0-9_-]{40,}$/;
const OPENAI_MARKER = 'T3BlbkFJ';

/** Random-looking: lower, upper and digits all present (a slug like `sk-learn-…` has no upper case). */
function mixed(s: string): boolean {
  return /[a-z]/.test(s) && /[A-Z]/.test(s) && /[0-9]/.test(s);
}

/** The key format of a whole `sk-` token, or null when it does not look like a key. */
export function keyFormat(token: string): KeyFormat | null {
  if (token.startsWith('sk-proj-')) return PROJECT.test(token) ? 'project' : null;
  if (token.startsWith('sk-svcacct-')) return SVCACCT.test(token) ? 'service-account' : null;
  if (token.startsWith('sk-admin-')) return ADMIN.test(token) ? 'admin' : null;
  if (token.includes(OPENAI_MARKER) && LEGACY_LONG.test(token)) return 'legacy';
  if (LEGACY_ALNUM.test(token)) return mixed(token.slice(3)) ? 'legacy' : null;
  if (LEGACY_LONG.test(token)) {
    // `sk-None-…`, `sk-<org>-…` variants: one long random run, not words joined by dashes.
    return token
      .slice(3)
      .split(/[-_]/)
      .some((part) => part.length >= 20 && mixed(part))
      ? 'legacy'
      : null;
  }
  return null;
}

/**
 * `NAME=value`, `NAME: value`, `"name": "value"` where NAME says it holds a key, token or secret:
 * their values are fingerprinted even when they match no key format (a `kind: generic` key).
 */
const ASSIGNMENT = /(?<![A-Za-z0-9_.-])["']?([A-Za-z_][A-Za-z0-9_.-]{0,80})["']?[ \t]*[:=][ \t]*["'`]?([^\s"'`,;]{8,})/g;
const SECRET_NAME = /key|token|secret|passw|credential/i;

export interface Candidate {
  /** Offset of the token in the text. */
  index: number;
  token: string;
  format: KeyFormat | null;
  fingerprint: string;
}

/**
 * Every key-like value in `text`: `sk-` tokens that match a key format, and any `sk-` token or
 * assignment value whose fingerprint `isKnown` accepts. Offsets are into `text`.
 */
export function findCandidates(text: string, isKnown: (fp: string) => boolean, opts: { assignments: boolean }): Candidate[] {
  const out: Candidate[] = [];
  const seen = new Set<number>();
  if (text.includes('sk-')) {
    for (const m of text.matchAll(SK_TOKEN)) {
      const token = m[0];
      const format = keyFormat(token);
      const fp = fingerprint(token);
      if (format || isKnown(fp)) {
        out.push({ index: m.index, token, format, fingerprint: fp });
        seen.add(m.index);
      }
    }
  }
  if (opts.assignments) {
    for (const m of text.matchAll(ASSIGNMENT)) {
      if (!SECRET_NAME.test(m[1]!)) continue;
      const value = m[2]!;
      const index = m.index + m[0].length - value.length;
      if (seen.has(index) || value.startsWith('sk-')) continue;
      const fp = fingerprint(value);
      if (isKnown(fp)) {
        out.push({ index, token: value, format: null, fingerprint: fp });
        seen.add(index);
      }
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

/** 1-based line and column of each offset (offsets ascending). */
export function positions(text: string, offsets: number[]): Array<{ line: number; column: number }> {
  const out: Array<{ line: number; column: number }> = [];
  let line = 1;
  let lineStart = 0;
  let at = 0;
  for (const off of offsets) {
    for (;;) {
      const nl = text.indexOf('\n', at);
      if (nl === -1 || nl >= off) break;
      line++;
      lineStart = nl + 1;
      at = nl + 1;
    }
    out.push({ line, column: off - lineStart + 1 });
  }
  return out;
}

import { fingerprint, hint, knownSecretValues } from './secret.ts';
import { findKnownValues } from './wire-forms.ts';

/**
 * The one place every error message, log line and provider error body passes through before it
 * is printed or kept. Two nets: the exact values of every key and credential this process has
 * handled, and patterns of well-known secret formats (a provider echoing a key we never saw).
 */
const PATTERNS: RegExp[] = [
  // OpenAI keys (project, service account, admin, legacy).
  /sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}/g,
  // Bearer / Basic credentials in echoed headers.
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  // Credentials embedded in URLs.
  /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi,
  // Common token formats: Heroku, GitHub, Slack, AWS access key ids, Vercel/Netlify personal tokens.
  /\bHRKU-[A-Za-z0-9_-]{8,}/g,
  /\bgh[pousr]_[A-Za-z0-9]{20,}/g,
  /\bxox[abpr]-[A-Za-z0-9-]{10,}/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
];

function mask(value: string): string {
  return `[redacted ${hint(value)} ${fingerprint(value)}]`;
}

/** Every known value in any of its wire forms (clear, base64, hex, percent- or JSON-escaped, split across lines). */
function maskKnownValues(text: string): string {
  let out = '';
  let at = 0;
  for (const f of findKnownValues(text, knownSecretValues())) {
    out += text.slice(at, f.start) + mask(f.value);
    at = f.end;
  }
  return out + text.slice(at);
}

export function redact(text: string): string {
  let out = maskKnownValues(text);
  for (const re of PATTERNS) {
    out = out.replace(re, (m: string, ...rest: unknown[]) => {
      // Patterns without a capture group get the match offset (a number) here, not a group.
      const g1 = typeof rest[0] === 'string' ? rest[0] : undefined;
      if (/^(Bearer|Basic)$/i.test(g1 ?? '')) return `${g1} [redacted]`;
      if (g1 && g1.endsWith('://')) return `${g1}[redacted]@`;
      return mask(m);
    });
  }
  return out;
}

/**
 * Deep-redacts a JSON-able value (journal/audit records, provider error bodies, --json results):
 * each string on its own, before serialising (JSON.stringify would escape a JSON-escaped key a
 * second time, out of the redactor's reach), then the serialised text as a whole.
 */
export function redactValue<T>(value: T): T {
  const walk = (v: unknown): unknown =>
    typeof v === 'string'
      ? redact(v)
      : Array.isArray(v)
        ? v.map(walk)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [redact(k), walk(x)]))
          : v;
  return JSON.parse(redact(JSON.stringify(walk(JSON.parse(JSON.stringify(value ?? null)))))) as T;
}

/** Variable names that hold credentials by convention (OPENAI_API_KEY, HEROKU_API_KEY, VERCEL_TOKEN...). */
const CREDENTIAL_NAME = /(^|_)(KEY|APIKEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|WEBHOOK|WEBHOOK_URL)(_|$)/i;

/**
 * The environment for a child process keyrot starts (git in plan and scan): the parent's, minus
 * every variable that holds a key or credential, known by its value (any key or credential this
 * process has handled, or a recognisable secret format) or by its conventional name. Git needs
 * none of them.
 */
export function childEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (CREDENTIAL_NAME.test(name) && !name.startsWith('GIT_')) continue;
    if (redact(value) !== value) continue;
    out[name] = value;
  }
  return out;
}

import { fingerprint, hint, knownSecretValues } from './secret.ts';

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

/**
 * The wire forms of a value other than clear text: base64 and base64url (Kubernetes Secret data,
 * Google Secret Manager payloads, Docker secret Data). A provider error quoting the request body
 * quotes these. Only the 3-byte-aligned part is taken (what any base64 of a text starting with
 * the value begins with), without padding.
 */
const encodedCache = new Map<string, string[]>();
function encodedForms(v: string): string[] {
  let forms = encodedCache.get(v);
  if (!forms) {
    const bytes = Buffer.from(v, 'utf8');
    const aligned = bytes.subarray(0, bytes.length - (bytes.length % 3));
    forms = aligned.length >= 6 ? [...new Set([aligned.toString('base64'), aligned.toString('base64url')])] : [];
    encodedCache.set(v, forms);
  }
  return forms;
}

export function redact(text: string): string {
  let out = text;
  for (const v of knownSecretValues()) {
    if (out.includes(v)) out = out.split(v).join(mask(v));
    for (const enc of encodedForms(v)) {
      if (out.includes(enc)) out = out.split(enc).join(mask(v));
    }
  }
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

/** Deep-redacts a JSON-able value (journal/audit records, provider error bodies). */
export function redactValue<T>(value: T): T {
  return JSON.parse(redact(JSON.stringify(value ?? null))) as T;
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

import { createHash } from 'node:crypto';
import { inspect } from 'node:util';

/** First 12 hex chars of SHA-256: how keyrot names a key everywhere it is recorded. */
export function fingerprint(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12);
}

/** `sk-...WXYZ`: the prefix family and the last 4 characters, never more. */
export function hint(value: string): string {
  const tail = value.length >= 12 ? value.slice(-4) : '';
  const m = /^(sk-(?:proj-|svcacct-|admin-)?)/.exec(value);
  return `${m ? m[1] : ''}...${tail}`;
}

const known = new Set<string>();

/**
 * A key value. It redacts itself in every place a value could leak by accident
 * (String(), JSON.stringify, util.inspect, template literals); only `reveal()` gives the value.
 * Every Secret created registers its value with the redactor (see audit/redact.ts).
 */
export class Secret {
  readonly #value: string;
  readonly fingerprint: string;
  readonly hint: string;

  constructor(value: string) {
    if (value.length === 0) throw new TypeError('empty secret');
    this.#value = value;
    this.fingerprint = fingerprint(value);
    this.hint = hint(value);
    if (value.length >= 6) known.add(value);
  }

  reveal(): string {
    return this.#value;
  }

  equals(other: Secret | null | undefined): boolean {
    return other != null && other.#value === this.#value;
  }

  toString(): string {
    return `${this.hint} (${this.fingerprint})`;
  }

  toJSON(): { hint: string; fingerprint: string } {
    return { hint: this.hint, fingerprint: this.fingerprint };
  }

  [inspect.custom](): string {
    return `Secret<${this.toString()}>`;
  }
}

/** Values of every Secret this process has seen, longest first (so a value containing another is replaced whole). */
export function knownSecretValues(): string[] {
  return [...known].sort((a, b) => b.length - a.length);
}

/** Register a credential (a provider token) so the redactor removes it too. */
export function registerSensitive(value: string): void {
  if (value.length >= 6) known.add(value);
}

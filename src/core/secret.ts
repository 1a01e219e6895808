import { inspect } from 'node:util';

/** Something that computes an HMAC under keyrot's state key (state/state-key.ts). */
export interface FingerprintKey {
  mac(purpose: string, data: string): string;
}

let keyed: FingerprintKey | null = null;

/**
 * `kind: generic` inventories fingerprint keys with the state key: a generic key may be a weak
 * secret, and an unsalted 48-bit SHA-256 prefix plus its tail (in the ConfigMap, a webhook, a
 * log) would let it be brute-forced offline. With the key, a fingerprint is an HMAC nobody
 * without the state key can test guesses against; environments of one inventory share the key,
 * so the same value still gets the same fingerprint across them (shared-key detection, scan).
 * OpenAI inventories keep the public SHA-256 fingerprint (null here): OpenAI keys are
 * high-entropy random strings, so their fingerprint reveals nothing guessable, and anyone can
 * compute it (keyrot scan matches retired keys by it, with or without the state key).
 */
export function useKeyedFingerprints(key: FingerprintKey | null): void {
  keyed = key;
}

/** First 12 hex chars of SHA-256 (generic keys: of an HMAC under the state key): how keyrot names a key. */
export function fingerprint(value: string): string {
  if (keyed) return keyed.mac('keyrot-fingerprint', value).slice(0, 12);
  // node:crypto on first use, not at start-up: `--help` and most errors never hash (~12 ms of CPU).
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12);
}

/** Values shorter than this show no tail in their hint: 4 known characters of a short secret help a guesser. */
export const HINT_MIN_LENGTH = 20;

/**
 * `sk-...WXYZ`: the prefix family and the last 4 characters, never more. A value shorter than
 * HINT_MIN_LENGTH (never an OpenAI key: those are longer) shows nothing of itself: `***`.
 */
export function hint(value: string): string {
  if (value.length < HINT_MIN_LENGTH) return '***';
  const m = /^(sk-(?:proj-|svcacct-|admin-)?)/.exec(value);
  return `${m ? m[1] : ''}...${value.slice(-4)}`;
}

const known = new Set<string>();

/**
 * A key value. It redacts itself in every place a value could leak by accident
 * (String(), JSON.stringify, util.inspect, template literals); only `reveal()` gives the value.
 * Every Secret created registers its value with the redactor (see audit/redact.ts).
 */
export class Secret {
  readonly #value: string;
  readonly hint: string;

  constructor(value: string) {
    if (value.length === 0) throw new TypeError('empty secret');
    this.#value = value;
    this.hint = hint(value);
    if (value.length >= 6) known.add(value);
  }

  /** Computed when asked: the fingerprint follows useKeyedFingerprints() even for a Secret made before it. */
  get fingerprint(): string {
    return fingerprint(this.#value);
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

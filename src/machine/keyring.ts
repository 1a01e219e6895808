import type { Secret } from '../core/secret.ts';

/**
 * Key values in memory, by fingerprint. The journal names keys only by fingerprint; a step that
 * needs a value (write the new key, restore the old one) asks here. Values come from the key
 * source, from what preflight read in the targets, or from `--old-key` / `--new-key`; they are
 * never written anywhere by keyrot.
 */
export class Keyring {
  readonly #byFingerprint = new Map<string, Secret>();

  add(key: Secret | null | undefined): void {
    if (key) this.#byFingerprint.set(key.fingerprint, key);
  }

  get(fingerprint: string | null | undefined): Secret | undefined {
    return fingerprint ? this.#byFingerprint.get(fingerprint) : undefined;
  }

  has(fingerprint: string | null | undefined): boolean {
    return Boolean(fingerprint && this.#byFingerprint.has(fingerprint));
  }
}

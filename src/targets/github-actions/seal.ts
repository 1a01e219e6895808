import sodium from 'libsodium-wrappers';
import { TargetError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';

/**
 * A secret value sealed for GitHub: a libsodium sealed box (crypto_box_seal) to the store's
 * Base64 public key, Base64 with the ORIGINAL variant, exactly as GitHub's guide does it with
 * libsodium-wrappers (docs.github.com/rest/guides/encrypting-secrets-for-the-rest-api). Only
 * GitHub, which holds the private key, can open it; keyrot keeps nothing of it.
 */
export async function sealForGitHub(value: Secret, publicKeyBase64: string, where: string): Promise<string> {
  await sodium.ready;
  let key: Uint8Array;
  try {
    key = sodium.from_base64(publicKeyBase64, sodium.base64_variants.ORIGINAL);
  } catch {
    key = new Uint8Array();
  }
  if (key.length !== sodium.crypto_box_PUBLICKEYBYTES) {
    throw new TargetError(`GitHub returned a public key for ${where} that is not a 32-byte Curve25519 key: keyrot cannot seal the secret for it`, {
      kind: 'invalid',
      retryable: false,
    });
  }
  const sealed = sodium.crypto_box_seal(sodium.from_string(value.reveal()), key);
  return sodium.to_base64(sealed, sodium.base64_variants.ORIGINAL);
}

import { createHash } from 'node:crypto';

/**
 * keyrot's rotation ids start with this prefix, and so does every secret version keyrot creates:
 * a version id with it was made by keyrot (an AWSPENDING label left on one may be cleaned up),
 * anything else belongs to someone else (an AWS rotation Lambda, the console, Terraform).
 */
export const KEYROT_VERSION_PREFIX = 'rot_';

/**
 * The `ClientRequestToken` (which becomes the `VersionId`) for a rotation: deterministic, so a
 * retried or resumed write of the same rotation lands on the same version instead of a new one.
 *
 * AWS requires 32–64 characters (PutSecretValue `ClientRequestToken`, SecretVersionIdType,
 * min 32 / max 64: @aws-sdk/client-secrets-manager PutSecretValueRequest doc). A rotation id that
 * already fits is used verbatim, so the version id *is* the rotation id; otherwise it is the
 * id's safe prefix plus its SHA-256 (hex), cut to 64.
 */
export function versionTokenFor(rotationId: string): string {
  const base = rotationId.startsWith(KEYROT_VERSION_PREFIX) ? rotationId : KEYROT_VERSION_PREFIX + rotationId;
  const safe = base.replace(/[^A-Za-z0-9_-]/g, '-');
  if (safe === base && safe.length >= 32 && safe.length <= 64) return safe;
  const digest = createHash('sha256').update(rotationId, 'utf8').digest('hex');
  return `${safe.slice(0, 40)}_${digest}`.slice(0, 64);
}

export function isKeyrotVersion(versionId: string): boolean {
  return versionId.startsWith(KEYROT_VERSION_PREFIX);
}

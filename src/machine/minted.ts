import { toTargetError } from '../core/errors.ts';
import type { MintedIds } from '../state/journal.ts';
import type { KeyIssuer } from '../issuers/index.ts';
import type { KeyRef, Notice } from './outcome.ts';

/**
 * A key keyrot minted for a rotation that will not use it (refused, failed, rolled back) is used
 * nowhere: delete it again through the admin API, or say it is left to the operator.
 */
export async function deleteMintedKey(issuer: KeyIssuer, minted: MintedIds, key: KeyRef | null, env: string): Promise<Notice> {
  if (!issuer.admin) return { code: 'minted-unused', key };
  try {
    // The issuer checks the account is keyrot's for this environment and owns this key first.
    await (await issuer.admin()).revoke({ keyId: minted.keyId, serviceAccountId: minted.serviceAccountId, hint: key?.hint, env });
    return { code: 'minted-deleted', key };
  } catch (err) {
    return { code: 'minted-delete-failed', key, error: toTargetError(err).message };
  }
}

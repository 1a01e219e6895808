import type { ParameterHistory } from '@aws-sdk/client-ssm';
import type { ReadResult } from '../types.ts';

/** Parameter Store keeps this many versions of a parameter (PutParameter: ParameterMaxVersionLimitExceeded). */
export const MAX_VERSIONS = 100;

/** Why a write cannot succeed: a parameter that is not a SecureString, or the 100-version limit held by a label. */
export function blockedBy(history: ParameterHistory[], name: string): string | undefined {
  const latest = history.at(-1);
  if (latest && latest.Type !== 'SecureString') {
    return `${name} is a ${latest.Type} parameter, stored and shown unencrypted: keyrot writes keys to SecureString parameters only. Create a SecureString parameter (aws ssm put-parameter --type SecureString) and point parameter: at it`;
  }
  const oldest = history[0];
  if (history.length >= MAX_VERSIONS && oldest?.Labels?.length) {
    return `${name} has ${MAX_VERSIONS} versions and the oldest (${oldest.Version}) has the label ${oldest.Labels.join(', ')}: Parameter Store cannot drop it to make room for keyrot's version. Move the label to a newer version (aws ssm label-parameter-version --name ${name} --parameter-version N --labels ${oldest.Labels[0]})`;
  }
  return undefined;
}

/** What plan says the write will do. */
export function notesFor(history: ParameterHistory[] | null, current: ReadResult, c: { name: string; label: string | undefined; kmsKey: string | undefined }): string[] {
  const { name, label } = c;
  const notes: string[] = [];
  const latest = history?.at(-1);
  const key = c.kmsKey ?? latest?.KeyId ?? 'alias/aws/ssm';
  if (!history) notes.push(`${name} does not exist: keyrot creates it as a SecureString encrypted with ${key}${label ? `, labelled ${label}` : ''}`);
  else notes.push(`the new key becomes version ${(latest?.Version ?? 0) + 1} of ${name}, a SecureString encrypted with ${key}; older versions stay`);
  if (label) notes.push(current.kind === 'absent' ? `label ${label} is on no version yet: keyrot attaches it to the new version` : `label ${label} moves to the new version; a rollback moves it back`);
  if (c.kmsKey && latest?.KeyId && latest.KeyId !== c.kmsKey) notes.push(`kms_key ${c.kmsKey} differs from the key of the current version (${latest.KeyId})`);
  if (history && history.length >= MAX_VERSIONS) notes.push(`${name} has ${MAX_VERSIONS} versions, the most Parameter Store keeps: it drops the oldest (${history[0]?.Version}) when keyrot writes`);
  notes.push('verified by reading the new version back, decrypted, and checking consumers get it');
  return notes;
}

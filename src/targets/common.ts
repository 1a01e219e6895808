import type { Secret } from '../keys/secret.ts';
import { TargetError } from '../engine/errors.ts';
import type { ReadResult, VerifyResult } from './types.ts';

/** The verification every readable target uses: read back and compare (by value, in memory only). */
export async function verifyByReadBack(
  read: () => Promise<ReadResult>,
  expected: Secret,
  target: string,
  where: string,
): Promise<VerifyResult> {
  const now = await read();
  if (now.kind === 'value' && now.value.equals(expected)) return { method: 'read-back', detail: `${where} holds the new key` };
  const found = now.kind === 'value' ? `a different key (${now.value.fingerprint})` : now.kind === 'absent' ? 'nothing' : 'an unreadable value';
  throw new TargetError(`read-back mismatch: ${where} holds ${found}, not the new key (${expected.fingerprint})`, {
    target,
    op: 'verify',
    kind: 'mismatch',
    retryable: false,
  });
}

import type { Parameter, ParameterHistory } from '@aws-sdk/client-ssm';
import { fingerprint, type Secret } from '../../core/secret.ts';
import type { OpContext } from '../types.ts';

/** A parameter version as GetParameter or GetParameterHistory return it (or none). */
export type AnyVersion = Parameter | ParameterHistory | null | undefined;

export const valueOf = (p: AnyVersion): string | null => (p?.Value ? p.Value : null);

/** Whether the version holds `value` (null: holds nothing). */
export const holds = (p: AnyVersion, value: Secret | null): boolean => valueOf(p) === (value ? value.reveal() : null);

export const describeHeld = (v: string | null): string => (v ? `a different key (${fingerprint(v)})` : 'nothing');

/** Whether a version holds the key this rotation writes (by fingerprint: restore gets no value of it). */
export function holdsNewKey(p: AnyVersion, op: OpContext): boolean {
  const v = valueOf(p);
  return v !== null && fingerprint(v) === op.fingerprint;
}

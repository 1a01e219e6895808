import type { Secret } from '../core/secret.ts';
import { TargetError, toTargetError } from '../core/errors.ts';
import type { CredentialRef } from '../inventory/credentials.ts';
import { Lane, type PacingLimits } from '../runtime/pacer.ts';
import { pacingOf, type PreflightResult, type ReadResult, type TargetContext, type TargetDefinition, type VerifyResult } from './types.ts';

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

/**
 * How a preflight that failed ends. A transient failure (429, 5xx, a timeout, a reset) is not an
 * answer: it is thrown for the engine to retry, bounded. Anything else (no access, no such secret)
 * blocks the target with its reason, and what it holds stays unknown.
 */
export function preflightFailed(err: unknown, target: string, notes?: string[]): PreflightResult {
  const e = toTargetError(err, target, 'preflight');
  if (e.retryable) throw e;
  return { status: 'blocked', reason: e.message, current: { kind: 'unreadable', reason: e.message }, ...(notes ? { notes } : {}) };
}

/**
 * A provider token resolved on first use and kept for the target's life (a failed resolution is
 * tried again next call). A failure is an `auth` TargetError for the operation; `advice` adds
 * how to get such a token.
 */
export function lazyCredential(
  ctx: Pick<TargetContext, 'resolve'> & { name: string },
  ref: CredentialRef,
  advice?: (message: string) => string,
): (op: string) => Promise<Secret> {
  let pending: Promise<Secret> | undefined;
  return async (op) => {
    pending ??= ctx.resolve(ref).catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    try {
      return await pending;
    } catch (err) {
      const e = toTargetError(err, ctx.name, op);
      if (!advice) throw e;
      throw new TargetError(advice(e.message), { target: ctx.name, op, kind: 'auth', retryable: false, cause: err });
    }
  };
}

/**
 * Whether a provider's key name is one of the variables `keyrot discover` looks for. Stores name
 * things their own way (`OPENAI_API_KEY`, `openai-api-key`, `/acme/prod/openai_api_key`): the last
 * path segment is compared case-insensitively, with `-` and `.` taken as `_`.
 */
export function matchesVarName(key: string, varNames: string[]): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/[-.]/g, '_');
  const last = norm(key.split('/').filter(Boolean).at(-1) ?? '');
  return last !== '' && varNames.some((v) => norm(v) === last);
}

/** Refused credentials or permissions make a provider "skipped" in `keyrot discover`: an `auth` error. */
export function asDiscoverAuth(err: unknown): never {
  if (err instanceof TargetError && err.kind === 'permission') {
    throw new TargetError(err.message, { target: err.target, op: 'discover', kind: 'auth', retryable: false, cause: err });
  }
  throw err;
}

/**
 * The pacing lane of the rate-limit domain `key` (the target also gives it as `rateLimitKey`):
 * the engine's, shared with the account's other targets; a private one when the adapter runs
 * alone (tests), so it still paces itself on the provider's signals.
 */
export function laneOf(ctx: Pick<TargetContext, 'lane' | 'clock'>, key: string, def: Pick<TargetDefinition<any>, 'concurrency' | 'pacing'>): Lane {
  return ctx.lane?.(key) ?? new Lane(key, pacingOf(def) satisfies PacingLimits, ctx.clock);
}

import { expect } from 'vitest';
import { TargetError } from '../../src/core/errors.ts';

/** The TargetError `p` rejects with (the test fails if it resolves, or rejects with anything else). */
export async function targetErrorOf(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TargetError);
  return e as TargetError;
}

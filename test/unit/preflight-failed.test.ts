import { describe, expect, it } from 'vitest';
import { TargetError } from '../../src/core/errors.ts';
import { preflightFailed } from '../../src/targets/common.ts';

describe('preflightFailed: how every HTTP target ends a failed preflight', () => {
  it('a transient failure is thrown for the engine to retry, with the target and op named', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const thrown = (() => {
      try {
        preflightFailed(reset, 'api-env');
      } catch (e) {
        return e as TargetError;
      }
    })();
    expect(thrown).toBeInstanceOf(TargetError);
    expect({ target: thrown?.target, op: thrown?.op, retryable: thrown?.retryable }).toEqual({ target: 'api-env', op: 'preflight', retryable: true });
  });

  it('anything else blocks the target with its reason; what it holds stays unknown; notes are kept', () => {
    const denied = new TargetError('Render denied access to srv-abc: the API key lacks this service', { kind: 'auth', retryable: false });
    expect(preflightFailed(denied, 'render', ['one deploy follows'])).toEqual({
      status: 'blocked',
      reason: denied.message,
      current: { kind: 'unreadable', reason: denied.message },
      notes: ['one deploy follows'],
    });
    expect(preflightFailed(denied, 'render')).not.toHaveProperty('notes');
  });
});

import { formatDuration } from '../inventory/duration.ts';
import { TargetError } from '../core/errors.ts';

/**
 * How long one provider call may take, from connecting to the last byte of the answer. A provider
 * that takes a request and goes silent must not hold a rotation (and the other targets, written
 * with the new key) forever: past this the call is a retryable `timeout`, and the engine's bounded
 * retry decides what comes next. 30 s is well above what any of these APIs takes to answer one
 * call (they answer in well under a second), and short enough that six attempts end in minutes.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** The caller's signal (Ctrl-C, the engine stopping) combined with this call's deadline. */
export function deadlineSignal(timeoutMs: number, signal?: AbortSignal): AbortSignal {
  const deadline = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([signal, deadline]) : deadline;
}

/**
 * An error thrown by a call made under `deadlineSignal`, classified: the caller's own abort is a
 * non-retryable `cancelled`; an abort or timeout otherwise is the deadline (retryable); anything
 * else is not about time (undefined: the caller classifies it).
 */
export function deadlineError(
  err: unknown,
  callerSignal: AbortSignal | undefined,
  what: { provider: string; call: string; timeoutMs: number },
): TargetError | undefined {
  if (callerSignal?.aborted) return new TargetError(`cancelled: ${what.call} to ${what.provider}`, { kind: 'timeout', retryable: false, cause: err });
  if (!isAbortOrTimeout(err)) return undefined;
  return new TargetError(`${what.provider} did not answer ${what.call} within ${formatDuration(what.timeoutMs)}`, {
    kind: 'timeout',
    retryable: true,
    cause: err,
  });
}

/**
 * Whether `signal` (a deadlineSignal) ended because its deadline passed. An SDK may report the
 * abort as whatever its socket said (a body stream destroyed mid-read is an ECONNRESET).
 */
export function deadlinePassed(signal: AbortSignal): boolean {
  return signal.aborted && (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError';
}

/** AbortError / TimeoutError, also when an SDK wraps it (as `cause`, or under its own name). */
export function isAbortOrTimeout(err: unknown): boolean {
  for (let e = err as { name?: string; code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.name === 'AbortError' || e.name === 'TimeoutError' || e.code === 'AbortError' || e.code === 'TimeoutError') return true;
    if (e.code === 'ABORT_ERR' || e.code === 'ETIMEDOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT') return true;
  }
  return false;
}

/**
 * `call`'s result, or its rejection by `signal` (a deadlineSignal) when that fires first: for SDK
 * calls that take no signal. `cancel` (google-gax's CancellablePromise has one) stops the call.
 */
export function raceDeadline<T>(call: Promise<T> & { cancel?: () => void }, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    call.cancel?.();
    call.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      call.cancel?.();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    call.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

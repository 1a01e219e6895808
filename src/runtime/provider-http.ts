import type { Clock } from './clock.ts';
import { providerText } from '../core/printable.ts';
import { TargetError, toTargetError, type TargetErrorKind } from '../core/errors.ts';
import { HttpError, httpJson, kindForStatus, type ErrorShape, type HttpResponse, type RateLimit } from './http.ts';
import type { Lane } from './pacer.ts';

/**
 * A client for one provider's HTTP API: base URL, auth header, JSON and GraphQL calls, all through
 * `httpJson` (deadline, no redirects, rate-limit headers, redaction). The adapter keeps only its
 * own words: `describe` turns a failed answer into a message (and, where the provider differs from
 * the usual status mapping, a kind); everything else is the same for every provider.
 */

export interface ProviderRequest<A = undefined> {
  /** The target operation (preflight, write...), for the error. */
  op: string;
  method?: string;
  /** Appended to the base URL. */
  path: string;
  query?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** What the call is about, for `describe` (Netlify: site / env / deploy; Vercel: a label). */
  about?: A;
}

/** A failed answer, for `describe`: the status, the provider's message and code (redacted), and the call. */
export interface ProviderFailure<A = undefined> {
  op: string;
  status: number;
  /** The provider's message from its known error shape, redacted and cut; else its error code ('' when neither). */
  message: string;
  code: string | undefined;
  /** The parsed body, for flags (Vercel's `invalidToken`): never quote it. */
  body: unknown;
  rateLimit: RateLimit;
  about: A | undefined;
}

/** A message, or a message with a kind / retryability / wait that differ from the status's usual ones. */
export type Described = string | { message: string; kind?: TargetErrorKind; retryable?: boolean; retryAfterMs?: number };

export interface ProviderHttpOptions<A = undefined> {
  provider: string;
  baseUrl: string;
  /** The target's name, for its errors (undefined outside targets). */
  target?: string;
  clock: Clock;
  /** Deadline of each call (default DEFAULT_REQUEST_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Sent on every call (Accept, User-Agent). */
  headers?: Record<string, string>;
  /** Query parameters of every call (Vercel's team scope). */
  query?: Record<string, string>;
  /** The auth header(s), resolved per call (credentials are resolved lazily). */
  auth?: (op: string) => Promise<Record<string, string>>;
  /** Runs before each call, after auth: pacing on the rate-limit state `onResponse` saw. */
  before?: (signal?: AbortSignal) => Promise<void>;
  errorShape?: ErrorShape;
  /** What to fix when the provider redirects. */
  endpointHint?: string;
  describe?: (f: ProviderFailure<A>) => Described | undefined;
  /** A GraphQL `errors[0].message` (which comes with HTTP 200) in product words. */
  describeGraphQL?: (message: string, op: string) => Described;
  /** Every answer, success or not: its rate-limit state. */
  onResponse?: (r: { op: string; status: number; headers: Headers; rateLimit: RateLimit }) => void;
  /**
   * The provider account's pacing lane (runtime/pacer.ts): each call waits on it (a pause the
   * provider asked for, a low budget) and tells it the answer's rate-limit state.
   */
  lane?: Lane;
  /** Which of the provider's budgets a call spends, when it keeps several (Vercel: one per endpoint); default one. */
  bucketOf?: (method: string, path: string) => string;
}

export interface ProviderHttp<A = undefined> {
  json<T = Record<string, unknown>>(req: ProviderRequest<A>): Promise<HttpResponse<T>>;
  /** POST {query, variables} to the base URL; returns `data`, or throws on `errors` / no data. */
  graphql<T>(op: string, query: string, variables: Record<string, unknown>, signal?: AbortSignal): Promise<T>;
}

export function createProviderHttp<A = undefined>(o: ProviderHttpOptions<A>): ProviderHttp<A> {
  const base = o.baseUrl.replace(/\/+$/, '');

  function error(d: Described, init: { op: string; kind: TargetErrorKind; status?: number; retryAfterMs?: number; retryable?: boolean; cause: unknown }): TargetError {
    const x = typeof d === 'string' ? { message: d } : d;
    return new TargetError(x.message, {
      target: o.target,
      op: init.op,
      kind: x.kind ?? init.kind,
      retryable: x.retryable ?? init.retryable,
      retryAfterMs: x.retryAfterMs ?? init.retryAfterMs,
      status: init.status,
      cause: init.cause,
    });
  }

  async function json<T>(req: ProviderRequest<A>): Promise<HttpResponse<T>> {
    const auth = (await o.auth?.(req.op)) ?? {};
    await o.before?.(req.signal);
    const ticket = await o.lane?.beforeRequest(o.bucketOf?.(req.method ?? 'GET', req.path) ?? '', undefined, req.signal);
    let answer: { status?: number; rateLimit?: RateLimit } = {};
    try {
      return await call<T>(req, auth, (r) => (answer = r));
    } finally {
      if (ticket) o.lane!.afterRequest(ticket, answer);
    }
  }

  async function call<T>(req: ProviderRequest<A>, auth: Record<string, string>, seen: (r: { status: number; rateLimit: RateLimit }) => void): Promise<HttpResponse<T>> {
    const query = { ...o.query, ...req.query };
    const q = Object.keys(query).length ? `?${new URLSearchParams(query).toString()}` : '';
    try {
      return await httpJson<T>(
        { method: req.method, url: `${base}${req.path}${q}`, headers: { ...o.headers, ...auth, ...req.headers }, body: req.body, timeoutMs: o.timeoutMs, signal: req.signal },
        {
          clock: o.clock,
          provider: o.provider,
          errorShape: o.errorShape,
          endpointHint: o.endpointHint,
          onResponse: (r) => {
            seen(r);
            o.onResponse?.({ op: req.op, ...r });
          },
        },
      );
    } catch (err) {
      if (!(err instanceof HttpError)) {
        const e = toTargetError(err);
        throw error(e.message, { op: req.op, kind: e.kind, retryable: e.retryable, status: e.status, cause: err });
      }
      const failure: ProviderFailure<A> = {
        op: req.op,
        status: err.status!,
        // A body with a code but no message (an unknown shape) says its code: the most keyrot prints of it.
        message: err.providerMessage || (err.providerCode ?? ''),
        code: err.providerCode,
        body: err.body,
        rateLimit: err.rateLimit,
        about: req.about,
      };
      const described = o.describe?.(failure) ?? err.message;
      throw error(described, { op: req.op, kind: kindForStatus(failure.status), status: failure.status, retryAfterMs: failure.rateLimit.retryAfterMs, cause: err });
    }
  }

  async function graphql<T>(op: string, query: string, variables: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    const res = await json<{ data?: T | null; errors?: Array<{ message?: unknown }> }>({ op, method: 'POST', path: '', body: { query, variables }, signal });
    // GraphQL errors arrive with HTTP 200; only the first message is used.
    const errors = Array.isArray(res.body?.errors) ? res.body.errors : [];
    if (errors.length) {
      // Redacted before it is cut: a key across the cut would otherwise survive in part.
      const message = providerText(String(errors[0]?.message ?? 'unknown error'));
      throw error(o.describeGraphQL?.(message, op) ?? `${o.provider} refused ${op}: ${message}`, { op, kind: 'invalid', retryable: false, cause: undefined });
    }
    if (!res.body || res.body.data === undefined || res.body.data === null) {
      throw error(`${o.provider} answered ${op} without data`, { op, kind: 'unavailable', cause: undefined });
    }
    return res.body.data;
  }

  return { json, graphql };
}

/** For calls whose 404 means "absent": the not-found error becomes undefined. */
export function absentOn404(err: unknown): undefined {
  if (err instanceof TargetError && err.status === 404) return undefined;
  throw err;
}

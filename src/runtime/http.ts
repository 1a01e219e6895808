import { providerText } from '../core/printable.ts';
import type { Clock } from './clock.ts';
import { TargetError, type TargetErrorKind } from '../core/errors.ts';
import { retryAfterFromHeaders } from './retry.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, deadlineError, deadlineSignal } from './deadline.ts';

/**
 * The one place keyrot speaks HTTP to a provider without an SDK (the HTTP targets, the OpenAI
 * checks and Admin API, the notification webhook): fetch under a deadline that covers the whole
 * answer, redirects refused, rate-limit headers parsed, failures classified and redacted.
 * Per-provider words (base URL, auth, what a status means there) are in provider-http.ts.
 */

export interface HttpRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  /** JSON-serialised when not a string. */
  body?: unknown;
  /** Deadline of the whole exchange, connect to last byte (default DEFAULT_REQUEST_TIMEOUT_MS). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What a provider said about its rate limit on one answer (any status). */
export interface RateLimit {
  /** A wait the server asked for: `retry-after-ms`, `Retry-After`, or `X-RateLimit-Reset` once the budget is spent. */
  retryAfterMs?: number;
  /** Requests left in the window: `RateLimit-Remaining` (Heroku) or `X-RateLimit-Remaining`. */
  remaining?: number;
  /** When the window resets, epoch ms (`X-RateLimit-Reset` / `RateLimit-Reset`, epoch seconds or a delta in seconds). */
  resetAt?: number;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  rateLimit: RateLimit;
}

/** A provider's known error shape: its message and its error code, when it has them. */
export type ErrorShape = (body: unknown) => { message?: string; code?: string };

export interface HttpContext {
  clock: Clock;
  /** The provider, in messages ("Heroku", "the OpenAI Admin API"). */
  provider: string;
  errorShape?: ErrorShape;
  /** What to fix when the provider redirects (default: the target's `endpoint:`). */
  endpointHint?: string;
  /** Every answer, success or not (rate-limit pacing). */
  onResponse?: (r: { status: number; headers: Headers; rateLimit: RateLimit }) => void;
}

/** A non-2xx answer: the status, the provider's own message and code (redacted), its rate-limit state. */
export class HttpError extends TargetError {
  readonly providerMessage: string;
  readonly providerCode: string | undefined;
  /** The parsed body, for flags in it (never for messages: it may quote the request). */
  readonly body: unknown;
  readonly rateLimit: RateLimit;
  constructor(message: string, init: { kind: TargetErrorKind; status: number; providerMessage: string; providerCode?: string; body: unknown; rateLimit: RateLimit }) {
    super(message, { kind: init.kind, status: init.status, retryAfterMs: init.rateLimit.retryAfterMs });
    this.providerMessage = init.providerMessage;
    this.providerCode = init.providerCode;
    this.rateLimit = init.rateLimit;
    Object.defineProperty(this, 'body', { value: init.body, enumerable: false });
  }
}

/** Maps an HTTP status to the error kind adapters report (429/5xx retryable, 401 auth, 403 permission). */
export function kindForStatus(status: number): TargetErrorKind {
  if (status === 401) return 'auth';
  if (status === 403) return 'permission';
  if (status === 404) return 'not-found';
  if (status === 409 || status === 412) return 'conflict';
  if (status === 429) return 'rate-limited';
  if (status === 408 || status === 504) return 'timeout';
  if (status >= 500) return 'unavailable';
  return 'invalid';
}

/** One JSON exchange. 2xx resolves; anything else throws a TargetError (HttpError for an answer). */
export async function httpJson<T = unknown>(req: HttpRequest, ctx: HttpContext): Promise<HttpResponse<T>> {
  const method = req.method ?? 'GET';
  const timeoutMs = req.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const signal = deadlineSignal(timeoutMs, req.signal);
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  let body: string | undefined;
  if (req.body !== undefined) {
    body = typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    headers['content-type'] ??= 'application/json';
  }
  let res: Response;
  let text: string;
  try {
    // Redirects are refused: a 307/308 re-sends the body (the key) and the credentials to wherever
    // the Location points. The answer is read under the same deadline: a stalled body times out too.
    res = await fetch(req.url, { method, headers, body, signal, redirect: 'manual' });
    text = await res.text();
  } catch (err) {
    throw networkError(err, req, { method, timeoutMs, provider: ctx.provider });
  }
  const rateLimit = rateLimitOf(res.headers, ctx.clock.now(), res.status);
  ctx.onResponse?.({ status: res.status, headers: res.headers, rateLimit });
  if (res.status >= 300 && res.status < 400) {
    throw redirectRefused({ provider: ctx.provider, status: res.status, location: res.headers.get('location'), from: req.url, fix: ctx.endpointHint });
  }
  const parsed = parseBody(text, res.headers);
  if (res.status >= 200 && res.status < 300) return { status: res.status, headers: res.headers, body: parsed as T, rateLimit };
  const shape = (ctx.errorShape ?? commonErrorShape)(parsed);
  // One line, no control characters, redacted, then cut (core/printable.ts); a code is a token or nothing.
  const providerMessage = shape.message ? providerText(shape.message) : '';
  const providerCode = errorCode(shape.code);
  const said = providerMessage || providerCode;
  throw new HttpError(`${ctx.provider} answered ${res.status}${said ? `: ${said}` : ''}`, {
    kind: kindForStatus(res.status),
    status: res.status,
    providerMessage,
    providerCode,
    body: parsed,
    rateLimit,
  });
}

function parseBody(text: string, headers: Headers): unknown {
  if (!text || !(headers.get('content-type') ?? '').includes('json')) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A failure before any answer (deadline, reset, refused connection), classified and worded. */
export function networkError(err: unknown, req: Pick<HttpRequest, 'url' | 'signal'>, c: { method: string; timeoutMs: number; provider: string }): TargetError {
  const timedOut = deadlineError(err, req.signal, { provider: c.provider, call: `${c.method} ${safeUrl(req.url)}`, timeoutMs: c.timeoutMs });
  if (timedOut) return timedOut;
  const code = (err as { cause?: { code?: string } }).cause?.code ?? 'network error';
  return new TargetError(`cannot reach ${c.provider} (${code}) at ${safeUrl(req.url)}`, {
    kind: 'unavailable',
    // A refused connection or an unknown host rarely heals within a retry budget; a reset does.
    retryable: code !== 'ENOTFOUND' && code !== 'ECONNREFUSED',
    cause: err,
  });
}

/**
 * A 3xx keyrot did not follow, as an error: which status, where it pointed (host and path only: a
 * query can hold a token), and what to fix. Not retryable: the same call gets the same redirect.
 */
export function redirectRefused(
  r: { provider: string; status: number; location: string | null | undefined; from: string; fix?: string },
  init: { target?: string; op?: string; cause?: unknown } = {},
): TargetError {
  let where = 'no Location';
  if (r.location) {
    try {
      const u = new URL(r.location, r.from);
      where = `${u.host}${u.pathname}`;
    } catch {
      where = 'an unreadable Location';
    }
  }
  return new TargetError(
    `${r.provider} answered ${r.status}, a redirect to ${where}: keyrot does not follow redirects (they would carry the credentials and the key elsewhere); ${r.fix ?? 'set `endpoint:` in targets.yaml to the API’s own URL (or remove it for the default)'}`,
    { ...init, kind: 'invalid', retryable: false, status: r.status },
  );
}

/** Rate-limit headers of one answer. `RateLimit-Remaining` is Heroku's, `RateLimit-*` Render's; the `X-` ones Vercel's, Netlify's, Railway's and Supabase's. */
export function rateLimitOf(h: Headers, now: number, status: number): RateLimit {
  const out: RateLimit = {};
  const retryAfterMs = retryAfterFromHeaders(h, now, status);
  if (retryAfterMs !== undefined) out.retryAfterMs = retryAfterMs;
  const remaining = h.get('ratelimit-remaining') ?? h.get('x-ratelimit-remaining');
  if (remaining && /^\d+$/.test(remaining.trim())) out.remaining = Number(remaining);
  const reset = h.get('x-ratelimit-reset') ?? h.get('ratelimit-reset');
  if (reset && /^\d+$/.test(reset.trim())) {
    const n = Number(reset);
    out.resetAt = n > 1e9 ? n * 1000 : now + n * 1000;
  }
  return out;
}

/**
 * The message and code of the error shapes these providers use: `{error:{message,code}}` (Vercel,
 * OpenAI), `{id,message}` (Heroku), `{code,message}` (Netlify), `{errors:[{message}]}` (GraphQL),
 * `{error:"..."}`. Anything else gives nothing: an unknown body is never quoted (it may echo the request).
 */
export const commonErrorShape: ErrorShape = (body) => {
  if (!body || typeof body !== 'object') return {};
  const b = body as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : undefined);
  const err = b.error;
  if (err && typeof err === 'object') {
    const e = err as Record<string, unknown>;
    return { message: str(e.message), code: str(e.code) ?? str(e.type) };
  }
  if (typeof err === 'string') return { message: err, code: str(b.code) };
  if (Array.isArray(b.errors) && b.errors.length) {
    const messages = b.errors.map((e) => str((e as Record<string, unknown>)?.message)).filter(Boolean);
    return { message: messages.length ? messages.join('; ') : undefined };
  }
  return { message: str(b.message), code: str(b.id) ?? str(b.code) };
};

/** An error code is a short token (invalid_api_key, forbidden, 401), never free text. */
export function errorCode(code: string | undefined): string | undefined {
  return code !== undefined && /^[A-Za-z0-9_.:-]{1,64}$/.test(code) ? code : undefined;
}

/** A URL without credentials or query string, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

import { redact } from '../core/redact.ts';
import type { Clock } from './clock.ts';
import { TargetError, type TargetErrorKind } from '../core/errors.ts';
import { retryAfterFromHeaders } from './retry.ts';

export interface HttpRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  /** JSON-serialised when not a string. */
  body?: unknown;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
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

/**
 * A lean JSON-over-HTTP call for providers keyrot reaches without an SDK. Throws TargetError for
 * non-2xx with the provider's message (redacted), the kind, and any Retry-After. The caller adds
 * product words (which target, what to do next) by catching or through `describe`.
 */
export async function httpJson<T = unknown>(
  req: HttpRequest,
  opts: { clock: Clock; provider: string; describe?: (status: number, message: string) => string | undefined },
): Promise<HttpResponse<T>> {
  const signals = [AbortSignal.timeout(req.timeoutMs ?? 30_000)];
  if (req.signal) signals.push(req.signal);
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  let body: string | undefined;
  if (req.body !== undefined) {
    body = typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    headers['content-type'] ??= 'application/json';
  }
  let res: Response;
  try {
    res = await fetch(req.url, { method: req.method ?? 'GET', headers, body, signal: AbortSignal.any(signals) });
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      throw new TargetError(`${opts.provider} did not answer in time`, { kind: 'timeout', cause: err });
    }
    const code = e.cause?.code ?? 'network error';
    throw new TargetError(`cannot reach ${opts.provider} (${code}) at ${safeUrl(req.url)}`, {
      kind: 'unavailable',
      retryable: code !== 'ENOTFOUND' && code !== 'ECONNREFUSED',
      cause: err,
    });
  }
  const text = await res.text();
  let parsed: unknown = text;
  if (text && (res.headers.get('content-type') ?? '').includes('json')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (res.status >= 200 && res.status < 300) return { status: res.status, headers: res.headers, body: parsed as T };
  const providerMessage = redact(extractMessage(parsed)).slice(0, 500);
  const kind = kindForStatus(res.status);
  const described = opts.describe?.(res.status, providerMessage);
  throw new TargetError(described ?? `${opts.provider} answered ${res.status}${providerMessage ? `: ${providerMessage}` : ''}`, {
    kind,
    status: res.status,
    retryAfterMs: retryAfterFromHeaders(res.headers, opts.clock.now(), res.status),
  });
}

/** The message field of the common error shapes ({error:{message}}, {message}, {errors:[{message}]}, {id,message}). */
export function extractMessage(body: unknown): string {
  if (typeof body === 'string') return body.trim();
  if (!body || typeof body !== 'object') return '';
  const b = body as Record<string, unknown>;
  const err = b.error;
  if (err && typeof err === 'object' && typeof (err as Record<string, unknown>).message === 'string') {
    return (err as Record<string, string>).message!;
  }
  if (typeof err === 'string') return err;
  if (typeof b.message === 'string') return b.message;
  if (Array.isArray(b.errors) && b.errors.length && typeof (b.errors[0] as Record<string, unknown>)?.message === 'string') {
    return (b.errors as Array<{ message: string }>).map((e) => e.message).join('; ');
  }
  // Not cut here: the caller redacts first, then cuts (a key across the cut would survive in part).
  return JSON.stringify(body);
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

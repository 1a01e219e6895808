import { TargetError, type TargetErrorKind } from '../../core/errors.ts';
import { retryAfterFromHeaders } from '../../runtime/retry.ts';
import { redirectRefused } from '../../runtime/http.ts';
import { providerText } from '../../core/printable.ts';

/**
 * Google API errors → TargetError, in product words. No SDK import here (pure parsing), so the
 * mapping is unit-testable and cheap to load.
 *
 * Two shapes reach us:
 * - REST transport (`fallback: true`, what keyrot uses): google-gax hands the request to the auth
 *   client's `fetch` (gaxios), which throws a `GaxiosError` for any non-2xx status before gax can
 *   decode it: `code`/`status` = the HTTP status, `message` = the response body, i.e. the
 *   google.rpc.Status JSON `{"error":{"code","message","status","details":[...]}}`
 *   [VERIFIED-LOCAL with google-gax 5.0.8 / google-auth-library 10.5.0].
 * - gRPC transport, or a REST error gax decoded itself: a `GoogleError` whose numeric `code` is the
 *   gRPC status (0..16), with decoded `statusDetails` and `errorInfoMetadata`
 *   (google-gax build/src/googleError.js).
 */
export const GRPC_STATUS = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
export type GrpcStatus = (typeof GRPC_STATUS)[number];

/** https://cloud.google.com/apis/design/errors#handling_errors (HTTP ↔ canonical code). */
const HTTP_STATUS: Record<number, GrpcStatus> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

export interface GoogleErrorInfo {
  status?: GrpcStatus;
  httpStatus?: number;
  /** Google's own message (resource names, never payloads); kept short. */
  message?: string;
  /** ErrorInfo.reason (IAM_PERMISSION_DENIED, RATE_LIMIT_EXCEEDED, ...). */
  reason?: string;
  /** The IAM permission Google says is missing. */
  permission?: string;
  /** google.rpc.RetryInfo.retryDelay, or a Retry-After header, in ms. */
  retryAfterMs?: number;
  /** ECONNREFUSED, ECONNRESET... when no HTTP answer came back. */
  networkCode?: string;
  /** A redirect's Location (keyrot's transport does not follow redirects). */
  location?: string;
}

type Loose = Record<string, unknown>;
const isObj = (v: unknown): v is Loose => typeof v === 'object' && v !== null;

/** `"2.500s"` (proto3 JSON Duration) or `{seconds, nanos}` (decoded proto) → ms. */
export function durationMs(d: unknown): number | undefined {
  if (typeof d === 'string') {
    const m = /^(\d+(?:\.\d+)?)s$/.exec(d.trim());
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  }
  if (isObj(d)) {
    const s = Number((d.seconds as { toString(): string } | undefined)?.toString() ?? 0);
    const n = Number(d.nanos ?? 0);
    if (Number.isFinite(s) && Number.isFinite(n)) return Math.round(s * 1000 + n / 1e6);
  }
  return undefined;
}

function readDetails(details: unknown, out: GoogleErrorInfo): void {
  if (!Array.isArray(details)) return;
  for (const d of details) {
    if (!isObj(d)) continue;
    const type = typeof d['@type'] === 'string' ? d['@type'] : '';
    if (type.endsWith('google.rpc.RetryInfo') || 'retryDelay' in d) {
      const ms = durationMs(d.retryDelay);
      if (ms !== undefined) out.retryAfterMs = ms;
    }
    if (type.endsWith('google.rpc.ErrorInfo') || ('reason' in d && 'metadata' in d)) {
      if (typeof d.reason === 'string') out.reason ??= d.reason;
      const md = d.metadata;
      if (isObj(md) && typeof md.permission === 'string') out.permission ??= md.permission;
    }
  }
}

function headerGetter(h: unknown): Headers | undefined {
  if (h instanceof Headers) return h;
  if (!isObj(h)) return undefined;
  const out = new Headers();
  for (const [k, v] of Object.entries(h)) if (typeof v === 'string') out.set(k, v);
  return out;
}

/** One header of a gaxios response (node-fetch Headers, WHATWG Headers or a plain object). */
function headerValue(h: unknown, name: string): string | undefined {
  if (!isObj(h)) return undefined;
  if (typeof h.get === 'function') return (h as { get(n: string): string | null }).get(name) ?? undefined;
  return typeof h[name] === 'string' ? (h[name] as string) : undefined;
}

const PERMISSION_IN_MESSAGE = /Permission '?([a-z]+(?:\.[A-Za-z]+)+)'? denied/;

export function parseGoogleError(err: unknown, now = Date.now()): GoogleErrorInfo {
  const e = (isObj(err) ? err : {}) as Loose;
  const out: GoogleErrorInfo = {};
  const response = isObj(e.response) ? e.response : undefined;
  if (response || (typeof e.status === 'number' && isObj(e.config))) {
    // GaxiosError: the HTTP status and the raw google.rpc.Status JSON as the message.
    out.httpStatus = typeof response?.status === 'number' ? response.status : (e.status as number);
    let body: Loose | undefined;
    for (const candidate of [response?.data, e.message]) {
      if (isObj(candidate)) body = candidate;
      else if (typeof candidate === 'string' && candidate.trimStart().startsWith('{')) {
        try {
          body = JSON.parse(candidate) as Loose;
        } catch {
          /* not JSON */
        }
      }
      if (body) break;
    }
    const location = headerValue(response?.headers, 'location');
    if (location) out.location = location;
    const status = isObj(body?.error) ? body.error : undefined;
    if (typeof status?.status === 'string' && (GRPC_STATUS as readonly string[]).includes(status.status)) {
      out.status = status.status as GrpcStatus;
    } else if (out.httpStatus !== undefined) {
      out.status = HTTP_STATUS[out.httpStatus] ?? (out.httpStatus >= 500 ? 'UNAVAILABLE' : undefined);
    }
    if (typeof status?.message === 'string') out.message = status.message;
    readDetails(status?.details, out);
    if (out.retryAfterMs === undefined) {
      const h = headerGetter(response?.headers);
      if (h) out.retryAfterMs = retryAfterFromHeaders(h, now);
    }
  } else if (typeof e.code === 'number' && e.code >= 0 && e.code <= 16) {
    // GoogleError (gRPC status code).
    out.status = GRPC_STATUS[e.code];
    const msg = typeof e.details === 'string' && e.details ? e.details : typeof e.message === 'string' ? e.message : undefined;
    if (msg) out.message = msg;
    if (typeof e.reason === 'string') out.reason = e.reason;
    if (isObj(e.errorInfoMetadata) && typeof e.errorInfoMetadata.permission === 'string') out.permission = e.errorInfoMetadata.permission;
    readDetails(e.statusDetails, out);
  }
  if (!out.status) {
    const code = typeof e.code === 'string' ? e.code : isObj(e.cause) && typeof e.cause.code === 'string' ? e.cause.code : undefined;
    if (code && /^E[A-Z_]+$|^UND_ERR/.test(code)) out.networkCode = code;
  }
  if (!out.permission && out.message) out.permission = PERMISSION_IN_MESSAGE.exec(out.message)?.[1];
  // Redacted before it is cut: a key (or its base64 payload) across the cut would survive in part.
  if (out.message) out.message = providerText(out.message, 240);
  return out;
}

/** Which predefined role carries each permission keyrot uses (docs.cloud.google.com/secret-manager/docs/access-control). */
const ROLE_FOR: Record<string, string> = {
  'secretmanager.versions.add': 'roles/secretmanager.secretVersionAdder',
  'secretmanager.versions.access': 'roles/secretmanager.secretAccessor',
  'secretmanager.versions.list': 'roles/secretmanager.secretVersionManager',
  'secretmanager.versions.disable': 'roles/secretmanager.secretVersionManager',
  'secretmanager.versions.enable': 'roles/secretmanager.secretVersionManager',
  'secretmanager.versions.get': 'roles/secretmanager.secretVersionManager',
  'secretmanager.secrets.get': 'roles/secretmanager.viewer',
};

export function roleHint(permission: string): string {
  const role = ROLE_FOR[permission];
  return role ? ` (${role} on the secret, or a custom role with it)` : '';
}

export interface ErrorContext {
  target: string;
  op: string;
  /** The secret's resource name, as the user configured it. */
  secret: string;
  /** The permission the failed call needs, used when Google's answer does not name one. */
  permission?: string;
  /** Where the credential came from, for the auth hint. */
  credential: string;
  endpoint: string;
  now?: number;
}

/** The TargetError for anything a Secret Manager call threw. Never includes a payload or a token. */
export function gcpError(err: unknown, c: ErrorContext): TargetError {
  if (err instanceof TargetError) return err;
  const info = parseGoogleError(err, c.now);
  const base = { target: c.target, op: c.op, cause: err, status: info.httpStatus };
  const make = (kind: TargetErrorKind, message: string, extra: { retryable?: boolean; retryAfterMs?: number } = {}) =>
    new TargetError(message, { ...base, kind, ...extra });
  const google = info.message ? ` (Google: ${info.message})` : '';
  const rawMessage = isObj(err) && typeof err.message === 'string' ? err.message : '';

  if (!info.status && !info.networkCode && /default credentials|Could not refresh access token|invalid_grant|Unable to detect a Project Id|No refresh token/i.test(rawMessage)) {
    return make(
      'auth',
      `Google Cloud credentials for ${c.secret} are not available (${c.credential}): run \`gcloud auth application-default login\`, set GOOGLE_APPLICATION_CREDENTIALS, attach a service account, or give the target a token: env:VAR`,
      { retryable: false },
    );
  }
  if (info.httpStatus !== undefined && info.httpStatus >= 300 && info.httpStatus < 400) {
    return redirectRefused(
      {
        provider: 'Google Secret Manager',
        status: info.httpStatus,
        location: info.location,
        from: /^https?:/.test(c.endpoint) ? c.endpoint : `https://${c.endpoint}`,
        fix: 'set `endpoint:` of this target to the API’s own host:port (or remove it for secretmanager.googleapis.com)',
      },
      { target: c.target, op: c.op, cause: err },
    );
  }
  switch (info.status) {
    case 'UNAUTHENTICATED':
      return make(
        'auth',
        `Google Cloud rejected the credentials (${c.credential}) for ${c.secret}: the access token is missing, invalid or expired. Refresh them (gcloud auth application-default login, or a new token) and run again`,
        { retryable: false },
      );
    case 'PERMISSION_DENIED': {
      const perm = info.permission ?? c.permission;
      const what = perm ? `${perm} on ${c.secret}` : `${c.op} on ${c.secret}`;
      return make(
        'permission',
        `Google Cloud denied ${what}: grant it to the account keyrot runs as${perm ? roleHint(perm) : ''}. Google gives the same answer when the secret does not exist, so check the project and secret names too`,
        { retryable: false },
      );
    }
    case 'NOT_FOUND':
      return make(
        'not-found',
        `Google Secret Manager has no ${c.secret}${google}: create the secret (keyrot only adds versions to an existing one) or fix project/secret in targets.yaml`,
        { retryable: false },
      );
    case 'RESOURCE_EXHAUSTED':
      return make('rate-limited', `Google Secret Manager is throttling requests on ${c.secret} (RESOURCE_EXHAUSTED, quota exceeded); keyrot will retry`, {
        retryable: true,
        retryAfterMs: info.retryAfterMs,
      });
    case 'UNAVAILABLE':
    case 'INTERNAL':
    case 'UNKNOWN':
      return make('unavailable', `Google Secret Manager is unavailable for ${c.secret} (${info.status}); keyrot will retry`, {
        retryable: true,
        retryAfterMs: info.retryAfterMs,
      });
    case 'DEADLINE_EXCEEDED':
    case 'CANCELLED':
      return make('timeout', `Google Secret Manager did not answer ${c.op} on ${c.secret} in time (${info.status})`, { retryable: info.status === 'DEADLINE_EXCEEDED' });
    case 'ABORTED':
      return make('conflict', `Google Secret Manager aborted ${c.op} on ${c.secret} because of a concurrent change${google}; keyrot will retry`, { retryable: true });
    case 'FAILED_PRECONDITION':
    case 'ALREADY_EXISTS':
      return make('conflict', `Google Secret Manager refused ${c.op} on ${c.secret}${google}`, { retryable: false });
    case 'INVALID_ARGUMENT':
    case 'OUT_OF_RANGE':
      return make('invalid', `Google Secret Manager rejected ${c.op} on ${c.secret} as invalid${google}`, { retryable: false });
    case 'UNIMPLEMENTED':
      return make('unsupported', `the Secret Manager endpoint ${c.endpoint} does not implement ${c.op}${google}`, { retryable: false });
    case 'DATA_LOSS':
      return make('mismatch', `Google Secret Manager reported data loss on ${c.secret}${google}`, { retryable: false });
    default:
      break;
  }
  if (info.networkCode) {
    const permanent = info.networkCode === 'ECONNREFUSED' || info.networkCode === 'ENOTFOUND';
    return make(
      'unavailable',
      `cannot reach Google Secret Manager at ${c.endpoint} for ${c.secret} (${info.networkCode})${permanent ? ': check the endpoint and the network' : '; keyrot will retry'}`,
      { retryable: !permanent },
    );
  }
  const name = isObj(err) && typeof err.name === 'string' ? err.name : 'error';
  return make('invalid', `Google Secret Manager ${c.op} on ${c.secret} failed unexpectedly (${name}${info.httpStatus ? ` HTTP ${info.httpStatus}` : ''})`, {
    retryable: false,
  });
}

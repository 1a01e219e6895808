import { providerText } from '../core/printable.ts';
import { TargetError } from '../core/errors.ts';
import { formatDuration } from '../inventory/duration.ts';
import { redirectRefused } from '../runtime/http.ts';
import type { AwsService } from './aws-client.ts';

/**
 * What every AWS SDK error means for keyrot, whatever the service: redirects, credentials,
 * throttling, outages, timeouts, the network. Each service adds its own codes (`specific`) and
 * its KMS advice; this file never sees a value, only the SDK's error.
 */

export interface AwsErrorContext {
  service: AwsService;
  target: string;
  op: string;
  /** The API action (`PutParameter`); messages name the IAM action `<iam>:<action>`. */
  action: string;
  /** The resource as the user wrote it (secret name or ARN, parameter name). */
  resource: string;
  region: string | undefined;
  /** The endpoint when the user overrode it (`endpoint:` or AWS_ENDPOINT_URL*), for network errors. */
  endpoint: string | undefined;
  /** The deadline of one call, for the timeout message. */
  timeoutMs?: number;
  /** The call's deadline passed: whatever the SDK threw (a body cut mid-read is an ECONNRESET), it is a timeout. */
  timedOut?: boolean;
  /** What to grant when AWS denies an action because of the resource's KMS key. */
  kmsAdvice: string;
  /** The service's own error codes, tried first (after redirects). */
  specific?: (name: string, e: SdkErrorLike, init: ErrorInit) => TargetError | undefined;
}

export interface ErrorInit {
  target: string;
  op: string;
  status: number | undefined;
  cause: unknown;
}

/**
 * Error codes, as the SDK puts them in `err.name`: it takes `__type`, then `code`, then the
 * `x-amzn-ErrorType` header, stripping a `namespace#` prefix and a `:suffix`
 * (@smithy/core protocols, awsJson1_1 error deserialisation: loadJsonRpcErrorCode).
 */
const AUTH_CODES: Record<string, string> = {
  UnrecognizedClientException: 'the access key id is not valid (deleted, inactive, or from another account/partition)',
  InvalidClientTokenId: 'the access key id is not valid (deleted, inactive, or from another account/partition)',
  InvalidSignatureException: 'the request signature does not match: the secret access key is wrong (or the system clock is off)',
  SignatureDoesNotMatch: 'the request signature does not match: the secret access key is wrong (or the system clock is off)',
  IncompleteSignatureException: 'the request signature is incomplete',
  MissingAuthenticationTokenException: 'the request carried no credentials',
  ExpiredTokenException: 'the session credentials have expired: refresh them (aws sso login, or assume the role again)',
  ExpiredToken: 'the session credentials have expired: refresh them (aws sso login, or assume the role again)',
  RequestExpired: 'the request signature has expired: check the system clock',
};

const THROTTLE_CODES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'ProvisionedThroughputExceededException',
]);

const UNAVAILABLE_CODES = new Set([
  'InternalServiceError',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
]);

const NETWORK_CODES = /^(ECONNRESET|ECONNREFUSED|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNABORTED|UND_ERR_SOCKET)$/;

export interface SdkErrorLike {
  name?: string;
  message?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
  /** The raw answer (non-enumerable on SDK errors): a redirect's Location is in its headers. */
  $response?: { headers?: Record<string, string | undefined> };
  cause?: { code?: string };
}

/** The provider's own words, made safe to show: one line, no control characters, redacted, bounded. */
export function awsSaid(message: string | undefined): string {
  if (!message) return '';
  return ` (AWS said: ${providerText(message)})`;
}

/**
 * Translates anything the SDK throws into a TargetError in product words. The SDK error is kept
 * only as the non-enumerable `cause`; the message never carries a request body or a value.
 */
export function awsError(err: unknown, c: AwsErrorContext): TargetError {
  if (err instanceof TargetError) return err;
  const e = (err ?? {}) as SdkErrorLike;
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const init: ErrorInit = { target: c.target, op: c.op, status, cause: err };
  // The SDK's node:http handler never follows a redirect: a 3xx comes back as an "Unknown" error.
  if (status !== undefined && status >= 300 && status < 400) return redirected(e, status, c);
  return c.specific?.(name, e, init) ?? answered(name, e, status, c, init) ?? unanswered(name, e, c, init);
}

function where(c: AwsErrorContext): string {
  return `${c.resource}${c.region ? ` (${c.region})` : ''}`;
}

function redirected(e: SdkErrorLike, status: number, c: AwsErrorContext): TargetError {
  return redirectRefused(
    {
      provider: c.service.name,
      status,
      location: e.$response?.headers?.location,
      from: c.endpoint ?? `https://${c.service.host}.${c.region ?? 'us-east-1'}.amazonaws.com`,
      fix: `set \`endpoint:\` of this target (or ${c.service.endpointEnv}) to the service’s own URL, or remove it for the regional default`,
    },
    { target: c.target, op: c.op, cause: e },
  );
}

/** Errors AWS answered (or the SDK's credential chain raised) that every service shares. */
function answered(name: string, e: SdkErrorLike, status: number | undefined, c: AwsErrorContext, init: ErrorInit): TargetError | undefined {
  const action = `${c.service.iam}:${c.action}`;
  if (name === 'AccessDeniedException' || name === 'AccessDenied') {
    const what = /\bkms\b/i.test(e.message ?? '')
      ? `AWS denied ${action} on ${where(c)} because of its KMS key: ${c.kmsAdvice}`
      : `AWS denied ${action} on ${where(c)}: grant it to the identity keyrot runs as (the target README lists the least-privilege policy)`;
    return new TargetError(what + awsSaid(e.message), { ...init, kind: 'permission', retryable: false });
  }
  // No credentials at all: the SDK's default chain found none (CredentialsProviderError, "Could not
  // load credentials from any providers"). Nothing reached AWS, so nothing was "rejected".
  if (name === 'CredentialsProviderError' || /could not load credentials from any providers/i.test(e.message ?? '')) {
    return new TargetError(
      `no AWS credentials were found for ${where(c)}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, set AWS_PROFILE to a configured profile (or run aws sso login), or run keyrot where an instance/task role is attached`,
      { ...init, kind: 'auth', retryable: false },
    );
  }
  const authWhy = AUTH_CODES[name];
  if (authWhy) return new TargetError(`AWS rejected the credentials keyrot used for ${where(c)}: ${authWhy}`, { ...init, kind: 'auth', retryable: false });
  if (THROTTLE_CODES.has(name) || status === 429) {
    return new TargetError(`${c.service.name} throttled ${action} on ${where(c)}; retrying with backoff`, { ...init, kind: 'rate-limited', retryable: true });
  }
  if (UNAVAILABLE_CODES.has(name) || e.$fault === 'server' || (status !== undefined && status >= 500)) {
    return new TargetError(`${c.service.name} failed ${action} on ${where(c)} (${name}${status ? ` ${status}` : ''}); retrying`, {
      ...init,
      kind: 'unavailable',
      retryable: true,
    });
  }
  if (name === 'InvalidRequestException' || name === 'InvalidParameterException' || name === 'ValidationException') {
    return new TargetError(`${c.service.name} refused ${action} on ${where(c)}${awsSaid(e.message)}`, { ...init, kind: 'invalid', retryable: false });
  }
  return undefined;
}

/** Errors raised by the SDK or the network, before or without an AWS answer; else the fallback. */
function unanswered(name: string, e: SdkErrorLike, c: AwsErrorContext, init: ErrorInit): TargetError {
  const action = `${c.service.iam}:${c.action}`;
  if (/region is missing/i.test(e.message ?? '')) {
    return new TargetError(`no AWS region for ${c.resource}: set region: in targets.yaml, or AWS_REGION (or a profile region)`, { ...init, kind: 'invalid', retryable: false });
  }
  if (/region not accepted/i.test(e.message ?? '')) {
    return new TargetError(`the AWS region for ${c.resource} is not valid: fix region: in targets.yaml (or AWS_REGION)`, { ...init, kind: 'invalid', retryable: false });
  }
  const code = e.code ?? e.cause?.code;
  if (c.timedOut || name === 'TimeoutError' || name === 'AbortError' || code === 'ETIMEDOUT') {
    const within = c.timeoutMs !== undefined ? `within ${formatDuration(c.timeoutMs)}` : 'in time';
    return new TargetError(`${c.service.name} did not answer ${action} on ${where(c)} ${within}`, { ...init, kind: 'timeout', retryable: true });
  }
  if (code && NETWORK_CODES.test(code)) {
    const at = c.endpoint ? ` at ${safeUrl(c.endpoint)}` : c.region ? ` in ${c.region}` : '';
    return new TargetError(`cannot reach ${c.service.name}${at} (${code}) for ${where(c)}`, {
      ...init,
      kind: 'unavailable',
      // A refused connection or unknown host rarely heals within a retry budget; a reset does.
      retryable: code !== 'ENOTFOUND' && code !== 'ECONNREFUSED',
    });
  }
  const status = init.status;
  return new TargetError(`${c.service.name} ${action} on ${where(c)} failed: ${name}${status ? ` (HTTP ${status})` : ''}${awsSaid(e.message)}`, {
    ...init,
    kind: 'invalid',
    retryable: false,
  });
}

/** An endpoint URL without userinfo, query or fragment. */
export function safeUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(invalid endpoint URL)';
  }
}

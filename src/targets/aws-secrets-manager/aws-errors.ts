import { redact } from '../../core/redact.ts';
import { TargetError } from '../../core/errors.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { redirectRefused } from '../../runtime/http.ts';
import { providerText } from '../../core/printable.ts';

/** The IAM actions keyrot calls; permission errors name the one AWS denied. */
export type SmAction = 'DescribeSecret' | 'GetSecretValue' | 'PutSecretValue' | 'UpdateSecretVersionStage';

export interface AwsErrorContext {
  target: string;
  op: string;
  action: SmAction;
  /** The secret as the user wrote it (name or ARN). */
  secret: string;
  region: string | undefined;
  /** The endpoint when the user overrode it (`endpoint:` or AWS_ENDPOINT_URL*), for network errors. */
  endpoint: string | undefined;
  /** The deadline of one call, for the timeout message. */
  timeoutMs?: number;
  /** The call's deadline passed: whatever the SDK threw (a body cut mid-read is an ECONNRESET), it is a timeout. */
  timedOut?: boolean;
}

/**
 * Error codes, as the SDK puts them in `err.name`: it takes `__type`, then `code`, then the
 * `x-amzn-ErrorType` header, stripping a `namespace#` prefix and a `:suffix`
 * (@smithy/core protocols, awsJson1_1 error deserialisation; README "Provider facts").
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

const UNAVAILABLE_CODES = new Set(['InternalServiceError', 'InternalFailure', 'ServiceUnavailable', 'ServiceUnavailableException']);

const NETWORK_CODES = /^(ECONNRESET|ECONNREFUSED|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNABORTED|UND_ERR_SOCKET)$/;

interface SdkErrorLike {
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
function said(message: string | undefined): string {
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
  const where = `${c.secret}${c.region ? ` (${c.region})` : ''}`;
  const init = { target: c.target, op: c.op, status, cause: err };
  const action = `secretsmanager:${c.action}`;

  // The SDK's node:http handler never follows a redirect: a 3xx comes back as an "Unknown" error.
  if (status !== undefined && status >= 300 && status < 400) {
    return redirectRefused(
      {
        provider: 'AWS Secrets Manager',
        status,
        location: e.$response?.headers?.location,
        from: c.endpoint ?? `https://secretsmanager.${c.region ?? 'us-east-1'}.amazonaws.com`,
        fix: 'set `endpoint:` of this target (or AWS_ENDPOINT_URL_SECRETS_MANAGER) to the service’s own URL, or remove it for the regional default',
      },
      { target: c.target, op: c.op, cause: err },
    );
  }
  if (name === 'AccessDeniedException' || name === 'AccessDenied') {
    const kms = /\bkms\b/i.test(e.message ?? '');
    const what = kms
      ? `AWS denied ${action} on ${where} because of its KMS key: grant kms:Decrypt (reads) and kms:GenerateDataKey (writes) on the secret's customer-managed key to the identity keyrot runs as`
      : `AWS denied ${action} on ${where}: grant it to the identity keyrot runs as (the target README lists the least-privilege policy)`;
    return new TargetError(what + said(e.message), { ...init, kind: 'permission', retryable: false });
  }
  if (name === 'DecryptionFailure') {
    return new TargetError(
      `AWS Secrets Manager cannot decrypt ${where} with its KMS key: grant kms:Decrypt on that key to the identity keyrot runs as, and check the key is enabled${said(e.message)}`,
      { ...init, kind: 'permission', retryable: false },
    );
  }
  if (name === 'EncryptionFailure') {
    return new TargetError(
      `AWS Secrets Manager cannot encrypt the new value of ${where} with its KMS key: grant kms:GenerateDataKey and kms:Decrypt on that key, and check the key is enabled and symmetric${said(e.message)}`,
      { ...init, kind: 'permission', retryable: false },
    );
  }
  // No credentials at all: the SDK's default chain found none (CredentialsProviderError, "Could not
  // load credentials from any providers"). Nothing reached AWS, so nothing was "rejected".
  if (name === 'CredentialsProviderError' || /could not load credentials from any providers/i.test(e.message ?? '')) {
    return new TargetError(
      `no AWS credentials were found for ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, set AWS_PROFILE to a configured profile (or run aws sso login), or run keyrot where an instance/task role is attached`,
      { ...init, kind: 'auth', retryable: false },
    );
  }
  const authWhy = AUTH_CODES[name];
  if (authWhy) {
    return new TargetError(`AWS rejected the credentials keyrot used for ${where}: ${authWhy}`, { ...init, kind: 'auth', retryable: false });
  }
  if (name === 'ResourceNotFoundException') {
    return new TargetError(
      `AWS Secrets Manager has no secret ${c.secret}${c.region ? ` in ${c.region}` : ''}: check secret: and region: in targets.yaml (keyrot does not create secrets; create it with aws secretsmanager create-secret)`,
      { ...init, kind: 'not-found', retryable: false },
    );
  }
  if (THROTTLE_CODES.has(name) || status === 429) {
    return new TargetError(`AWS Secrets Manager throttled ${action} on ${where}; retrying with backoff`, {
      ...init,
      kind: 'rate-limited',
      retryable: true,
    });
  }
  if (UNAVAILABLE_CODES.has(name) || e.$fault === 'server' || (status !== undefined && status >= 500)) {
    return new TargetError(`AWS Secrets Manager failed ${action} on ${where} (${name}${status ? ` ${status}` : ''}); retrying`, {
      ...init,
      kind: 'unavailable',
      retryable: true,
    });
  }
  if (name === 'ResourceExistsException') {
    return new TargetError(
      `AWS Secrets Manager already has this rotation's version of ${where} with a different value: a rotation id was reused with another key; start a new rotation${said(e.message)}`,
      { ...init, kind: 'conflict', retryable: false },
    );
  }
  if (name === 'LimitExceededException') {
    return new TargetError(
      `AWS Secrets Manager refused ${action} on ${where}: a quota is reached (at most 100 versions are kept, and unlabeled ones are pruned only after 24 hours)${said(e.message)}`,
      { ...init, kind: 'invalid', retryable: false },
    );
  }
  if (name === 'InvalidRequestException' || name === 'InvalidParameterException' || name === 'ValidationException') {
    return new TargetError(`AWS Secrets Manager refused ${action} on ${where}${said(e.message)}`, {
      ...init,
      kind: 'invalid',
      retryable: false,
    });
  }
  // Below: errors raised by the SDK or the network, before or without an AWS answer.
  if (/region is missing/i.test(e.message ?? '')) {
    return new TargetError(`no AWS region for ${c.secret}: set region: in targets.yaml, or AWS_REGION (or a profile region)`, {
      ...init,
      kind: 'invalid',
      retryable: false,
    });
  }
  if (/region not accepted/i.test(e.message ?? '')) {
    return new TargetError(`the AWS region for ${c.secret} is not valid: fix region: in targets.yaml (or AWS_REGION)`, {
      ...init,
      kind: 'invalid',
      retryable: false,
    });
  }
  const code = e.code ?? e.cause?.code;
  if (c.timedOut || name === 'TimeoutError' || name === 'AbortError' || code === 'ETIMEDOUT') {
    const within = c.timeoutMs !== undefined ? `within ${formatDuration(c.timeoutMs)}` : 'in time';
    return new TargetError(`AWS Secrets Manager did not answer ${action} on ${where} ${within}`, { ...init, kind: 'timeout', retryable: true });
  }
  if (code && NETWORK_CODES.test(code)) {
    const at = c.endpoint ? ` at ${safeUrl(c.endpoint)}` : c.region ? ` in ${c.region}` : '';
    return new TargetError(`cannot reach AWS Secrets Manager${at} (${code}) for ${where}`, {
      ...init,
      kind: 'unavailable',
      // A refused connection or unknown host rarely heals within a retry budget; a reset does.
      retryable: code !== 'ENOTFOUND' && code !== 'ECONNREFUSED',
    });
  }
  return new TargetError(`AWS Secrets Manager ${action} on ${where} failed: ${name}${status ? ` (HTTP ${status})` : ''}${said(e.message)}`, {
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

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

/** What a rule reads from an SDK error, and the words it writes. */
interface Seen {
  e: SdkErrorLike;
  name: string;
  status: number | undefined;
  code: string | undefined;
  /** `secret (region)`. */
  where: string;
  /** `secretsmanager:Action`. */
  action: string;
  c: AwsErrorContext;
}
type Made = { message: string; kind: TargetError['kind']; retryable: boolean };
type Rule = { when: (s: Seen) => boolean; make: (s: Seen) => Made };

const fixed = (kind: TargetError['kind'], retryable: boolean) => (message: string): Made => ({ message, kind, retryable });
const permission = fixed('permission', false);
const invalid = fixed('invalid', false);

/**
 * The SDK error → outcome table, first match wins. Answers from AWS come first (by error code,
 * then status); below them, errors raised by the SDK or the network, before or without an answer.
 */
const RULES: Rule[] = [
  {
    when: (s) => s.name === 'AccessDeniedException' || s.name === 'AccessDenied',
    make: ({ e, action, where }) =>
      permission(
        (/\bkms\b/i.test(e.message ?? '')
          ? `AWS denied ${action} on ${where} because of its KMS key: grant kms:Decrypt (reads) and kms:GenerateDataKey (writes) on the secret's customer-managed key to the identity keyrot runs as`
          : `AWS denied ${action} on ${where}: grant it to the identity keyrot runs as (the target README lists the least-privilege policy)`) + said(e.message),
      ),
  },
  {
    when: (s) => s.name === 'DecryptionFailure',
    make: ({ e, where }) =>
      permission(`AWS Secrets Manager cannot decrypt ${where} with its KMS key: grant kms:Decrypt on that key to the identity keyrot runs as, and check the key is enabled${said(e.message)}`),
  },
  {
    when: (s) => s.name === 'EncryptionFailure',
    make: ({ e, where }) =>
      permission(
        `AWS Secrets Manager cannot encrypt the new value of ${where} with its KMS key: grant kms:GenerateDataKey and kms:Decrypt on that key, and check the key is enabled and symmetric${said(e.message)}`,
      ),
  },
  // No credentials at all: the SDK's default chain found none (CredentialsProviderError, "Could not
  // load credentials from any providers"). Nothing reached AWS, so nothing was "rejected".
  {
    when: (s) => s.name === 'CredentialsProviderError' || /could not load credentials from any providers/i.test(s.e.message ?? ''),
    make: ({ where }) => ({
      message: `no AWS credentials were found for ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, set AWS_PROFILE to a configured profile (or run aws sso login), or run keyrot where an instance/task role is attached`,
      kind: 'auth',
      retryable: false,
    }),
  },
  {
    when: (s) => Object.hasOwn(AUTH_CODES, s.name),
    make: ({ name, where }) => ({ message: `AWS rejected the credentials keyrot used for ${where}: ${AUTH_CODES[name]}`, kind: 'auth', retryable: false }),
  },
  {
    when: (s) => s.name === 'ResourceNotFoundException',
    make: ({ c }) => ({
      message: `AWS Secrets Manager has no secret ${c.secret}${c.region ? ` in ${c.region}` : ''}: check secret: and region: in targets.yaml (keyrot does not create secrets; create it with aws secretsmanager create-secret)`,
      kind: 'not-found',
      retryable: false,
    }),
  },
  {
    when: (s) => THROTTLE_CODES.has(s.name) || s.status === 429,
    make: ({ action, where }) => ({ message: `AWS Secrets Manager throttled ${action} on ${where}; retrying with backoff`, kind: 'rate-limited', retryable: true }),
  },
  {
    when: (s) => UNAVAILABLE_CODES.has(s.name) || s.e.$fault === 'server' || (s.status !== undefined && s.status >= 500),
    make: ({ action, where, name, status }) => ({
      message: `AWS Secrets Manager failed ${action} on ${where} (${name}${status ? ` ${status}` : ''}); retrying`,
      kind: 'unavailable',
      retryable: true,
    }),
  },
  {
    when: (s) => s.name === 'ResourceExistsException',
    make: ({ e, where }) => ({
      message: `AWS Secrets Manager already has this rotation's version of ${where} with a different value: a rotation id was reused with another key; start a new rotation${said(e.message)}`,
      kind: 'conflict',
      retryable: false,
    }),
  },
  {
    when: (s) => s.name === 'LimitExceededException',
    make: ({ e, action, where }) =>
      invalid(`AWS Secrets Manager refused ${action} on ${where}: a quota is reached (at most 100 versions are kept, and unlabeled ones are pruned only after 24 hours)${said(e.message)}`),
  },
  {
    when: (s) => s.name === 'InvalidRequestException' || s.name === 'InvalidParameterException' || s.name === 'ValidationException',
    make: ({ e, action, where }) => invalid(`AWS Secrets Manager refused ${action} on ${where}${said(e.message)}`),
  },
  {
    when: (s) => /region is missing/i.test(s.e.message ?? ''),
    make: ({ c }) => invalid(`no AWS region for ${c.secret}: set region: in targets.yaml, or AWS_REGION (or a profile region)`),
  },
  {
    when: (s) => /region not accepted/i.test(s.e.message ?? ''),
    make: ({ c }) => invalid(`the AWS region for ${c.secret} is not valid: fix region: in targets.yaml (or AWS_REGION)`),
  },
  {
    when: (s) => Boolean(s.c.timedOut) || s.name === 'TimeoutError' || s.name === 'AbortError' || s.code === 'ETIMEDOUT',
    make: ({ c, action, where }) => ({
      message: `AWS Secrets Manager did not answer ${action} on ${where} ${c.timeoutMs !== undefined ? `within ${formatDuration(c.timeoutMs)}` : 'in time'}`,
      kind: 'timeout',
      retryable: true,
    }),
  },
  {
    when: (s) => s.code !== undefined && NETWORK_CODES.test(s.code),
    make: ({ c, code, where }) => ({
      message: `cannot reach AWS Secrets Manager${c.endpoint ? ` at ${safeUrl(c.endpoint)}` : c.region ? ` in ${c.region}` : ''} (${code}) for ${where}`,
      kind: 'unavailable',
      // A refused connection or unknown host rarely heals within a retry budget; a reset does.
      retryable: code !== 'ENOTFOUND' && code !== 'ECONNREFUSED',
    }),
  },
];

/**
 * Translates anything the SDK throws into a TargetError in product words. The SDK error is kept
 * only as the non-enumerable `cause`; the message never carries a request body or a value.
 */
export function awsError(err: unknown, c: AwsErrorContext): TargetError {
  if (err instanceof TargetError) return err;
  const e = (err ?? {}) as SdkErrorLike;
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const init = { target: c.target, op: c.op, status, cause: err };
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
  const seen: Seen = { e, name, status, code: e.code ?? e.cause?.code, where: `${c.secret}${c.region ? ` (${c.region})` : ''}`, action: `secretsmanager:${c.action}`, c };
  const rule = RULES.find((r) => r.when(seen));
  const made = rule
    ? rule.make(seen)
    : invalid(`AWS Secrets Manager ${seen.action} on ${seen.where} failed: ${name}${status ? ` (HTTP ${status})` : ''}${said(e.message)}`);
  const { message, ...outcome } = made;
  return new TargetError(message, { ...init, ...outcome });
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

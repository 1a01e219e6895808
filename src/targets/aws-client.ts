import { registerSensitive } from '../core/secret.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, deadlineSignal } from '../runtime/deadline.ts';
import { waitTimeoutMs, type CommonTargetConfig } from './types.ts';

/**
 * What every AWS target sets up the same way before it makes a call: the region, the endpoint,
 * static credentials from the environment (else the SDK's default chain), and one deadline per
 * call with no SDK retries. Each adapter builds its own SDK client from `clientConfig`.
 */

/** One AWS service, as the messages and the endpoint variables name it. */
export interface AwsService {
  /** For messages: "AWS Secrets Manager", "AWS Systems Manager Parameter Store". */
  name: string;
  /** The IAM action prefix: `secretsmanager`, `ssm`. */
  iam: string;
  /** The SDK's service-specific endpoint variable: `AWS_ENDPOINT_URL_` + the service id upper-cased. */
  endpointEnv: string;
  /** The public endpoint's host prefix: `https://<host>.<region>.amazonaws.com`. */
  host: string;
}

export interface AwsClientConfig {
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  maxAttempts: number;
  requestHandler: { requestTimeout: number; connectionTimeout: number; throwOnRequestTimeout: boolean };
}

export interface AwsSetup {
  region: string | undefined;
  /** The endpoint when one was configured (`endpoint:` or the variables), for messages. */
  endpoint: string | undefined;
  timeoutMs: number;
  clientConfig: AwsClientConfig;
  /** Per-call options: the caller's signal under this call's deadline. */
  callOptions(signal?: AbortSignal): { abortSignal: AbortSignal };
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && v !== '' && v.toLowerCase() !== 'false' && v !== '0';
}

/**
 * The service endpoint: `endpoint:` from targets.yaml wins; else the SDK's standard variables
 * AWS_ENDPOINT_URL_<SERVICE> then AWS_ENDPOINT_URL (unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS),
 * read here from ctx.env so they are injectable. The SDK resolves the same variables itself from
 * process.env (and `endpoint_url` from the shared config file) when no endpoint is passed:
 * @smithy/core endpoints/middleware-endpoint/adaptors/getEndpointUrlConfig.js builds
 * `AWS_ENDPOINT_URL_` + the service id upper-cased and joined by `_`.
 */
export function awsEndpoint(service: AwsService, config: CommonTargetConfig, env: NodeJS.ProcessEnv): string | undefined {
  if (config.endpoint) return config.endpoint;
  if (truthy(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)) return undefined;
  return env[service.endpointEnv] || env.AWS_ENDPOINT_URL || undefined;
}

/**
 * Static credentials from ctx.env, exactly where the SDK's default chain would take them: the
 * first link (fromEnv) is skipped when AWS_PROFILE is set (@aws-sdk/credential-provider-node
 * defaultProvider.js). Otherwise undefined: the SDK's default chain (profile, SSO, web identity,
 * ECS/EC2 roles) runs. Reading ctx.env keeps the environment injectable; in the CLI it is process.env.
 */
export function envCredentials(env: NodeJS.ProcessEnv): AwsClientConfig['credentials'] {
  if (env.AWS_PROFILE) return undefined;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  registerSensitive(secretAccessKey);
  const sessionToken = env.AWS_SESSION_TOKEN || undefined;
  if (sessionToken) registerSensitive(sessionToken);
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

/**
 * The region when the target names none: AWS_REGION (the JS SDK's variable), or
 * AWS_DEFAULT_REGION (the CLI's, accepted because users set it for the CLI); left undefined, the
 * SDK looks in the shared config profile.
 */
export function envRegion(env: NodeJS.ProcessEnv): string | undefined {
  return env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined;
}

export function awsSetup(service: AwsService, config: CommonTargetConfig, env: NodeJS.ProcessEnv, region: string | undefined): AwsSetup {
  const endpoint = awsEndpoint(service, config, env);
  const credentials = envCredentials(env);
  const timeoutMs = waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
  return {
    region,
    endpoint,
    timeoutMs,
    // Retries are the engine's (withRetry): one policy governs, so the SDK makes one attempt.
    // requestTimeout alone only logs a warning in @smithy/node-http-handler 4.x
    // (set-request-timeout.js): throwOnRequestTimeout turns it into an error. It stops once the
    // headers arrive, so each call also carries an abort signal with the same deadline, which
    // covers a body that stalls (the handler destroys the request on abort).
    clientConfig: {
      ...(region ? { region } : {}),
      ...(endpoint ? { endpoint } : {}),
      ...(credentials ? { credentials } : {}),
      maxAttempts: 1,
      requestHandler: { requestTimeout: timeoutMs, connectionTimeout: Math.min(10_000, timeoutMs), throwOnRequestTimeout: true },
    },
    callOptions: (signal) => ({ abortSignal: deadlineSignal(timeoutMs, signal) }),
  };
}

/**
 * The rate-limit domain of an AWS service's calls: quotas are per account and region, so targets
 * (and a discover) of one region, endpoint and credentials source share one pacing lane.
 */
export function awsRateLimitKey(id: string, aws: AwsSetup, env: NodeJS.ProcessEnv): string {
  const source = env.AWS_PROFILE || (aws.clientConfig.credentials ? 'env' : 'default chain');
  return `${id}:${aws.region ?? 'default region'}:${aws.endpoint ?? 'aws'}:${source}`;
}

import { TargetError } from '../../core/errors.ts';
import type { AwsService } from '../aws-client.ts';
import { awsError as translate, awsSaid, type ErrorInit, type SdkErrorLike } from '../aws-errors.ts';

/** The IAM actions keyrot calls; permission errors name the one AWS denied. */
export type SmAction = 'DescribeSecret' | 'GetSecretValue' | 'PutSecretValue' | 'UpdateSecretVersionStage' | 'ListSecrets';

export const SECRETS_MANAGER: AwsService = {
  name: 'AWS Secrets Manager',
  iam: 'secretsmanager',
  endpointEnv: 'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  host: 'secretsmanager',
};

export interface SmErrorContext {
  target: string;
  op: string;
  action: SmAction;
  /** The secret as the user wrote it (name or ARN). */
  secret: string;
  region: string | undefined;
  endpoint: string | undefined;
  timeoutMs?: number;
  timedOut?: boolean;
}

/** Secrets Manager's own codes (errors.d.ts of @aws-sdk/client-secrets-manager), in product words. */
function smSpecific(c: SmErrorContext) {
  const where = `${c.secret}${c.region ? ` (${c.region})` : ''}`;
  const action = `secretsmanager:${c.action}`;
  return (name: string, e: SdkErrorLike, init: ErrorInit): TargetError | undefined => {
    if (name === 'DecryptionFailure') {
      return new TargetError(
        `AWS Secrets Manager cannot decrypt ${where} with its KMS key: grant kms:Decrypt on that key to the identity keyrot runs as, and check the key is enabled${awsSaid(e.message)}`,
        { ...init, kind: 'permission', retryable: false },
      );
    }
    if (name === 'EncryptionFailure') {
      return new TargetError(
        `AWS Secrets Manager cannot encrypt the new value of ${where} with its KMS key: grant kms:GenerateDataKey and kms:Decrypt on that key, and check the key is enabled and symmetric${awsSaid(e.message)}`,
        { ...init, kind: 'permission', retryable: false },
      );
    }
    if (name === 'ResourceNotFoundException') {
      return new TargetError(
        `AWS Secrets Manager has no secret ${c.secret}${c.region ? ` in ${c.region}` : ''}: check secret: and region: in targets.yaml (keyrot does not create secrets; create it with aws secretsmanager create-secret)`,
        { ...init, kind: 'not-found', retryable: false },
      );
    }
    if (name === 'ResourceExistsException') {
      return new TargetError(
        `AWS Secrets Manager already has this rotation's version of ${where} with a different value: a rotation id was reused with another key; start a new rotation${awsSaid(e.message)}`,
        { ...init, kind: 'conflict', retryable: false },
      );
    }
    if (name === 'LimitExceededException') {
      return new TargetError(
        `AWS Secrets Manager refused ${action} on ${where}: a quota is reached (at most 100 versions are kept, and unlabeled ones are pruned only after 24 hours)${awsSaid(e.message)}`,
        { ...init, kind: 'invalid', retryable: false },
      );
    }
    return undefined;
  };
}

/**
 * Translates anything the SDK throws into a TargetError in product words: Secrets Manager's own
 * codes here, everything AWS services share in ../aws-errors.ts.
 */
export function awsError(err: unknown, c: SmErrorContext): TargetError {
  return translate(err, {
    service: SECRETS_MANAGER,
    target: c.target,
    op: c.op,
    action: c.action,
    resource: c.secret,
    region: c.region,
    endpoint: c.endpoint,
    timeoutMs: c.timeoutMs,
    timedOut: c.timedOut,
    kmsAdvice: `grant kms:Decrypt (reads) and kms:GenerateDataKey (writes) on the secret's customer-managed key to the identity keyrot runs as`,
    specific: smSpecific(c),
  });
}

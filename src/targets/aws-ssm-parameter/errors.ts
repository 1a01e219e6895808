import { TargetError } from '../../core/errors.ts';
import type { AwsService } from '../aws-client.ts';
import { awsError, awsSaid, type ErrorInit, type SdkErrorLike } from '../aws-errors.ts';

/** The API actions keyrot calls; permission errors name the IAM action `ssm:<action>` AWS denied. */
export type SsmAction =
  | 'GetParameter'
  | 'GetParameterHistory'
  | 'GetParametersByPath'
  | 'PutParameter'
  | 'LabelParameterVersion'
  | 'UnlabelParameterVersion'
  | 'DeleteParameter';

export const PARAMETER_STORE: AwsService = {
  name: 'AWS Systems Manager Parameter Store',
  iam: 'ssm',
  // The SDK's service id is "SSM" (@aws-sdk/client-ssm runtimeConfig serviceId).
  endpointEnv: 'AWS_ENDPOINT_URL_SSM',
  host: 'ssm',
};

export interface SsmErrorContext {
  target: string;
  op: string;
  action: SsmAction;
  parameter: string;
  region: string | undefined;
  endpoint: string | undefined;
  timeoutMs?: number;
  timedOut?: boolean;
}

/** Parameter Store's own codes (the @throws of each command in @aws-sdk/client-ssm), in product words. */
function ssmSpecific(c: SsmErrorContext) {
  const where = `${c.parameter}${c.region ? ` (${c.region})` : ''}`;
  const init0 = (init: ErrorInit, kind: TargetError['kind'], retryable = false) => ({ ...init, kind, retryable });
  return (name: string, e: SdkErrorLike, init: ErrorInit): TargetError | undefined => {
    switch (name) {
      case 'ParameterNotFound':
        return new TargetError(
          `Parameter Store has no parameter ${c.parameter}${c.region ? ` in ${c.region}` : ''}: check parameter: and region: in targets.yaml`,
          init0(init, 'not-found'),
        );
      case 'ParameterVersionNotFound':
        return new TargetError(`Parameter Store has no such version of ${where}${awsSaid(e.message)}`, init0(init, 'not-found'));
      case 'TooManyUpdates':
        return new TargetError(`Parameter Store is applying another update to ${where} (TooManyUpdates); retrying`, init0(init, 'rate-limited', true));
      case 'ParameterMaxVersionLimitExceeded':
        return new TargetError(
          `Parameter Store keeps 100 versions of ${where} and its oldest has a label, so it cannot drop it to make room: move that label to a newer version (aws ssm label-parameter-version --name ${c.parameter} --parameter-version N --labels LABEL), then retry${awsSaid(e.message)}`,
          init0(init, 'invalid'),
        );
      case 'ParameterVersionLabelLimitExceeded':
        return new TargetError(
          `a version of ${where} already has 10 labels, the most Parameter Store allows: remove one (aws ssm unlabel-parameter-version), then retry`,
          init0(init, 'invalid'),
        );
      case 'InvalidKeyId':
        return new TargetError(
          `Parameter Store cannot use the KMS key for ${where}: check kms_key: in targets.yaml (a key id, key ARN or alias/NAME in the parameter's region) and that the key is enabled${awsSaid(e.message)}`,
          init0(init, 'invalid'),
        );
      case 'ParameterAlreadyExists':
        return new TargetError(`${where} was created by someone else while keyrot was creating it; retrying on the existing parameter`, init0(init, 'conflict', true));
      case 'HierarchyTypeMismatchException':
      case 'UnsupportedParameterType':
        return new TargetError(`Parameter Store refused to change the type of ${where}: keyrot writes SecureString values only${awsSaid(e.message)}`, init0(init, 'invalid'));
      case 'ParameterLimitExceeded':
      case 'HierarchyLevelLimitExceededException':
      case 'ParameterPatternMismatchException':
        return new TargetError(`Parameter Store refused ${c.parameter}: ${name}${awsSaid(e.message)}`, init0(init, 'invalid'));
    }
    return undefined;
  };
}

/** Translates anything the SDK throws into a TargetError: Parameter Store's own codes here, the rest in ../aws-errors.ts. */
export function ssmError(err: unknown, c: SsmErrorContext): TargetError {
  return awsError(err, {
    service: PARAMETER_STORE,
    target: c.target,
    op: c.op,
    action: c.action,
    resource: c.parameter,
    region: c.region,
    endpoint: c.endpoint,
    timeoutMs: c.timeoutMs,
    timedOut: c.timedOut,
    kmsAdvice:
      "grant kms:Decrypt (reads) and kms:Encrypt (writes; kms:GenerateDataKey for advanced parameters) on the parameter's KMS key to the identity keyrot runs as",
    specific: ssmSpecific(c),
  });
}

import { z } from 'zod';
import { defineTarget } from '../types.ts';

/** `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>` (full or partial). */
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/;
/** Secret names: 1–512 of letters, digits and /_+=.@- (CreateSecret `Name`). */
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

/** An AWS Secrets Manager secret, the whole SecretString or one field of a JSON SecretString. */
export const AwsSecretsManagerConfig = z.object({
  secret: z
    .string()
    .min(1, 'a secret name or ARN')
    .refine((s) => SECRET_ARN.test(s) || SECRET_NAME.test(s), 'a secret name (letters, digits, /_+=.@-) or a secret ARN'),
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region such as us-west-2')
    .optional(),
  field: z.string().min(1, 'a JSON field name').optional(),
});
export type AwsSecretsManagerConfig = z.infer<typeof AwsSecretsManagerConfig>;

/** The version this rotation staged (its token), the one it displaced, and whether verify promoted it. */
export const AwsSecretsManagerReceipt = z.object({
  secretArn: z.string().nullable(),
  versionId: z.string(),
  previousVersionId: z.string().nullable(),
  promoted: z.boolean(),
});
export type AwsSecretsManagerReceipt = z.infer<typeof AwsSecretsManagerReceipt>;

export const awsSecretsManager = defineTarget('aws-secrets-manager', {
  // No single public endpoint (one per region): any `endpoint:` is named by plan.
  endpoint: { env: ['AWS_ENDPOINT_URL_SECRETS_MANAGER', 'AWS_ENDPOINT_URL'] },
  schema: AwsSecretsManagerConfig,
  capabilities: { readBack: 'always', versioned: true },
  receipt: { version: 1, schema: AwsSecretsManagerReceipt },
  // Published quotas, per account and region, not adjustable (docs.aws.amazon.com/secretsmanager/
  // latest/userguide/reference_limits.html): PutSecretValue, UpdateSecretVersionStage (and
  // UpdateSecret, replication calls) share 50 requests per second; GetSecretValue 10,000 and
  // DescribeSecret 40,000. The `write` class is held to 50/s (bursts of 50); the window starts at
  // 8 and may grow to 64 while AWS does not throttle; a ThrottlingException halves it.
  concurrency: 8,
  pacing: { max: 64, rates: { write: { perSecond: 50, burst: 50 } } },
  describe: (c) => `${c.secret}${c.field ? `[${c.field}]` : ''}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createAwsSecretsManagerTarget(config, ctx),
});

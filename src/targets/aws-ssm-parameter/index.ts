import { z } from 'zod';
import { defineTarget } from '../types.ts';

/**
 * Parameter names: letters, digits, `_.-` and `/` for the hierarchy, not prefixed with aws/ssm, at
 * most 15 levels (PutParameterRequest.Name, @aws-sdk/client-ssm). The name itself, never an ARN:
 * PutParameter and LabelParameterVersion take only names.
 */
const PARAMETER = /^[a-zA-Z0-9_.\-/]{1,1011}$/;
/** Labels: up to 100 of letters, digits, `.-_`, not starting with a digit, aws or ssm (LabelParameterVersion doc). */
const LABEL = /^[a-zA-Z_.-][a-zA-Z0-9_.-]{0,99}$/;

/** One SecureString parameter of AWS Systems Manager Parameter Store. */
export const AwsSsmParameterConfig = z.object({
  parameter: z
    .string()
    .regex(PARAMETER, 'a parameter name such as /acme/prod/openai-api-key (letters, digits, _ . - and /)')
    .refine((s) => !/^\/?(aws|ssm)/i.test(s), 'parameter names cannot start with aws or ssm')
    .refine((s) => s.split('/').filter(Boolean).length <= 15, 'a parameter hierarchy has at most 15 levels'),
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region such as us-west-2')
    .optional(),
  /** The KMS key new versions are encrypted with (key id, key ARN, alias/NAME or alias ARN); default: the parameter's own. */
  kms_key: z.string().min(1, 'a KMS key id, key ARN or alias/NAME').optional(),
  /** Consumers read `parameter:label`: keyrot moves the label instead of relying on the latest version. */
  label: z
    .string()
    .regex(LABEL, 'a label of letters, digits, . - _ (not starting with a digit)')
    .refine((s) => !/^(aws|ssm)/i.test(s), 'labels cannot start with aws or ssm')
    .optional(),
});
export type AwsSsmParameterConfig = z.infer<typeof AwsSsmParameterConfig>;

/**
 * The version this rotation wrote (it holds the new key), the version consumers read before it
 * (the latest, or the label's; null when there was none), whether the write created the
 * parameter, and the label moved.
 */
export const AwsSsmParameterReceipt = z.object({
  parameter: z.string(),
  version: z.number().int().positive(),
  previousVersion: z.number().int().positive().nullable(),
  created: z.boolean(),
  label: z.string().nullable(),
});
export type AwsSsmParameterReceipt = z.infer<typeof AwsSsmParameterReceipt>;

export const awsSsmParameter = defineTarget('aws-ssm-parameter', {
  // No single public endpoint (one per region): any `endpoint:` (or these variables) is named by plan.
  endpoint: { env: ['AWS_ENDPOINT_URL_SSM', 'AWS_ENDPOINT_URL'] },
  schema: AwsSsmParameterConfig,
  // Versions are read back decrypted: the value itself is compared. Restore writes a version (or
  // moves the label back), never deletes one.
  capabilities: { readBack: 'always', versioned: true },
  receipt: { version: 1, schema: AwsSsmParameterReceipt },
  // GetParameter, GetParameters and PutParameter share the account's Parameter Store throughput per
  // region (the GetParameter command doc); the default ("standard") throughput is 40 transactions a
  // second for GetParameter, GetParameters and GetParametersByPath (AWS Systems Manager endpoints
  // and quotas): the `get` class is held to 40/s spread evenly (burst 1: no second holds more);
  // every call goes through the account's lane, a ThrottlingException halves its window. Few
  // writes at once.
  concurrency: 2,
  pacing: { rates: { get: { perSecond: 40, burst: 1 } } },
  describe: (c) => `${c.parameter}${c.label ? `:${c.label}` : ''}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createAwsSsmParameterTarget(config, ctx),
});

import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AwsSecretsManagerEmulator } from '../../emulators/aws-secrets-manager/emulator.ts';
import { awsSecretsManager } from '../../src/targets/aws-secrets-manager/index.ts';
import type { AwsSecretsManagerConfig } from '../../src/targets/aws-secrets-manager/index.ts';
import type { Target } from '../../src/targets/types.ts';
import { testContext } from './context.ts';
import type { AwsSecretsManagerReceipt } from '../../src/targets/aws-secrets-manager/index.ts';

export const SECRET = 'nomora-paw/openai-api-key';

/** The environment the AWS default chain would read, pointing at the emulator's throw-away key. */
export function awsEnv(emu: AwsSecretsManagerEmulator, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    AWS_ACCESS_KEY_ID: emu.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: emu.credentials.secretAccessKey,
    AWS_REGION: 'us-east-1',
    ...extra,
  };
}

export async function startEmulator(): Promise<AwsSecretsManagerEmulator> {
  const emu = new AwsSecretsManagerEmulator();
  await emu.start();
  return emu;
}

/** A target created from the light definition (as the registry will), pointed at the emulator. */
export async function makeTarget(
  emu: AwsSecretsManagerEmulator,
  config: Partial<AwsSecretsManagerConfig> & { endpoint?: string | null } = {},
  env?: NodeJS.ProcessEnv,
): Promise<Target<AwsSecretsManagerReceipt>> {
  const { endpoint, ...rest } = config;
  const parsed = awsSecretsManager.schema.parse({ secret: SECRET, region: 'us-east-1', ...rest });
  return awsSecretsManager.create(
    { ...parsed, ...(endpoint === null ? {} : { endpoint: endpoint ?? emu.url }) },
    testContext({ name: 'aws', env: env ?? awsEnv(emu) }),
  );
}

/** A plain SDK client on the emulator, to check the emulator against the official client. */
export function sdkClient(emu: AwsSecretsManagerEmulator): SecretsManagerClient {
  return new SecretsManagerClient({
    region: 'us-east-1',
    endpoint: emu.url,
    credentials: { accessKeyId: emu.credentials.accessKeyId, secretAccessKey: emu.credentials.secretAccessKey },
    maxAttempts: 1,
  });
}

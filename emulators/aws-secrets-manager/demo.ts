import { randomBytes } from 'node:crypto';
import type { DemoSetup } from '../demo-types.ts';
import { demoAwsCredentials, demoAwsEnv } from '../aws-demo.ts';
import { AwsSecretsManagerEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a loopback AWS Secrets Manager (SigV4-checked) with two secrets holding the old
 * key: one whose whole SecretString is the key, and a console-style JSON key/value secret where
 * only the `field:` changes and the other fields keep their bytes.
 *
 * Credentials reach the target the AWS way (the default chain's environment link): the demo's
 * throw-away access key, shared by its AWS emulators (../aws-demo.ts).
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = new AwsSecretsManagerEmulator({ region: 'us-east-1' });
  emu.addCredentials(demoAwsCredentials());
  await emu.start();
  const plain = 'keyrot-demo/openai-api-key';
  const json = 'keyrot-demo/app-config';
  emu.seed(plain, oldKey);
  emu.seed(
    json,
    `{\n  "DATABASE_URL": "postgres://app@db.internal:5432/app",\n  "${varName}": ${JSON.stringify(oldKey)},\n  "SESSION_SECRET": "${randomBytes(18).toString('base64url')}"\n}\n`,
  );
  return {
    targets: [
      { type: 'aws-secrets-manager', secret: plain, region: emu.region, endpoint: emu.url },
      { type: 'aws-secrets-manager', secret: json, region: emu.region, field: varName, endpoint: emu.url },
    ],
    env: demoAwsEnv(),
    description: `AWS Secrets Manager emulator (awsJson1_1, SigV4-checked) at ${emu.url}: ${plain}, and ${json} field ${varName}`,
    stop: () => emu.stop(),
  };
};

import type { DemoSetup } from '../demo-types.ts';
import { demoAwsCredentials, demoAwsEnv } from '../aws-demo.ts';
import { AwsSsmParameterEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a loopback Parameter Store (SigV4-checked) with two SecureString parameters
 * holding the old key: one read at its latest version, one read through the label `live` (an older
 * version of it is live while a newer one is not).
 *
 * Credentials reach the target the AWS way (the default chain's environment link): the demo's
 * throw-away access key, shared by its AWS emulators (../aws-demo.ts).
 */
export const demo: DemoSetup = async ({ oldKey }) => {
  const emu = new AwsSsmParameterEmulator({ region: 'us-east-1' });
  emu.addCredentials(demoAwsCredentials());
  await emu.start();
  const latest = '/keyrot-demo/prod/openai-api-key';
  const labelled = '/keyrot-demo/batch/openai-api-key';
  emu.store.kms.add('alias/keyrot-demo');
  emu.seed(latest, oldKey, { keyId: 'alias/keyrot-demo' });
  emu.seed(labelled, oldKey, { labels: ['live'] });
  emu.seed(labelled, 'staged-but-not-live');
  return {
    targets: [
      { type: 'aws-ssm-parameter', parameter: latest, region: emu.region, endpoint: emu.url },
      { type: 'aws-ssm-parameter', parameter: labelled, label: 'live', region: emu.region, endpoint: emu.url },
    ],
    env: demoAwsEnv(),
    description: `AWS Parameter Store emulator (awsJson1_1, SigV4-checked) at ${emu.url}: ${latest}, and ${labelled}:live`,
    stop: () => emu.stop(),
  };
};

import { randomBytes } from 'node:crypto';
import type { DemoSetup } from '../demo-types.ts';
import { GcpSecretManagerEmulator } from './emulator.ts';

/** `keyrot demo`: a loopback Secret Manager holding the old key, driven through the official client. */
export const demo: DemoSetup = async ({ oldKey }) => {
  const token = `ya29.demo-${randomBytes(24).toString('base64url')}`;
  const emu = new GcpSecretManagerEmulator({ token });
  await emu.start();
  const project = 'keyrot-demo';
  const secret = 'openai-api-key';
  emu.seed(project, secret, oldKey);
  return {
    targets: [{ type: 'gcp-secret-manager', project, secret, endpoint: emu.endpoint, token: 'env:KEYROT_DEMO_GCP_TOKEN' }],
    env: { KEYROT_DEMO_GCP_TOKEN: token },
    description: `Google Secret Manager emulator (REST v1) on ${emu.endpoint}: projects/${project}/secrets/${secret}`,
    stop: () => emu.stop(),
  };
};

import type { DemoSetup } from '../demo-types.ts';
import { CloudflareEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a Worker holding the key as a secret next to a plain variable; each secret change
 * deploys a new version of the Worker to all traffic, which is how keyrot verifies it.
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = new CloudflareEmulator();
  await emu.start();
  const account = '0123456789abcdef0123456789abcdef';
  // A throw-away token, generated now, valid only against this emulator.
  const token = emu.addToken({ accounts: [account] });
  emu.seedWorker(account, 'paw-edge', { secrets: { [varName]: oldKey }, vars: { UPSTREAM: 'https://api.example.com' } });
  return {
    targets: [{ type: 'cloudflare-workers', account, script: 'paw-edge', endpoint: emu.url, token: 'env:KEYROT_DEMO_CLOUDFLARE_TOKEN' }],
    env: { KEYROT_DEMO_CLOUDFLARE_TOKEN: token },
    description: `Cloudflare API emulator at ${emu.url} (Worker paw-edge: each secret change deploys a new version)`,
    stop: () => emu.stop(),
  };
};

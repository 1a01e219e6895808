import type { DemoSetup } from '../demo-types.ts';
import { FlyEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a Fly app with two machines running the key as a secret. Fly lists only a digest
 * of each secret; keyrot stages the new one, then updates the machines onto it one at a time and
 * waits until each is started again (phases of 100 ms here).
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = new FlyEmulator({ phaseMs: 100 });
  await emu.start();
  const app = 'keyrot-demo-edge';
  // A throw-away deploy token of this app, generated now, valid only against this emulator.
  const token = emu.addToken({ apps: [app] });
  emu.seedApp(app, { secrets: { DATABASE_URL: 'postgres://localhost/app', [varName]: oldKey }, machines: 2 });
  return {
    targets: [{ type: 'fly', app, endpoint: emu.url, token: 'env:KEYROT_DEMO_FLY_TOKEN' }],
    env: { KEYROT_DEMO_FLY_TOKEN: token },
    description: `Fly Machines API emulator at ${emu.url} (app ${app}, 2 machines, each restart ~0.2 s)`,
    stop: () => emu.stop(),
  };
};

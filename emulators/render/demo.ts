import type { DemoSetup } from '../demo-types.ts';
import { RenderEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a Render web service whose key sits among other variables; after the write
 * keyrot deploys the current build once and waits for it to go live (phases of 150 ms here).
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = new RenderEmulator({ phaseMs: 150 });
  await emu.start();
  // A throw-away API key, generated now, valid only against this emulator.
  const token = emu.addToken();
  const service = emu.seedService({ name: 'keyrot-demo-worker', type: 'background_worker', env: { QUEUE_URL: 'redis://localhost:6379', [varName]: oldKey } });
  // A second service nobody listed, holding the same key: what `keyrot discover` is for.
  const forgotten = emu.seedService({ name: 'keyrot-demo-forgotten-worker', type: 'background_worker', env: { [varName]: oldKey } });
  const entry = (id: string) => ({ type: 'render', service: id, endpoint: `${emu.url}/v1`, token: 'env:KEYROT_DEMO_RENDER_TOKEN' });
  return {
    targets: [entry(service)],
    forgotten: [{ location: `render service keyrot-demo-forgotten-worker (${forgotten})`, target: entry(forgotten) }],
    env: { KEYROT_DEMO_RENDER_TOKEN: token },
    description: `Render API emulator at ${emu.url}/v1 (service ${service}, deploys go live in ~0.3 s)`,
    stop: () => emu.stop(),
  };
};

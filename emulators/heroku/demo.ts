import type { DemoSetup } from '../demo-types.ts';
import { HerokuEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a Heroku app whose OPENAI key sits among other config vars; each config change
 * goes through a short release phase, so the demo shows keyrot waiting for the release.
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = new HerokuEmulator({ releaseMs: 400 });
  await emu.start();
  // A throw-away token, generated now, valid only against this emulator.
  const token = emu.addToken({ scopes: ['read-protected', 'write-protected'] });
  const app = 'keyrot-demo-api';
  emu.seedApp(app, { LOG_LEVEL: 'info', WEB_CONCURRENCY: '2', [varName]: oldKey });
  return {
    targets: [{ type: 'heroku', app, endpoint: emu.url, token: 'env:KEYROT_DEMO_HEROKU_TOKEN' }],
    env: { KEYROT_DEMO_HEROKU_TOKEN: token },
    description: `Heroku Platform API emulator at ${emu.url} (app ${app}, releases take 400 ms)`,
    stop: () => emu.stop(),
  };
};

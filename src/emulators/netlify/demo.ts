import type { DemoSetup } from '../demo-types.ts';
import { NetlifyEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a Netlify site whose key is a SECRET production value (write-only through the
 * API) next to other variables; keyrot verifies it by metadata and by a rebuild reaching ready.
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = new NetlifyEmulator({ phaseMs: 150 });
  await emu.start();
  // A throw-away token, generated now, valid only against this emulator.
  const token = emu.addToken();
  const site = emu.seedSite({
    name: 'keyrot-demo-web',
    account: 'keyrot-demo-team',
    env: [
      { key: 'NODE_VERSION', values: [{ context: 'all', value: '24' }] },
      { key: 'PUBLIC_API_URL', values: [{ context: 'production', value: 'https://api.example.com' }, { context: 'deploy-preview', value: 'https://staging.example.com' }] },
      {
        key: varName,
        is_secret: true,
        scopes: ['builds', 'functions', 'runtime'],
        values: [{ context: 'production', value: oldKey }],
      },
    ],
  });
  return {
    // One target per secret variable: see the README's known limitation on several contexts of one secret.
    targets: [
      { type: 'netlify', site: site.id, context: 'production', redeploy: true, endpoint: emu.url, token: 'env:KEYROT_DEMO_NETLIFY_TOKEN' },
    ],
    env: { KEYROT_DEMO_NETLIFY_TOKEN: token },
    description: `Netlify API emulator at ${emu.url} (site keyrot-demo-web, secret production value, builds take ~0.5 s)`,
    stop: () => emu.stop(),
  };
};

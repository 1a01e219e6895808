import type { DemoSetup } from '../demo-types.ts';
import { NetlifyEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a Netlify site whose key is a SECRET (write-only through the API) kept in two
 * deploy contexts, production and deploy-preview, next to other variables. ONE target with
 * `context: [production, deploy-preview]` rotates both (one PATCH each), verifies them by metadata
 * and by a production rebuild reaching ready.
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
        values: [
          { context: 'production', value: oldKey },
          { context: 'deploy-preview', value: oldKey },
        ],
      },
    ],
  });
  return {
    // One target for every context that holds the key: two targets on one secret variable would
    // break each other's metadata verification (see the README).
    targets: [
      {
        type: 'netlify',
        site: site.id,
        context: ['production', 'deploy-preview'],
        redeploy: true,
        endpoint: emu.url,
        token: 'env:KEYROT_DEMO_NETLIFY_TOKEN',
      },
    ],
    env: { KEYROT_DEMO_NETLIFY_TOKEN: token },
    description: `Netlify API emulator at ${emu.url} (site keyrot-demo-web, secret production + deploy-preview values, builds take ~0.5 s)`,
    stop: () => emu.stop(),
  };
};

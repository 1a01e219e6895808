import { NetlifyEmulator } from '../../../emulators/netlify/emulator.ts';
import { netlify } from '../../../src/targets/netlify/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

/** The hard case: a secret (write-only) production value, verified by metadata. */
export const harness: ConformanceHarness = {
  id: 'netlify',
  async setup(opts = {}) {
    const emu = new NetlifyEmulator();
    await emu.start();
    const token = emu.addToken();
    const site = emu.seedSite({
      name: 'conformance-site',
      account: 'conformance-team',
      env: [{ key: 'OTHER', values: [{ context: 'all', value: '1' }] }],
    });
    const target = await netlify.create(
      { site: site.id, context: 'production', redeploy: false, endpoint: emu.url, requestTimeout: opts.requestTimeout },
      testContext({ name: 'netlify', env: { NETLIFY_AUTH_TOKEN: token } }),
    );
    return {
      target,
      emulator: emu.server,
      async seed(v) {
        if (emu.getVar(site.id, 'OPENAI_API_KEY')) emu.setValue(site.id, 'OPENAI_API_KEY', 'production', v);
        else {
          await fetch(`${emu.url}/api/v1/accounts/conformance-team/env?site_id=${site.id}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify([{ key: 'OPENAI_API_KEY', is_secret: true, values: [{ context: 'production', value: v }] }]),
          });
        }
      },
      // The emulator knows the secret value (Netlify's systems do); the API never shows it.
      peek: async () => emu.getVar(site.id, 'OPENAI_API_KEY')?.values.find((x) => x.context === 'production')?.value ?? null,
      readable: () => emu.getVar(site.id, 'OPENAI_API_KEY')?.is_secret === false,
      failNextWithRateLimit: () => emu.failNextWithRateLimit(),
      breakAuth: () => emu.revokeToken(token),
      writeCount: async () => emu.writeCount(site.id),
      close: () => emu.stop(),
    };
  },
};

import { CloudflareEmulator } from '../../../emulators/cloudflare-workers/emulator.ts';
import { cloudflareWorkers } from '../../../src/targets/cloudflare-workers/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

const ACCOUNT = '0123456789abcdef0123456789abcdef';
const SCRIPT = 'conformance-worker';
const VAR = 'OPENAI_API_KEY';

/** A Worker secret: write-only; every change a new version deployed to all traffic. */
export const harness: ConformanceHarness = {
  id: 'cloudflare-workers',
  async setup(opts = {}) {
    const emu = new CloudflareEmulator();
    await emu.start();
    const token = emu.addToken({ accounts: [ACCOUNT] });
    emu.seedWorker(ACCOUNT, SCRIPT, { vars: { MODE: 'production' }, secrets: { OTHER: 'neighbour' } });
    const target = await cloudflareWorkers.create(
      { account: ACCOUNT, script: SCRIPT, endpoint: emu.url, requestTimeout: opts.requestTimeout },
      testContext({ name: 'cloudflare-workers', env: { CLOUDFLARE_API_TOKEN: token } }),
    );
    return {
      target,
      emulator: emu.server,
      // A secret set before the rotation: put through the API as anyone would (a new deployed version).
      seed: async (v) => {
        await fetch(`${emu.url}/accounts/${ACCOUNT}/workers/scripts/${SCRIPT}/secrets`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: VAR, text: v, type: 'secret_text' }),
        });
      },
      // What the version serving traffic runs (Cloudflare's side; the API never shows it).
      peek: async () => emu.peekSecret(ACCOUNT, SCRIPT, VAR) ?? null,
      failNextWithRateLimit: () => emu.failNextWithRateLimit(),
      breakAuth: () => emu.revokeToken(token),
      writeCount: async () => emu.writeCount(),
      close: () => emu.stop(),
    };
  },
};

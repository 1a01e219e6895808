import { SECRET, startKeyVault } from '../../helpers/azure-key-vault-fixture.ts';
import type { ConformanceHarness } from '../harness.ts';

export const harness: ConformanceHarness = {
  id: 'azure-key-vault',
  async setup(opts = {}) {
    const kv = await startKeyVault();
    // Another secret in the same vault: never touched.
    kv.emu.seed('database-password', 'not-a-key-but-must-stay');
    const target = await kv.target({ requestTimeout: opts.requestTimeout });
    return {
      target,
      emulator: kv.emu.server,
      seed: async (v) => {
        kv.emu.seed(SECRET, v, { contentType: 'text/plain' });
      },
      peek: async () => kv.emu.latest(SECRET)?.value ?? null,
      failNextWithRateLimit: () => kv.emu.throttleNext({ retryAfterSeconds: 1 }),
      breakAuth: () => {
        kv.emu.rotateToken();
      },
      writeCount: async () => kv.emu.versions(SECRET).length,
      close: () => kv.close(),
    };
  },
};

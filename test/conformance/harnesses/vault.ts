import { VaultEmulator } from '../../../emulators/vault/emulator.ts';
import { vault } from '../../../src/targets/vault/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

const PATH = 'conformance/api';

export const harness: ConformanceHarness = {
  id: 'vault',
  async setup(opts = {}) {
    const emu = new VaultEmulator();
    await emu.start();
    const token = emu.addToken();
    emu.seed(PATH, { DATABASE_URL: 'postgres://app@db/app' });
    const config = vault.schema.parse({ address: emu.url, path: PATH });
    const target = await vault.create({ ...config, requestTimeout: opts.requestTimeout }, testContext({ name: 'vault', env: { VAULT_TOKEN: token } }));
    return {
      target,
      emulator: emu.server,
      seed: async (v) => {
        emu.seed(PATH, { ...emu.data(PATH), OPENAI_API_KEY: v });
      },
      peek: async () => (emu.data(PATH)?.OPENAI_API_KEY as string | undefined) ?? null,
      failNextWithRateLimit: () => emu.rateLimitNext(),
      breakAuth: () => emu.revokeToken(token),
      writeCount: async () => Number(emu.mount().metadata(PATH).current_version),
      close: () => emu.stop(),
    };
  },
};

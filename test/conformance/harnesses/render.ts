import { RenderEmulator } from '../../../emulators/render/emulator.ts';
import { render } from '../../../src/targets/render/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

export const harness: ConformanceHarness = {
  id: 'render',
  async setup(opts = {}) {
    // The suites rotate one service dozens of times a minute: above Render's per-service deploy and
    // write limits, which render.test.ts checks on their own.
    const emu = new RenderEmulator({ limits: { writes: 10_000, deploys: 10_000 } });
    await emu.start();
    const token = emu.addToken();
    const service = emu.seedService({ env: { OTHER: '1' } });
    const target = await render.create(
      { service, endpoint: `${emu.url}/v1`, requestTimeout: opts.requestTimeout },
      testContext({ name: 'render', env: { RENDER_API_KEY: token } }),
    );
    return {
      target,
      emulator: emu.server,
      seed: async (v) => emu.setVar(service, 'OPENAI_API_KEY', v),
      peek: async () => emu.vars(service).OPENAI_API_KEY ?? null,
      running: async () => emu.runningEnv(service)?.OPENAI_API_KEY ?? null,
      failNextWithRateLimit: () => emu.failNextWithRateLimit(),
      breakAuth: () => emu.revokeToken(token),
      writeCount: async () => emu.envWriteCount(service),
      close: () => emu.stop(),
    };
  },
};

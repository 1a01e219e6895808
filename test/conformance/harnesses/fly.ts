import { FlyEmulator } from '../../../emulators/fly/emulator.ts';
import { fly } from '../../../src/targets/fly/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

const APP = 'conformance-app';

export const harness: ConformanceHarness = {
  id: 'fly',
  async setup(opts = {}) {
    // Fly's per-action limit (3 a second per app) is checked in fly.test.ts; the suite's back-to-back calls are not paced.
    const emu = new FlyEmulator({ actionBurst: 1000 });
    await emu.start();
    const token = emu.addToken({ apps: [APP] });
    emu.seedApp(APP, { secrets: { OTHER: '1' }, machines: 2 });
    const target = await fly.create({ app: APP, endpoint: emu.url, requestTimeout: opts.requestTimeout }, testContext({ name: 'fly', env: { FLY_API_TOKEN: token } }));
    return {
      target,
      emulator: emu.server,
      seed: async (v) => emu.setSecret(APP, 'OPENAI_API_KEY', v),
      peek: async () => emu.secret(APP, 'OPENAI_API_KEY') ?? null,
      // What the started machines booted with (all of them: one value, else null).
      running: async () => {
        const seen = new Set(emu.machines(APP).filter((m) => m.state === 'started').map((m) => m.env.OPENAI_API_KEY ?? null));
        return seen.size === 1 ? [...seen][0]! : null;
      },
      failNextWithRateLimit: () => emu.failNextWithRateLimit(),
      breakAuth: () => emu.revokeToken(token),
      // Every secrets change is a new secrets version: a no-op write must not make one.
      writeCount: async () => emu.secretWriteCount(APP),
      close: () => emu.stop(),
    };
  },
};

import { HerokuEmulator } from '../../../emulators/heroku/emulator.ts';
import { heroku } from '../../../src/targets/heroku/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

const APP = 'conformance-app';

export const harness: ConformanceHarness = {
  id: 'heroku',
  async setup(opts = {}) {
    const emu = new HerokuEmulator();
    await emu.start();
    const token = emu.addToken({ scopes: ['read-protected', 'write-protected'] });
    emu.seedApp(APP, { OTHER: '1' });
    const target = await heroku.create(
      { app: APP, endpoint: emu.url, requestTimeout: opts.requestTimeout, timeout: opts.wait },
      testContext({ name: 'heroku', env: { HEROKU_API_KEY: token } }),
    );
    return {
      target,
      emulator: emu.server,
      seed: async (v) => emu.setVars(APP, { OPENAI_API_KEY: v }),
      peek: async () => emu.getVars(APP).OPENAI_API_KEY ?? null,
      // The dynos run the config vars of the current release.
      running: async () => emu.releases(APP).find((r) => r.current)?.configVars.OPENAI_API_KEY ?? null,
      failNextWithRateLimit: () => emu.failNextWithRateLimit(),
      breakAuth: () => emu.revokeToken(token),
      // Every config change is a release: a no-op write must not create one.
      writeCount: async () => emu.releases(APP).length,
      close: () => emu.stop(),
    };
  },
};

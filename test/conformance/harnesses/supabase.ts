import { SupabaseEmulator } from '../../../emulators/supabase/emulator.ts';
import { supabase } from '../../../src/targets/supabase/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

export const harness: ConformanceHarness = {
  id: 'supabase',
  async setup(opts = {}) {
    const emu = new SupabaseEmulator();
    await emu.start();
    const token = emu.addToken();
    const ref = emu.seedProject({ secrets: { OTHER: 'x' } });
    const target = await supabase.create(
      { project: ref, endpoint: emu.url, requestTimeout: opts.requestTimeout },
      testContext({ name: 'supabase', env: { SUPABASE_ACCESS_TOKEN: token } }),
    );
    return {
      target,
      emulator: emu.server,
      seed: async (v) => emu.setSecret(ref, 'OPENAI_API_KEY', v),
      peek: async () => emu.secret(ref, 'OPENAI_API_KEY') ?? null,
      failNextWithRateLimit: () => emu.failNextWithRateLimit(),
      breakAuth: () => emu.revokeToken(token),
      writeCount: async () => emu.writeCount(ref),
      close: () => emu.stop(),
    };
  },
};

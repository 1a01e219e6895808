import { randomBytes } from 'node:crypto';
import { VercelEmulator } from '../../../emulators/vercel/server.ts';
import { vercel } from '../../../src/targets/vercel/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

const VAR = 'OPENAI_API_KEY';

export const harness: ConformanceHarness = {
  id: 'vercel',
  async setup(opts = {}) {
    const emu = await VercelEmulator.start({ queuedMs: 20, buildingMs: 40 });
    const token = `vcp_${randomBytes(16).toString('hex')}`;
    emu.addToken(token);
    emu.seedProject({
      name: 'conformance-app',
      envs: [
        { key: 'DATABASE_URL', value: 'postgres://db/app', target: ['production'] },
        { key: VAR, value: 'dev-only-value', target: ['development'] },
      ],
    });
    const target = await vercel.create({ project: 'conformance-app', endpoint: emu.url, requestTimeout: opts.requestTimeout }, testContext({ env: { VERCEL_TOKEN: token }, name: 'vercel' }));
    return {
      target,
      emulator: emu.server,
      seed: async (v) => {
        emu.putEnv('conformance-app', { key: VAR, value: v, target: ['production'] });
      },
      peek: async () => emu.getEnv('conformance-app', VAR).find((e) => e.target.includes('production'))?.value ?? null,
      readable: () => emu.getEnv('conformance-app', VAR).find((e) => e.target.includes('production'))?.type !== 'sensitive',
      failNextWithRateLimit: () => emu.rateLimitNext(),
      breakAuth: () => emu.revokeToken(token),
      writeCount: async () => emu.mutations,
      close: () => emu.stop(),
    };
  },
};

import { randomBytes } from 'node:crypto';
import { gcpFixture, PROJECT, SECRET } from '../../helpers/gcp-secret-manager-fixture.ts';
import type { ConformanceHarness } from '../harness.ts';

export const harness: ConformanceHarness = {
  id: 'gcp-secret-manager',
  async setup(opts = {}) {
    const fx = await gcpFixture({ requestTimeout: opts.requestTimeout });
    const { emu } = fx;
    return {
      target: fx.target,
      emulator: emu.server,
      seed: async (v) => {
        emu.seed(PROJECT, SECRET, v);
      },
      // What consumers of `latest` read (null when it is unreadable).
      peek: async () => {
        const l = emu.latest(PROJECT, SECRET);
        return l && l.state === 'ENABLED' ? l.value : null;
      },
      failNextWithRateLimit: () => emu.throttleNext(),
      breakAuth: () => {
        emu.token = `ya29.rotated-${randomBytes(9).toString('hex')}`;
      },
      writeCount: async () => emu.versions(PROJECT, SECRET).length,
      close: () => fx.close(),
    };
  },
};

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubernetes } from '../../../src/targets/kubernetes/index.ts';
import { KubernetesEmulator } from '../../../emulators/kubernetes/emulator.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

export const harness: ConformanceHarness = {
  id: 'kubernetes',
  async setup(opts = {}) {
    const dir = await mkdtemp(join(tmpdir(), 'keyrot-conf-k8s-'));
    const emu = new KubernetesEmulator();
    await emu.start();
    const kubeconfig = await emu.writeKubeconfig(join(dir, 'kubeconfig'));
    const target = await kubernetes.create(
      { namespace: 'default', secret: 'openai-api-key', key: 'api-key', requestTimeout: opts.requestTimeout },
      testContext({ baseDir: dir, name: 'kubernetes', env: { KUBECONFIG: kubeconfig } }),
    );
    return {
      target,
      emulator: emu.server,
      async seed(v) {
        emu.seedSecret('default', 'openai-api-key', { 'api-key': v, other: 'kept' });
      },
      peek: async () => emu.getSecret('default', 'openai-api-key')?.data['api-key'] ?? null,
      failNextWithRateLimit: () => emu.failNextWithRateLimit(),
      breakAuth: () => emu.revokeToken(),
      writeCount: async () => emu.writes.secrets ?? 0,
      async close() {
        await emu.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
};

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeClock } from '../../src/runtime/clock.ts';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { kubernetes, type KubernetesConfig } from '../../src/targets/kubernetes/index.ts';
import type { Target, TargetContext } from '../../src/targets/types.ts';
import { testContext } from './context.ts';
import type { KubernetesReceipt } from '../../src/targets/kubernetes/index.ts';

export const NS = 'default';
export const SECRET = 'openai-api-key';
export const KEY = 'api-key';

/**
 * A loopback API server and a target on it. The emulator's controllers and the adapter's polling
 * share one fake clock, so a 3 s rollout or a 30 s timeout takes no real time.
 */
export async function k8sFixture(opts: { rolloutDelayMs?: number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-k8s-'));
  const clock = fakeClock();
  const emu = new KubernetesEmulator({ now: clock.now, rolloutDelayMs: opts.rolloutDelayMs ?? 3000 });
  await emu.start();
  const kubeconfig = await emu.writeKubeconfig(join(dir, 'kubeconfig'));
  const ctx: TargetContext & { name: string } = { ...testContext({ baseDir: dir, name: 'k8s', env: { KUBECONFIG: kubeconfig } }), clock };
  const make = (config: Partial<KubernetesConfig> = {}): Promise<Target<KubernetesReceipt>> =>
    kubernetes.create({ namespace: NS, secret: SECRET, key: KEY, restart: ['deployment/api'], ...config }, ctx);
  return {
    dir,
    clock,
    emu,
    kubeconfig,
    ctx,
    make,
    /** Requests that reached a route, by method and path fragment. */
    calls: (method: string, fragment: string) => emu.server.requests.filter((r) => r.method === method && r.path.includes(fragment)),
    async close() {
      await emu.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type K8sFixture = Awaited<ReturnType<typeof k8sFixture>>;

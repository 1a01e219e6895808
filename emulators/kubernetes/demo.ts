import { join } from 'node:path';
import type { DemoSetup } from '../demo-types.ts';
import { KubernetesEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a loopback API server holding Secret default/openai-api-key (with a second key
 * that must survive the rotation) and Deployment default/api that consumes it. The target reaches
 * it through a kubeconfig written into the demo's directory (KUBECONFIG), like a real cluster.
 */
export const demo: DemoSetup = async ({ oldKey, workDir }) => {
  const emu = new KubernetesEmulator({ rolloutDelayMs: 1200 });
  await emu.start();
  emu.seedSecret('default', 'openai-api-key', { 'api-key': oldKey, 'database-url': 'postgres://app@db.default.svc:5432/app' });
  emu.seedWorkload('deployment', 'default', 'api', { replicas: 2 });
  const kubeconfig = await emu.writeKubeconfig(join(workDir, 'kubeconfig'));
  return {
    targets: [
      {
        type: 'kubernetes',
        namespace: 'default',
        secret: 'openai-api-key',
        key: 'api-key',
        restart: ['deployment/api'],
        timeout: '1m',
      },
    ],
    env: { KUBECONFIG: kubeconfig },
    description: `Kubernetes API server emulator at ${emu.url}: secret default/openai-api-key, deployment/api (kubeconfig ${kubeconfig})`,
    stop: () => emu.stop(),
  };
};

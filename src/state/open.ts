import type { Inventory } from '../inventory/load.ts';
import { localState } from './local.ts';
import type { StateStore } from './store.ts';
import { localTrust } from './trust.ts';

/** The store an inventory asks for: `state: local` (a directory) or `state: kubernetes` (cluster mode). */
export async function openState(inventory: Inventory | undefined, localDir: string, env: NodeJS.ProcessEnv = process.env): Promise<StateStore> {
  const cfg = inventory?.config.state;
  const stateKey = inventory?.config.state_key;
  if (cfg === 'kubernetes' || (typeof cfg === 'object' && cfg.type === 'kubernetes')) {
    const { kubernetesStateFromConfig } = await import('./kubernetes.ts');
    return kubernetesStateFromConfig({ ...(typeof cfg === 'object' ? cfg : {}), stateKey, baseDir: inventory?.baseDir }, env);
  }
  return localState(localDir, localTrust({ stateDir: localDir, ref: stateKey, baseDir: inventory?.baseDir ?? localDir, env }));
}

import type { Inventory } from '../inventory/load.ts';
import { localState } from './local.ts';
import type { StateStore } from './store.ts';

/** The store an inventory asks for: `state: local` (a directory) or `state: kubernetes` (cluster mode). */
export async function openState(inventory: Inventory | undefined, localDir: string, env: NodeJS.ProcessEnv = process.env): Promise<StateStore> {
  const cfg = inventory?.config.state;
  if (cfg === 'kubernetes' || (typeof cfg === 'object' && cfg.type === 'kubernetes')) {
    const { kubernetesStateFromConfig } = await import('./kubernetes.ts');
    return kubernetesStateFromConfig(typeof cfg === 'object' ? cfg : {}, env);
  }
  return localState(localDir);
}

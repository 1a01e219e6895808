import { EXIT, ExitError } from '../engine/errors.ts';
import type { Inventory } from '../inventory/load.ts';
import { localState } from './local.ts';
import type { StateStore } from './store.ts';

/** The store an inventory asks for: `state: local` (a directory) or `state: kubernetes`. */
export async function openState(inventory: Inventory | undefined, localDir: string): Promise<StateStore> {
  const cfg = inventory?.config.state;
  if (cfg === 'kubernetes') {
    throw new ExitError(EXIT.failed, 'state: kubernetes is not available in this version yet: use state: local (the default)');
  }
  return localState(localDir);
}

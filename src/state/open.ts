import { stat } from 'node:fs/promises';
import { EXIT, ExitError } from '../core/errors.ts';
import type { Inventory } from '../inventory/load.ts';
import { withUserFlags } from '../render/command.ts';
import { printable } from '../core/printable.ts';
import { inventoryScope } from './inventory-scope.ts';
import { localState } from './local.ts';
import type { StateStore } from './store.ts';
import { localTrust } from './trust.ts';

/**
 * The store an inventory asks for: `state: local` (its part of the state directory, see
 * inventory-scope.ts) or `state: kubernetes` (cluster mode, keyed by `state.name`).
 */
export async function openState(inventory: Inventory | undefined, localDir: string, env: NodeJS.ProcessEnv = process.env): Promise<StateStore> {
  const cfg = inventory?.config.state;
  const stateKey = inventory?.config.state_key;
  if (cfg === 'kubernetes' || (typeof cfg === 'object' && cfg.type === 'kubernetes')) {
    const { kubernetesStateFromConfig } = await import('./kubernetes.ts');
    return kubernetesStateFromConfig({ ...(typeof cfg === 'object' ? cfg : {}), stateKey, baseDir: inventory?.baseDir }, env);
  }
  await mustBeDirectory(localDir);
  const scope = await inventoryScope(localDir, inventory?.path);
  // The state key's first-use notice names commands: with the user's -c / --state-dir.
  const notice = (m: string) => process.stderr.write(withUserFlags(printable(`keyrot: ${m}`)) + '\n');
  const store = localState(scope.dir, localTrust({ stateDir: scope.dir, ref: stateKey, baseDir: inventory?.baseDir ?? localDir, env, notice }));
  return ensuredBeforeWrites(store, scope.ensure);
}

/** The store, with its directory (and .gitignore, and claim) made before anything is written. */
function ensuredBeforeWrites(store: StateStore, ensure: () => Promise<void>): StateStore {
  let ready: Promise<void> | undefined;
  const once = () => (ready ??= ensure());
  return {
    ...store,
    appendJournalLine: async (env, make) => (await once(), store.appendJournalLine(env, make)),
    appendAuditLine: async (make) => (await once(), store.appendAuditLine(make)),
    acquireLock: async (env, meta) => (await once(), store.acquireLock(env, meta)),
  };
}

/** A state directory that is a file (or under one) is the user's input to fix, not a bug of keyrot's. */
async function mustBeDirectory(dir: string): Promise<void> {
  const st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null; // created on first write
    if (err.code === 'ENOTDIR') return { isDirectory: () => false };
    throw err;
  });
  if (st && !st.isDirectory()) {
    throw new ExitError(EXIT.usage, `the state directory ${dir} is not a directory: point --state-dir (or KEYROT_STATE_DIR) at a directory (keyrot creates it when missing), or move that file away`);
  }
}

import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

/**
 * Each inventory has a state of its own: two inventories sharing a state directory (two files in
 * one directory, or one --state-dir / KEYROT_STATE_DIR) that both name an environment `production`
 * must not share its journal, lock, pending revocation or audit log.
 *
 * The key is the inventory file's name. The state directory's top level (journal/, audit.ndjson,
 * locks/, the layout keyrot always had) belongs to one inventory, named in `<state dir>/inventory`;
 * every other inventory keeps its state in `<state dir>/inventories/<file name>/`, the same layout.
 * State written before this existed has no `inventory` file: the first inventory that uses the
 * directory claims its top level, so a journal written before is still found and resumed.
 */
export interface InventoryScope {
  /** The directory holding this inventory's journal, audit log and locks. */
  dir: string;
  /** Before the first write: create the directories, the .gitignore and the claim. */
  ensure(): Promise<void>;
}

const OWNER_FILE = 'inventory';
export const STATE_GITIGNORE = "# keyrot's state (journal, audit log, locks): never committed\n*\n";

async function readOwner(stateDir: string): Promise<string | null> {
  try {
    return (await readFile(join(stateDir, OWNER_FILE), 'utf8')).trim() || null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes the claim unless one is there; returns the owner now recorded. */
async function claim(stateDir: string, name: string): Promise<string> {
  try {
    await writeFile(join(stateDir, OWNER_FILE), `${name}\n`, { flag: 'wx', mode: 0o600 });
    return name;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return (await readOwner(stateDir)) ?? name;
  }
}

/** The state directory exists, ignored by git whatever repository it sits in. */
export async function ensureStateDir(stateDir: string): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFile(join(stateDir, '.gitignore'), STATE_GITIGNORE, { flag: 'wx', mode: 0o644 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}

const hasState = (dir: string) => existsSync(join(dir, 'journal')) || existsSync(join(dir, 'audit.ndjson')) || existsSync(join(dir, 'locks'));

/** Where the state of the inventory at `inventoryPath` lives under `stateDir`. */
export async function inventoryScope(stateDir: string, inventoryPath: string | undefined): Promise<InventoryScope> {
  const own = (dir: string, extra?: () => Promise<void>): InventoryScope => ({
    dir,
    ensure: async () => {
      await ensureStateDir(stateDir);
      await extra?.();
      if (dir !== stateDir) await mkdir(dir, { recursive: true, mode: 0o700 });
    },
  });
  if (!inventoryPath) return own(stateDir);
  const name = basename(inventoryPath);
  const sub = join(stateDir, 'inventories', name);
  let owner = await readOwner(stateDir);
  // State from before the claim existed: the first inventory to use it takes it over, now.
  if (!owner && hasState(stateDir)) owner = await claim(stateDir, name);
  if (owner) return own(owner === name ? stateDir : sub);
  // A new state directory: the top level is this inventory's once it writes (unless another was faster).
  return own(stateDir, async () => {
    const winner = await claim(stateDir, name);
    if (winner !== name) {
      throw new Error(`the state directory ${stateDir} was claimed by inventory ${winner} while this command ran: run it again (its state goes to ${sub})`);
    }
  });
}

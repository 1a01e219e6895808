import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { EXIT, ExitError } from '../../core/errors.ts';
import { withholdFromChildren, keyrotEnv } from '../../core/withheld-env.ts';
import { credentialVariables } from '../../inventory/credentials.ts';
import { loadInventory, parseInventory, type Inventory } from '../../inventory/load.ts';
import { obtainKey } from '../../keys/sources.ts';
import { systemClock } from '../../runtime/clock.ts';
import { createLogger } from '../../runtime/logger.ts';
import type { Secret } from '../../core/secret.ts';
import { keyFormat } from '../../scan/patterns.ts';
import { discover, type DiscoveryReport } from '../../usecases/discover.ts';
import { searchTree } from '../../usecases/discover-tree.ts';
import { checkKeySource, PROVIDER_DEADLINE_MS } from '../commands/discover.ts';
import { entriesToAdd, entryBlock } from '../discover-entries.ts';
import { inventoryText, TEMPLATES } from './templates.ts';

/**
 * `keyrot init --discover`: the targets.yaml text listing every place the key was found that a
 * target type can rotate, each with a comment saying where keyrot found it. The search uses the
 * credentials of the inventory being replaced (`--force` over an existing file: its endpoints and
 * `token:` references), else the providers' usual variables.
 */
export async function discoveredInventory(o: { path: string; env: string; keySource: string | undefined; dirs: string[] }): Promise<{ text: string; report: DiscoveryReport; keyFrom: string }> {
  if (o.keySource !== undefined) checkKeySource(o.keySource);
  const inventory = existsSync(o.path) ? await loadInventory(o.path) : await emptyInventory(o.path, o.env);
  withholdFromChildren(credentialVariables(inventory, o.keySource ? [o.keySource] : []));
  const processEnv = keyrotEnv();
  const key = o.keySource
    ? await obtainKey(o.keySource, { baseDir: inventory.baseDir, env: processEnv, stdin: process.stdin, interactive: false, label: 'key to search for' })
    : await theKeyInTheTree(o.dirs, inventory.baseDir);
  const keyFrom = o.keySource ? `--key ${o.keySource}` : 'the only OpenAI-format key in the working tree';
  const env = inventory.environments.get(o.env) ?? { ...[...inventory.environments.values()][0]!, name: o.env, targets: [] };
  const report = await discover({
    inventory,
    env: { ...env, targets: [] },
    processEnv,
    clock: systemClock,
    logger: createLogger({ level: 'warn', write: (line) => process.stderr.write(`${line}\n`) }),
    key,
    dirs: o.dirs,
    providerDeadlineMs: PROVIDER_DEADLINE_MS,
  });
  const places = entriesToAdd(report.found);
  if (!places.length) {
    throw new ExitError(EXIT.failed, `the key ${key.hint} (${key.fingerprint}) was found nowhere keyrot can rotate it: nothing written (\`keyrot init --type TYPE,...\` writes examples to fill in)`);
  }
  const text = inventoryText(o.env, places.map(entryBlock));
  await parseInventory(text, o.path); // what init writes always loads
  return { text, report, keyFrom };
}

/**
 * Without --key and before any inventory exists, the key to look for is the one the working tree
 * holds: found by its format (as `keyrot scan` finds keys), and only when it is the only one; with
 * several, guessing could list another environment's places as this one's, so the user chooses.
 */
async function theKeyInTheTree(dirs: string[], baseDir: string): Promise<Secret> {
  const tree = await searchTree(dirs, { baseDir, varName: 'OPENAI_API_KEY', isKey: () => false });
  const keys = new Map<string, Secret>();
  for (const p of tree.places) if (p.holds.kind === 'value' && keyFormat(p.holds.value.reveal())) keys.set(p.holds.value.fingerprint, p.holds.value);
  const [only, ...more] = keys.values();
  if (!only) throw new ExitError(EXIT.usage, 'keyrot init --discover found no OpenAI-format key in the working tree to look for: give it with --key stdin, env:VAR or file:PATH');
  if (more.length) {
    const hints = [only, ...more].map((k) => `${k.hint} (${k.fingerprint})`).join(', ');
    throw new ExitError(EXIT.usage, `the working tree holds ${keys.size} different OpenAI keys (${hints}): say which one to look for with --key env:VAR or file:PATH`);
  }
  return only;
}

/** No inventory yet: init's own header (the key's defaults), no target listed. */
async function emptyInventory(path: string, env: string): Promise<Inventory> {
  const inv = await parseInventory(inventoryText(env, [TEMPLATES.dotenv!]), path);
  inv.environments.get(env)!.targets = [];
  return { ...inv, baseDir: dirname(path) };
}

import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { EXIT, ExitError } from '../../core/errors.ts';
import { withholdFromChildren, keyrotEnv } from '../../core/withheld-env.ts';
import { credentialVariables } from '../../inventory/credentials.ts';
import { loadInventory, parseInventory, type Inventory } from '../../inventory/load.ts';
import { obtainKey } from '../../keys/sources.ts';
import { systemClock } from '../../runtime/clock.ts';
import { createLogger } from '../../runtime/logger.ts';
import { discover, type DiscoveryReport } from '../../usecases/discover.ts';
import { PROVIDER_DEADLINE_MS } from '../commands/discover.ts';
import { entriesToAdd, entryBlock } from '../discover-entries.ts';
import { inventoryText, TEMPLATES } from './templates.ts';

/**
 * `keyrot init --discover`: the targets.yaml text listing every place the key was found that a
 * target type can rotate, each with a comment saying where keyrot found it. The search uses the
 * credentials of the inventory being replaced (`--force` over an existing file: its endpoints and
 * `token:` references), else the providers' usual variables.
 */
export async function discoveredInventory(o: { path: string; env: string; keySource: string | undefined; dirs: string[] }): Promise<{ text: string; report: DiscoveryReport }> {
  if (!o.keySource || !/^(stdin|env:.+|file:.+)$/.test(o.keySource)) {
    throw new ExitError(EXIT.usage, 'keyrot init --discover needs the key to look for: --key stdin, env:VAR or file:PATH (never the key itself)');
  }
  const inventory = existsSync(o.path) ? await loadInventory(o.path) : emptyInventory(o.path, o.env);
  withholdFromChildren(credentialVariables(inventory, [o.keySource]));
  const processEnv = keyrotEnv();
  const key = await obtainKey(o.keySource, { baseDir: inventory.baseDir, env: processEnv, stdin: process.stdin, interactive: false, label: 'key to search for' });
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
  parseInventory(text, o.path); // what init writes always loads
  return { text, report };
}

/** No inventory yet: init's own header (the key's defaults), no target listed. */
function emptyInventory(path: string, env: string): Inventory {
  const inv = parseInventory(inventoryText(env, [TEMPLATES.dotenv!]), path);
  inv.environments.get(env)!.targets = [];
  return { ...inv, baseDir: dirname(path) };
}

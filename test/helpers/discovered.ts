import { parseInventory, selectEnvironment } from '../../src/inventory/load.ts';
import type { DiscoveredPlace } from '../../src/targets/types.ts';
import { testContext } from './context.ts';

/**
 * What each discovered place's entry reaches: the entries written into a targets.yaml, loaded by
 * the inventory loader, each created as its target and read. A place's entry is right when this
 * reads what discovery said the place holds (a fingerprint, or `unreadable`).
 */
export async function readThroughInventory(places: DiscoveredPlace[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const text = `version: 1\nenvironments:\n  found:\n    targets: ${JSON.stringify(places.map((p) => p.target))}\n`;
  const found = selectEnvironment(await parseInventory(text, `${process.cwd()}/targets.yaml`), 'found');
  const reads = found.targets.map(async (spec) => {
    const ctx = testContext({ env, name: spec.name, varName: (spec.config.var as string | undefined) ?? found.key.name });
    return (await spec.definition.create(spec.config, ctx)).read();
  });
  return (await Promise.all(reads)).map(heldBy);
}

/** A place's holdings in one word: the fingerprint of its value, else its kind. */
export function heldBy(h: DiscoveredPlace['holds']): string {
  return h.kind === 'value' ? h.value.fingerprint : h.kind;
}

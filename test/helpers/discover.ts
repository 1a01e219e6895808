import { expect } from 'vitest';
import { parseInventory } from '../../src/inventory/load.ts';
import type { CommonTargetConfig, DiscoverContext, DiscoveredPlace, TargetDefinition } from '../../src/targets/types.ts';

/**
 * A found place's `targets.yaml` entry is ready: its own fields pass the type's schema, and the
 * target made from them (with `common`: the endpoint and credential reference as the inventory
 * would parse them) is ready and holds `key`.
 */
export async function expectEntryHolds(def: TargetDefinition<any>, place: DiscoveredPlace, ctx: DiscoverContext, key: string, common: CommonTargetConfig = {}): Promise<void> {
  const { type, endpoint: _endpoint, token: _token, ...fields } = place.target;
  expect(type).toBe(def.id);
  const t = await def.create({ ...def.schema.parse(fields), ...common }, { ...ctx, name: 'found' });
  try {
    const pre = await t.preflight();
    expect(pre.status).toBe('ready');
    expect(pre.current.kind === 'value' && pre.current.value.reveal()).toBe(key);
  } finally {
    await t.close?.();
  }
}

/** Whether targets.yaml takes the entry as it is (the loader's strict schema: unknown fields refused). */
export async function inventoryTakes(entry: Record<string, unknown>): Promise<boolean> {
  const text = `version: 1\nkey: { name: OPENAI_API_KEY, kind: openai, source: prompt }\nenvironments:\n  prod:\n    targets:\n      - ${JSON.stringify(entry)}\n`;
  try {
    await parseInventory(text, '/nowhere/targets.yaml');
    return true;
  } catch {
    return false;
  }
}

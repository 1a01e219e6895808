import { isDeepStrictEqual } from 'node:util';
import { isAbsolute, resolve } from 'node:path';
import type { Environment, TargetSpec } from '../inventory/load.ts';
import { targetType } from '../targets/index.ts';

/**
 * Is a found place one of the environment's targets? A found place comes with the targets.yaml
 * entry that would rotate it; it is "in the inventory" when a target names the same place and the
 * same variable: for a local file, any target writing that file (a `.env` that Compose reads is
 * the dotenv target's file too), paths resolved against targets.yaml; otherwise a target of the
 * same type with the same identifying fields. How a place is reached (`endpoint`, `token`,
 * timeouts) does not make it another place.
 */
const NOT_IDENTIFYING = new Set(['type', 'token', 'endpoint', 'requestTimeout', 'timeout', 'name', 'var']);

export function inInventory(entry: Record<string, unknown>, env: Environment, baseDir: string): boolean {
  const file = localFileOf(entry, baseDir);
  return env.targets.some(
    (spec) =>
      (entry.var ?? env.key.name) === (spec.config.var ?? env.key.name) &&
      (file !== undefined ? localFileOf(spec, baseDir) === file : spec.type === entry.type && sameFields(entry, spec.config)),
  );
}

/** The absolute path of the file a target (or an entry) writes, when it is a local file. */
export function localFileOf(t: TargetSpec | Record<string, unknown>, baseDir: string): string | undefined {
  const isSpec = 'definition' in t && 'config' in t;
  // A found place's entry: its type's light facts say which field names the file (no definition to load).
  const facts = isSpec ? (t as TargetSpec).definition : targetType(String(t.type));
  const p = facts?.localFile?.(isSpec ? (t as TargetSpec).config : t);
  if (!p) return undefined;
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

function sameFields(entry: Record<string, unknown>, config: Record<string, unknown>): boolean {
  return Object.entries(entry).every(([field, value]) => NOT_IDENTIFYING.has(field) || isDeepStrictEqual(config[field], value));
}

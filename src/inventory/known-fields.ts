import type { z } from 'zod';

type Def = { type: string; innerType?: Schema; shape?: Record<string, Schema>; valueType?: Schema; element?: Schema; options?: Schema[]; in?: Schema };
type Schema = { def: Def; shape?: Record<string, Schema> };

/** Through optional, default, nullable and pipes, to the schema that shapes the value. */
function unwrap(s: Schema): Schema {
  let cur = s;
  for (let i = 0; i < 10; i++) {
    const d = cur.def;
    if ((d.type === 'optional' || d.type === 'default' || d.type === 'nullable' || d.type === 'prefault') && d.innerType) cur = d.innerType;
    else if (d.type === 'pipe' && d.in) cur = d.in;
    else break;
  }
  return cur;
}

/** The object schema at `path` (record keys and list indexes step into their values). */
function objectAt(schema: Schema, path: ReadonlyArray<PropertyKey>): Schema | undefined {
  let cur: Schema | undefined = unwrap(schema);
  for (const step of path) {
    if (!cur) return undefined;
    const d: Def = cur.def;
    if (d.type === 'object') cur = cur.shape?.[String(step)];
    else if (d.type === 'record') cur = d.valueType;
    else if (d.type === 'array') cur = d.element;
    else if (d.type === 'union') cur = d.options?.find((o) => unwrap(o).def.type === 'object');
    else return undefined;
    cur = cur && unwrap(cur);
    if (cur?.def.type === 'union') cur = cur.def.options?.map(unwrap).find((o) => o.def.type === 'object');
  }
  return cur?.def.type === 'object' ? cur : undefined;
}

/** The field names a mapping at `path` accepts (for "did you mean"); [] when unknown. */
export function knownFields(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  return Object.keys(objectAt(schema as unknown as Schema, path)?.shape ?? {});
}

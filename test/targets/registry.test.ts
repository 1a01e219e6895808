import { readdirSync, statSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TARGETS } from '../../src/targets/index.ts';
import { TARGET_IDS } from '../../src/targets/types.ts';

const targetsDir = fileURLToPath(new URL('../../src/targets/', import.meta.url));
const folders = readdirSync(targetsDir).filter((f) => statSync(join(targetsDir, f)).isDirectory());

describe('target registry', () => {
  it('matches the src/targets/ folders exactly', () => {
    expect(Object.keys(TARGETS).sort()).toEqual([...folders].sort());
  });

  it('covers every target type of the product contract', () => {
    expect(Object.keys(TARGETS).sort()).toEqual([...TARGET_IDS].sort());
  });

  it('each entry is keyed by its own id', () => {
    for (const [key, def] of Object.entries(TARGETS)) expect(def.id).toBe(key);
  });

  it.each(folders)('%s has a README with its permissions and a conformance harness', (id) => {
    if (id !== 'dotenv' && id !== 'file') expect(existsSync(join(targetsDir, id, 'README.md'))).toBe(true);
    expect(existsSync(fileURLToPath(new URL(`../conformance/harnesses/${id}.ts`, import.meta.url)))).toBe(true);
  });

  it('the light definitions import no provider SDK (start-up cost)', async () => {
    const { readFileSync } = await import('node:fs');
    for (const id of folders) {
      const src = readFileSync(join(targetsDir, id, 'index.ts'), 'utf8');
      const imports = [...src.matchAll(/^import .* from '([^']+)'/gm)].map((m) => m[1]);
      // Another target's light definition (its schemas) is light too.
      for (const i of imports) expect(['zod', '../types.ts'].includes(i!) || /^\.\.\/[a-z-]+\/index\.ts$/.test(i!), `${id}/index.ts imports ${i}`).toBe(true);
    }
  });
});

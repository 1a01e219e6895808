import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REGISTERED_IDS, TARGET_TYPES, loadTargetDefinition, loadTargetDefinitions } from '../../src/targets/index.ts';
import { TARGET_IDS } from '../../src/targets/types.ts';

const targetsDir = fileURLToPath(new URL('../../src/targets/', import.meta.url));
const folders = readdirSync(targetsDir).filter((f) => statSync(join(targetsDir, f)).isDirectory());

describe('target registry', () => {
  it('matches the src/targets/ folders exactly', () => {
    expect(Object.keys(TARGET_TYPES).sort()).toEqual([...folders].sort());
  });

  it('covers every target type of the product contract', () => {
    expect(Object.keys(TARGET_TYPES).sort()).toEqual([...TARGET_IDS].sort());
  });

  it('each entry loads its own definition, which carries the entry\'s facts', async () => {
    for (const [key, type] of Object.entries(TARGET_TYPES)) {
      const def = await loadTargetDefinition(key);
      expect(def?.id).toBe(key);
      expect(def?.credentialEnv).toBe((type as { credentialEnv?: readonly string[] }).credentialEnv);
      expect(def?.localFile).toBe((type as { localFile?: unknown }).localFile);
      expect(def?.discover).toBe((type as { discover?: unknown }).discover);
    }
  });

  it('loads only the definitions asked for; an unknown type (even __proto__) is none', async () => {
    expect([...(await loadTargetDefinitions(['heroku', 'nope', '__proto__', 'heroku'])).keys()]).toEqual(['heroku']);
    expect(await loadTargetDefinition('constructor')).toBeUndefined();
    expect(REGISTERED_IDS).toEqual(Object.keys(TARGET_TYPES));
  });

  it('the registry imports no definition: only types, and each entry\'s own folder lazily', () => {
    const src = readFileSync(join(targetsDir, 'index.ts'), 'utf8');
    expect([...src.matchAll(/^import (?!type ).*$/gm)]).toEqual([]);
    // Each entry's literal import() calls name its own folder (tsc rewrites literal specifiers for dist/).
    for (const id of REGISTERED_IDS) {
      const entry = src.slice(src.indexOf(`  ${/-/.test(id) ? `'${id}'` : id}: {`), src.indexOf('\n  },', src.indexOf(`  ${/-/.test(id) ? `'${id}'` : id}: {`)));
      const folders = [...entry.matchAll(/import\('\.\/([a-z-]+)\//g)].map((m) => m[1]);
      expect(folders.length, id).toBeGreaterThan(0);
      expect(new Set(folders), id).toEqual(new Set([id]));
    }
  });

  it.each(folders)('%s has a README with its permissions and a conformance harness', (id) => {
    if (id !== 'dotenv' && id !== 'file') expect(existsSync(join(targetsDir, id, 'README.md'))).toBe(true);
    expect(existsSync(fileURLToPath(new URL(`../conformance/harnesses/${id}.ts`, import.meta.url)))).toBe(true);
  });

  it('the definitions import no provider SDK (start-up cost)', () => {
    for (const id of folders) {
      const src = readFileSync(join(targetsDir, id, 'index.ts'), 'utf8');
      const imports = [...src.matchAll(/^import .* from '([^']+)'/gm)].map((m) => m[1]);
      // The registry (its facts), and another target's definition (its schemas), are light too.
      for (const i of imports) expect(['zod', '../types.ts', '../index.ts'].includes(i!) || /^\.\.\/[a-z-]+\/index\.ts$/.test(i!), `${id}/index.ts imports ${i}`).toBe(true);
    }
  });
});

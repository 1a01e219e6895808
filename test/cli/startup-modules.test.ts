import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { BIN } from '../helpers/cli.ts';

const HOOK = fileURLToPath(new URL('../helpers/module-log.mjs', import.meta.url));

/** The modules `keyrot <args>` loads, as file paths relative to the repository (node: builtins left out). */
function modulesOf(args: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', HOOK, BIN, ...args], { env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', () => {
      const list = /KEYROT_TEST_MODULES (.*)/.exec(stderr)?.[1];
      if (!list) return reject(new Error(`no module list: ${stderr}`));
      const root = fileURLToPath(new URL('../../', import.meta.url));
      resolve((JSON.parse(list) as string[]).filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u).replace(root, '').replace(/^.*node_modules\//, 'node_modules/')));
    });
  });
}

/**
 * Start-up: `--help` is what a user runs first and most; it loads the entry point, the command
 * parser and the output boundary (redaction), nothing else: no YAML parser, no schemas, no SDK,
 * no target, no engine, no live display.
 */
it('--help loads only the entry point, commander and the output boundary', async () => {
  const mods = await modulesOf(['--help']);
  expect(mods).toContain('src/cli/main.ts');
  expect(mods.some((m) => m.startsWith('node_modules/commander/'))).toBe(true);
  const heavy = mods.filter((m) => /node_modules\/(yaml|zod|@aws-sdk|@smithy|@google-cloud|@azure|@kubernetes|log-update|node-cron)\//.test(m) || /^src\/(targets|machine|inventory|state|runtime|scheduler|issuers|keys)\//.test(m));
  expect(heavy).toEqual([]);
  expect(mods.filter((m) => m.startsWith('src/')).length).toBeLessThanOrEqual(12);
});

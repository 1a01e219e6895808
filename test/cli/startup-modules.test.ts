import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { BIN } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

const HOOK = fileURLToPath(new URL('../helpers/module-log.mjs', import.meta.url));

/** The modules `keyrot <args>` loads: file paths relative to the repository, then the builtins (`node:crypto`). */
function modulesOf(args: string[], cwd?: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', HOOK, BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', () => {
      const list = /KEYROT_TEST_MODULES (.*)/.exec(stderr)?.[1];
      if (!list) return reject(new Error(`no module list: ${stderr}`));
      const root = fileURLToPath(new URL('../../', import.meta.url));
      // Files relative to the repository; builtins as `node:x`.
      const all = JSON.parse(list) as string[];
      const files = all.filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u).replace(root, '').replace(/^.*node_modules\//, 'node_modules/'));
      resolve([...files, ...new Set(all.filter((u) => u.startsWith('node:')))]);
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
  // node:crypto costs ~12 ms of CPU to load; it loads when a key is first fingerprinted.
  expect(mods).not.toContain('node:crypto');
});

/**
 * `plan` on the shipped inventory's local environment (a .env file and a key file): the YAML
 * parser, zod and the definitions of every type (the registry), but of the targets only the
 * adapters of the two types it uses; no provider SDK, no live display, and no node-cron although
 * the inventory has a `schedule:` (its cron is checked without it: src/inventory/cron.ts).
 */
it('plan -e local on the shipped inventory loads the adapters it uses, no SDK and no node-cron', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-startup-'));
  try {
    await copyFile(fileURLToPath(new URL('../../targets.yaml', import.meta.url)), join(dir, 'targets.yaml'));
    await mkdir(join(dir, 'sandbox'));
    const key = testKey();
    await writeFile(join(dir, 'sandbox/.env'), `OPENAI_API_KEY=${key}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'sandbox/openai_api_key'), key, { mode: 0o600 });
    const mods = await modulesOf(['plan', '-e', 'local'], dir);
    expect(mods).toContain('src/cli/commands/plan.ts');
    expect(mods).toContain('src/targets/dotenv/adapter.ts');
    expect(mods).toContain('src/targets/file/adapter.ts');
    const adapters = mods.filter((m) => /^src\/targets\/[^/]+\/adapter\.ts$/.test(m));
    expect(adapters.sort()).toEqual(['src/targets/dotenv/adapter.ts', 'src/targets/file/adapter.ts']);
    const heavy = mods.filter((m) => /node_modules\/(node-cron|@aws-sdk|@smithy|@google-cloud|@azure|@kubernetes|log-update|cloudflare|@octokit|libsodium-wrappers|prom-client)\//.test(m));
    expect(heavy).toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

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
async function modulesOf(args: string[], cwd?: string): Promise<string[]> {
  return (await runLogged(args, cwd)).modules;
}

/** Runs `keyrot <args>` with the module log: its exit code, its stderr and the modules it loaded. */
function runLogged(args: string[], cwd?: string): Promise<{ code: number | null; stderr: string; modules: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', HOOK, BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const list = /KEYROT_TEST_MODULES (.*)/.exec(stderr)?.[1];
      if (!list) return reject(new Error(`no module list: ${stderr}`));
      const root = fileURLToPath(new URL('../../', import.meta.url));
      // Files relative to the repository; builtins as `node:x`.
      const all = JSON.parse(list) as string[];
      const files = all.filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u).replace(root, '').replace(/^.*node_modules\//, 'node_modules/'));
      resolve({ code, stderr: stderr.replace(/\nKEYROT_TEST_MODULES .*\n/, ''), modules: [...files, ...new Set(all.filter((u) => u.startsWith('node:')))] });
    });
  });
}

/** The target types whose folder (src/targets/<type>/) a run loaded anything from. */
function targetFoldersOf(modules: string[]): string[] {
  return [...new Set(modules.flatMap((m) => /^src\/targets\/([^/]+)\//.exec(m)?.[1] ?? []))].sort();
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

/**
 * The registry loads a definition (its zod schemas) only for a type the inventory names: `plan` on
 * an inventory of .env files and key files loads nothing of the 17 other types, not even their
 * schemas, while every credential variable of every type is still withheld from children.
 */
it('plan on an inventory of dotenv and file targets loads no other target type', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-startup-'));
  try {
    const key = testKey();
    await writeFile(join(dir, '.env'), `OPENAI_API_KEY=${key}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'openai_api_key'), key, { mode: 0o600 });
    await writeFile(
      join(dir, 'targets.yaml'),
      'version: 1\nkey: { source: stdin, verify: false }\nenvironments:\n  local:\n    targets:\n      - { type: dotenv, path: .env }\n      - { type: file, path: openai_api_key }\n  staging:\n    targets:\n      - { type: dotenv, path: staging.env }\n',
    );
    const run = await runLogged(['plan', '-e', 'local'], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(targetFoldersOf(run.modules)).toEqual(['dotenv', 'file']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A type the inventory names is loaded, and its own fields are checked as before (same message, same place). */
it('an inventory with a heroku target loads heroku\'s definition and checks its fields', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-startup-'));
  try {
    await writeFile(
      join(dir, 'targets.yaml'),
      'version: 1\nkey: { source: stdin, verify: false }\nenvironments:\n  prod:\n    targets:\n      - type: heroku\n        app: ""\n        timeout: soon\n      - type: dotenv\n        path: .env\n',
    );
    const run = await runLogged(['plan', '-e', 'prod'], dir);
    expect(run.code).toBe(2);
    const file = join(dir, 'targets.yaml');
    expect(run.stderr).toContain(`${file}:7:14: environments.prod.targets[0].app: a Heroku app name or id`);
    expect(run.stderr).toContain(`${file}:8:18: environments.prod.targets[0].timeout: a duration such as 90s, 10m or 1h`);
    expect(targetFoldersOf(run.modules)).toEqual(['dotenv', 'heroku']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

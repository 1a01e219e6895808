import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { getVar } from '../../src/targets/dotenv/parse.ts';
import { runCli } from '../helpers/cli.ts';
import { runCliOnPty } from '../helpers/pty.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `keyrot init`, config discovery (-c, KEYROT_CONFIG, targets.yaml here or up to the repository
 * root) and the state directory: ignored by git, and keyed by inventory so two inventories that
 * both name `production` share no journal, lock or pending revocation; state written before the
 * key existed is still found and resumed.
 */
const openai = new OpenAIEmulator();
let dir: string;
const cli = (args: string[], opts: { cwd?: string; input?: string; env?: Record<string, string> } = {}) =>
  runCli(args, { cwd: opts.cwd ?? dir, input: opts.input, env: { XDG_CONFIG_HOME: join(dir, 'config'), ...opts.env } });

const inventory = (envFile: string) =>
  `version: 1\nkey:\n  name: OPENAI_API_KEY\n  source: stdin\n  endpoint: ${openai.endpoint}\nenvironments:\n  production:\n    targets:\n      - type: dotenv\n        name: app\n        path: ${envFile}\n`;

beforeAll(() => openai.start());
afterAll(() => openai.stop());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-init-'));
  return () => rm(dir, { recursive: true, force: true });
});

describe('keyrot init', () => {
  it('writes a commented inventory that loads, and .keyrot/.gitignore; refuses to overwrite without --force', async () => {
    const r = await cli(['init', '--type', 'dotenv,heroku']);
    expect(r.code, r.stderr).toBe(0);
    const text = await readFile(join(dir, 'targets.yaml'), 'utf8');
    expect(text).toMatch(/^#/m);
    expect(text).toMatch(/type: dotenv/);
    expect(text).toMatch(/type: heroku/);
    expect(await readFile(join(dir, '.keyrot/.gitignore'), 'utf8')).toMatch(/^\*$/m);
    expect(r.stdout).toContain('`keyrot plan -e production`');
    // What init wrote is a valid inventory: plan may find targets not ready (exit 1), never exit 2.
    const plan = await cli(['plan']);
    expect(plan.code, plan.stderr).not.toBe(2);

    const again = await cli(['init', '--type', 'file']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^keyrot: .*already exists.*--force/);
    expect(await readFile(join(dir, 'targets.yaml'), 'utf8')).toBe(text);
    expect((await cli(['init', '--type', 'file', '--force'])).code).toBe(0);
    expect(await readFile(join(dir, 'targets.yaml'), 'utf8')).toMatch(/type: file/);
  }, 60_000);

  it('--type with a typo suggests the type; --discover without --key in a tree holding no key (exit 2); no terminal and no --type is exit 2', async () => {
    const typo = await cli(['init', '--type', 'herokku']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/did you mean "heroku"\?/);
    const discover = await cli(['init', '--discover']);
    expect(discover.code).toBe(2);
    expect(discover.stderr).toMatch(/--discover found no OpenAI-format key in the working tree to look for: give it with --key stdin, env:VAR or file:PATH/);
    expect((await cli(['init'])).code).toBe(2);
    expect(existsSync(join(dir, 'targets.yaml'))).toBe(false);
  }, 60_000);

  it('on a terminal without --type: a checklist (space selects, enter confirms)', async () => {
    const s = runCliOnPty(['init'], { cwd: dir, env: { XDG_CONFIG_HOME: join(dir, 'config') } });
    await s.waitFor('Which places hold the key?');
    s.type(' '); // the first type in the list
    s.type('\r');
    const exit = await s.exited;
    expect(exit.code, s.output()).toBe(0);
    expect(await readFile(join(dir, 'targets.yaml'), 'utf8')).toMatch(/type: /);
  }, 60_000);
});

describe('config discovery', () => {
  it('-c, then KEYROT_CONFIG, then targets.yaml here or in a parent up to the repository root (said on stderr)', async () => {
    const key = testKey();
    await mkdir(join(dir, 'repo/services/api'), { recursive: true });
    execFileSync('git', ['init', '-q'], { cwd: join(dir, 'repo') });
    await writeFile(join(dir, 'repo/.gitignore'), '*.env\n.keyrot/\n');
    await writeFile(join(dir, 'repo/app.env'), `OPENAI_API_KEY=${key}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'repo/targets.yaml'), inventory('app.env'));
    const found = await cli(['plan'], { cwd: join(dir, 'repo/services/api') });
    expect(found.code, found.stderr).toBe(0);
    expect(found.stderr).toMatch(/^keyrot: using \.\.\/\.\.\/targets\.yaml \(found in .*repo\)$/m);
    expect(found.stdout).toContain(join(dir, 'repo/targets.yaml'));
    // The state goes beside the inventory found, not into the subdirectory.
    expect(existsSync(join(dir, 'repo/services/api/.keyrot'))).toBe(false);

    // Above the repository root, nothing is looked for: no inventory (exit 2, with what to do).
    await writeFile(join(dir, 'targets.yaml'), inventory('nowhere.env'));
    await rm(join(dir, 'repo/targets.yaml'));
    const none = await cli(['plan'], { cwd: join(dir, 'repo/services/api') });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no inventory at .*services\/api\/targets\.yaml: write one with `keyrot init`/);

    await writeFile(join(dir, 'elsewhere.yaml'), inventory('repo/app.env'));
    const env = await cli(['plan'], { cwd: join(dir, 'repo'), env: { KEYROT_CONFIG: join(dir, 'elsewhere.yaml') } });
    expect(env.code, env.stderr).toBe(0);
    expect(env.stderr).toMatch(/keyrot: using .*elsewhere\.yaml \(from KEYROT_CONFIG\)/);
    // -c wins over KEYROT_CONFIG, and is not announced (the user named it).
    const flag = await cli(['plan', '-c', 'elsewhere.yaml'], { env: { KEYROT_CONFIG: join(dir, 'missing.yaml') } });
    expect(flag.code, flag.stderr).toBe(0);
    expect(flag.stderr).not.toMatch(/keyrot: using/);
  }, 60_000);
});

describe('state keyed by inventory', () => {
  async function rotate(config: string, file: string, env: Record<string, string> = {}) {
    const newKey = testKey();
    openai.addKey(newKey);
    const r = await cli(['rotate', '-c', config, '--yes'], { input: newKey + '\n', env });
    return { r, newKey, holds: async () => getVar(await readFile(join(dir, file), 'utf8'), 'OPENAI_API_KEY') };
  }

  it('two inventories in one directory, both with "production": separate journals, locks and pending revocations', async () => {
    for (const name of ['a', 'b']) {
      const k = testKey();
      openai.addKey(k);
      await writeFile(join(dir, `${name}.env`), `OPENAI_API_KEY=${k}\n`, { mode: 0o600 });
      await writeFile(join(dir, `${name}.yaml`), inventory(`${name}.env`));
    }
    const a = await rotate('a.yaml', 'a.env');
    expect(a.r.code, a.r.stderr).toBe(0);
    // a awaits revocation; b has nothing pending and rotates on its own.
    const sb = JSON.parse((await cli(['status', '-c', 'b.yaml', '--json'])).stdout).environments[0];
    expect(sb.pendingRevocation).toBeNull();
    expect(sb.lastRotation).toBeNull();
    const b = await rotate('b.yaml', 'b.env');
    expect(b.r.code, b.r.stderr).toBe(0);
    const sa = JSON.parse((await cli(['status', '-c', 'a.yaml', '--json'])).stdout).environments[0];
    expect(sa.pendingRevocation).not.toBeNull();
    expect((await cli(['revoke', '-c', 'a.yaml', '--yes'])).code).toBe(0);
    expect(JSON.parse((await cli(['status', '-c', 'b.yaml', '--json'])).stdout).environments[0].pendingRevocation).not.toBeNull();
    expect(await readFile(join(dir, '.keyrot/.gitignore'), 'utf8')).toMatch(/^\*$/m);
  }, 120_000);

  it('state written before inventories had keys (no claim file) is still found and resumed', async () => {
    const k = testKey();
    openai.addKey(k);
    await writeFile(join(dir, 'app.env'), `OPENAI_API_KEY=${k}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'keys.yaml'), inventory('app.env'));
    const killed = await rotate('keys.yaml', 'app.env', { KEYROT_FAILPOINTS: 'after-write:app' });
    expect(killed.r.signal).toBe('SIGKILL');
    // The layout keyrot had before: journal/, audit.ndjson and locks/ at the top, nothing else.
    await unlink(join(dir, '.keyrot/inventory'));
    await rm(join(dir, '.keyrot/.gitignore'), { force: true });
    expect(existsSync(join(dir, '.keyrot/journal/production.ndjson'))).toBe(true);
    const status = await cli(['status', '-c', 'keys.yaml']);
    expect(status.stdout).toMatch(/interrupted/);
    const resumed = await cli(['resume', '-c', 'keys.yaml']);
    expect(resumed.code, resumed.stderr + resumed.stdout).toBe(0);
    expect(await killed.holds()).toBe(killed.newKey);
    expect((await readFile(join(dir, '.keyrot/inventory'), 'utf8')).trim()).toBe('keys.yaml');
    // Another inventory in the same directory now has a state of its own.
    await writeFile(join(dir, 'other.yaml'), inventory('app.env'));
    const other = JSON.parse((await cli(['status', '-c', 'other.yaml', '--json'])).stdout).environments[0];
    expect(other.lastRotation).toBeNull();
  }, 120_000);
});

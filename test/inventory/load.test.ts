import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadInventory, parseInventory, selectEnvironment, type Inventory } from '../../src/inventory/load.ts';
import { ConfigError, ConfigErrors } from '../../src/core/errors.ts';
import { testKey } from '../helpers/keys.ts';

const FILE = '/inv/targets.yaml';
const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** The ConfigErrors thrown by parsing `text` (fails the test when it parses). */
async function errorsOf(text: string, file = FILE): Promise<ConfigError[]> {
  try {
    await parseInventory(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigErrors);
    const errors = (err as ConfigErrors).errors;
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect(e).toBeInstanceOf(ConfigError);
    return errors;
  }
  throw new Error('expected the inventory to be rejected');
}

async function onlyError(text: string): Promise<ConfigError> {
  const errors = await errorsOf(text);
  expect(errors.map((e) => e.format())).toHaveLength(1);
  return errors[0]!;
}

/** Line/column (1-based) of the first occurrence of `needle` in `text`. */
function at(text: string, needle: string, nth = 0): { line: number; column: number } {
  let idx = -1;
  for (let i = 0; i <= nth; i++) {
    idx = text.indexOf(needle, idx + 1);
    if (idx < 0) throw new Error(`"${needle}" not in the fixture`);
  }
  const before = text.slice(0, idx).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

const dotenvTargets = (extra = '') => `environments:
  production:
    targets:
      - type: dotenv
        path: backend/.env${extra}
`;

describe('parseInventory: valid inventories', () => {
  it('a full inventory parses, with targets named type:location', async () => {
    const text = `version: 1
key:
  name: OPENAI_API_KEY
  kind: openai
  source: env:NEW_OPENAI_KEY
  verify: false
  admin:
    project: proj_123
    token: env:OPENAI_ADMIN_KEY
schedule:
  cron: "0 9 1 * *"
  timezone: Europe/Paris
revoke:
  mode: openai-admin
  grace: 15m
notify:
  webhook: env:KEYROT_WEBHOOK_URL
environments:
  production:
    targets:
      - type: dotenv
        path: backend/.env
      - type: file
        path: secrets/openai_api_key
        var: OTHER_KEY
      - type: dotenv
        name: worker-env
        path: worker/.env
  staging:
    key:
      source: stdin
    targets:
      - type: file
        path: /abs/key
`;
    const inv = await parseInventory(text, FILE);
    expect(inv.path).toBe(FILE);
    expect(inv.baseDir).toBe('/inv');
    expect([...inv.environments.keys()]).toEqual(['production', 'staging']);
    const prod = inv.environments.get('production')!;
    expect(prod.targets.map((t) => t.name)).toEqual(['dotenv:backend/.env', 'file:secrets/openai_api_key', 'worker-env']);
    expect(prod.targets.map((t) => t.type)).toEqual(['dotenv', 'file', 'dotenv']);
    expect(prod.targets[1]!.config).toMatchObject({ path: 'secrets/openai_api_key', var: 'OTHER_KEY' });
    expect(prod.targets[0]!.position).toEqual({ file: FILE, ...at(text, 'type: dotenv') });
    expect(prod.targets[2]!.position).toEqual({ file: FILE, ...at(text, 'type: dotenv', 1) });
    expect(prod.keySource).toBe('env:NEW_OPENAI_KEY');
    expect(prod.schedule).toEqual({ cron: '0 9 1 * *', timezone: 'Europe/Paris' });
    expect(inv.environments.get('staging')!.keySource).toBe('stdin');
    expect(inv.config.revoke).toMatchObject({ mode: 'openai-admin', grace: 15 * 60_000 });
    expect(inv.config.key.admin?.token).toMatchObject({ kind: 'env', name: 'OPENAI_ADMIN_KEY' });
    expect(inv.config.notify?.webhook).toMatchObject({ kind: 'env', name: 'KEYROT_WEBHOOK_URL' });
  });

  it('defaults: key.name OPENAI_API_KEY, source prompt, kind openai, verify on, revoke prompt with grace 0', async () => {
    const inv = await parseInventory(`version: 1\n${dotenvTargets()}`, FILE);
    expect(inv.config.key).toMatchObject({ name: 'OPENAI_API_KEY', source: 'prompt', kind: 'openai', verify: true });
    expect(inv.config.revoke).toEqual({ mode: 'prompt', grace: 0, disuse: { margin: 600_000, limit: 3_600_000, poll: 60_000 } });
    expect(inv.config.schedule).toBeUndefined();
    const env = inv.environments.get('production')!;
    expect(env.keySource).toBe('prompt');
    expect(env.schedule).toBeUndefined();
  });

  it('schedule timezone defaults to UTC', async () => {
    const inv = await parseInventory(`version: 1\nschedule:\n  cron: "0 9 1 * *"\n${dotenvTargets()}`, FILE);
    expect(inv.config.schedule).toEqual({ cron: '0 9 1 * *', timezone: 'UTC' });
  });

  it('token references: env:VAR and file:PATH are accepted on a target', async () => {
    const inv = await parseInventory(`version: 1\n${dotenvTargets('\n        token: file:secrets/token')}`, FILE);
    expect(inv.environments.get('production')!.targets[0]!.config.token).toMatchObject({ kind: 'file', path: 'secrets/token' });
  });

  it('requestTimeout: the per-call deadline any target takes, a duration above zero', async () => {
    const heroku = (t: string) => `version: 1\nenvironments:\n  production:\n    targets:\n      - type: heroku\n        app: api\n        requestTimeout: ${t}\n`;
    expect((await parseInventory(heroku('10s'), FILE)).environments.get('production')!.targets[0]!.config.requestTimeout).toBe('10s');
    const e = await onlyError(heroku('0s'));
    expect(e.field).toBe('environments.production.targets[0].requestTimeout');
    expect(e.message).toMatch(/a duration above zero such as 30s/);
  });

  it('duration forms for revoke.grace', async () => {
    const grace = async (g: string) => (await parseInventory(`version: 1\nrevoke:\n  grace: ${g}\n${dotenvTargets()}`, FILE)).config.revoke.grace;
    expect(await grace('0s')).toBe(0);
    expect(await grace('90s')).toBe(90_000);
    expect(await grace('1h30m')).toBe(5_400_000);
    expect(await grace('2d')).toBe(172_800_000);
    expect(await grace('30')).toBe(30_000);
  });

  it('baseDir is the directory of the inventory file (relative paths resolve against it)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyrot-inv-'));
    try {
      const path = join(dir, 'targets.yaml');
      await writeFile(path, `version: 1\n${dotenvTargets()}`);
      const inv = await loadInventory(path);
      expect(inv.baseDir).toBe(dir);
      expect(inv.path).toBe(path);
      const t = inv.environments.get('production')!.targets[0]!;
      expect(resolve(inv.baseDir, t.config.path as string)).toBe(join(dir, 'backend', '.env'));
      // A relative -c path is made absolute: positions and baseDir never depend on the cwd later.
      const rel = await loadInventory(join(dir, '.', 'targets.yaml'));
      expect(rel.baseDir).toBe(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('loadInventory: a missing file is a ConfigErrors naming the path', async () => {
    const missing = join(tmpdir(), 'keyrot-no-such-dir', 'targets.yaml');
    const err = await loadInventory(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigErrors);
    expect((err as ConfigErrors).errors[0]!.message).toContain(missing);
  });
});

describe('parseInventory: every mistake names file:line:column and the field', () => {
  it('YAML syntax error', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    targets:\n      - type: dotenv\n        path: "unclosed\n`;
    const e = (await errorsOf(text))[0]!;
    expect(e.message).toMatch(/^YAML syntax:/);
    expect(e.position?.file).toBe(FILE);
    expect(e.position?.line).toBeGreaterThanOrEqual(6);
    expect(e.format()).toMatch(new RegExp(`^${FILE}:\\d+:\\d+: `));
  });

  it('a tab-indented line is a syntax error on that line', async () => {
    const text = `version: 1\nenvironments:\n\tproduction: {}\n`;
    const e = (await errorsOf(text))[0]!;
    expect(e.message).toMatch(/YAML syntax/);
    expect(e.position).toMatchObject({ file: FILE, line: 3 });
  });

  it('duplicate YAML keys', async () => {
    const text = `version: 1\n${dotenvTargets('\n        path: other/.env')}`;
    const e = await onlyError(text);
    expect(e.message).toMatch(/^duplicate key "path" \(first at line 6\)/);
    expect(e.position).toEqual({ file: FILE, ...at(text, 'path: other') });
  });

  it('missing version', async () => {
    const e = await onlyError(dotenvTargets());
    expect(e.field).toBe('version');
    expect(e.position).toEqual({ file: FILE, line: 1, column: 1 });
  });

  it('wrong version', async () => {
    const text = `version: 2\n${dotenvTargets()}`;
    const e = await onlyError(text);
    expect(e.field).toBe('version');
    expect(e.message).toMatch(/1/);
    expect(e.position).toEqual({ file: FILE, line: 1, column: 10 });
    expect(e.format()).toBe(`${FILE}:1:10: version: ${e.message}`);
  });

  it('version as a string is wrong too', async () => {
    const e = await onlyError(`version: "1"\n${dotenvTargets()}`);
    expect(e.field).toBe('version');
  });

  it('unknown top-level field points at its key', async () => {
    const text = `version: 1\nenvironmnets: {}\n${dotenvTargets()}`;
    const e = await onlyError(text);
    expect(e.field).toBe('environmnets');
    expect(e.message).toMatch(/unknown field "environmnets"/);
    expect(e.position).toEqual({ file: FILE, line: 2, column: 1 });
  });

  it('unknown field in a target points at the key line:column', async () => {
    const text = `version: 1\n${dotenvTargets('\n        colour: red')}`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets[0].colour');
    expect(e.message).toMatch(/unknown field "colour" in a dotenv target/);
    expect(e.position).toEqual({ file: FILE, ...at(text, 'colour') });
  });

  it('unknown field in a nested block (key.admin)', async () => {
    const text = `version: 1\nkey:\n  admin:\n    project: p\n    token: env:X\n    secret: nope\n${dotenvTargets()}`;
    const e = await onlyError(text);
    expect(e.field).toBe('key.admin.secret');
    expect(e.position).toEqual({ file: FILE, ...at(text, 'secret: nope') });
  });

  it('unknown type lists the valid types', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    targets:\n      - type: herokuu\n        app: x\n`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets[0].type');
    expect(e.message).toMatch(/unknown target type "herokuu"/);
    for (const t of ['dotenv', 'file', 'aws-secrets-manager', 'gcp-secret-manager', 'azure-key-vault']) expect(e.message).toContain(t);
    expect(e.position).toEqual({ file: FILE, ...at(text, 'herokuu') });
  });

  it('a target without type', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    targets:\n      - path: .env\n`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets[0].type');
    expect(e.message).toMatch(/missing/);
    expect(e.position).toEqual({ file: FILE, ...at(text, 'path: .env') });
  });

  it('a missing required target field points at the target', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    targets:\n      - type: file\n        path: k\n      - type: dotenv\n        var: X\n`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets[1].path');
    expect(e.message).toMatch(/missing/);
    expect(e.position).toEqual({ file: FILE, ...at(text, 'type: dotenv') });
  });

  it('wrong type of value: a number where a string goes', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    targets:\n      - type: dotenv\n        path: 42\n`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets[0].path');
    expect(e.message).toMatch(/expected string, got 42/);
    expect(e.position).toEqual({ file: FILE, ...at(text, '42') });
  });

  it('wrong type of value: a mapping where a list goes', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    targets:\n      type: dotenv\n`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets');
    expect(e.message).toMatch(/expected a list, got a mapping/);
    expect(e.position).toEqual({ file: FILE, ...at(text, 'type: dotenv') });
  });

  it('a literal secret in token: must be env:VAR or file:PATH', async () => {
    const text = `version: 1\n${dotenvTargets('\n        token: hunter2hunter2')}`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets[0].token');
    expect(e.message).toMatch(/literal secret/);
    expect(e.message).toMatch(/env:VAR/);
    expect(e.message).toMatch(/file:PATH/);
    expect(e.message).not.toContain('hunter2hunter2');
    expect(e.position).toEqual({ file: FILE, ...at(text, 'hunter2') });
  });

  it('a literal token in key.admin.token', async () => {
    const text = `version: 1\nkey:\n  admin:\n    project: p\n    token: plain-admin-token\n${dotenvTargets()}`;
    const e = await onlyError(text);
    expect(e.field).toBe('key.admin.token');
    expect(e.position).toEqual({ file: FILE, ...at(text, 'plain-admin-token') });
  });

  it('notify.webhook as a literal URL', async () => {
    const text = `version: 1\nnotify:\n  webhook: https://example.com/hooks/abc\n${dotenvTargets()}`;
    const e = await onlyError(text);
    expect(e.field).toBe('notify.webhook');
    expect(e.message).toMatch(/literal secret/);
    expect(e.position).toEqual({ file: FILE, ...at(text, 'https://') });
  });

  it('a value anywhere that looks like an API key is refused, without echoing it', async () => {
    const key = testKey();
    const text = `version: 1\nenvironments:\n  production:\n    targets:\n      - type: dotenv\n        path: .env\n        endpoint: "${key}"\n`;
    // (it is not a URL either: a second error, which does not echo it either)
    const [e, ...others] = await errorsOf(text);
    expect(e!.message).toMatch(/looks like an OpenAI API key/);
    expect(e!.position).toEqual({ file: FILE, ...at(text, `"${key}"`) });
    for (const err of [e!, ...others]) expect(err.format()).not.toContain(key);
  });

  it('an API key in key.source is refused too (it is a source, not a key)', async () => {
    const key = testKey('sk-');
    const text = `version: 1\nkey:\n  source: ${key}\n${dotenvTargets()}`;
    const errors = await errorsOf(text);
    expect(errors.some((e) => /looks like an OpenAI API key/.test(e.message) && e.position?.line === 3)).toBe(true);
    expect(errors.some((e) => e.field === 'key.source')).toBe(true);
    for (const e of errors) expect(e.format()).not.toContain(key);
  });

  it('duplicate explicit target names point at the second name', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    targets:\n      - type: file\n        name: app\n        path: a\n      - type: dotenv\n        name: app\n        path: b\n`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets[1].name');
    expect(e.message).toMatch(/duplicate target name "app" \(first at line 5\)/);
    const second = at(text, 'name: app', 1);
    expect(e.position).toEqual({ file: FILE, line: second.line, column: second.column + 'name: '.length });
  });

  it('duplicate default names (type:location) point at the second target', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    targets:\n      - type: dotenv\n        path: .env\n      - type: dotenv\n        path: .env\n`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets[1]');
    expect(e.message).toMatch(/duplicate target name "dotenv:.env"/);
    expect(e.position).toEqual({ file: FILE, ...at(text, 'type: dotenv', 1) });
  });

  it('the same name in two environments is fine', async () => {
    const text = `version: 1\nenvironments:\n  a:\n    targets:\n      - type: dotenv\n        path: .env\n  b:\n    targets:\n      - type: dotenv\n        path: .env\n`;
    expect((await parseInventory(text, FILE)).environments.size).toBe(2);
  });

  it('invalid cron', async () => {
    const text = `version: 1\nschedule:\n  cron: "61 9 1 * *"\n${dotenvTargets()}`;
    const e = await onlyError(text);
    expect(e.field).toBe('schedule.cron');
    expect(e.message).toMatch(/cron expression/);
    expect(e.position).toEqual({ file: FILE, ...at(text, '"61') });
  });

  it('invalid cron in an environment schedule', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    schedule:\n      cron: every monday\n    targets:\n      - type: dotenv\n        path: .env\n`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.schedule.cron');
    expect(e.position).toEqual({ file: FILE, ...at(text, 'every monday') });
  });

  it('invalid timezone', async () => {
    const text = `version: 1\nschedule:\n  cron: "0 9 1 * *"\n  timezone: Mars/Olympus\n${dotenvTargets()}`;
    const e = await onlyError(text);
    expect(e.field).toBe('schedule.timezone');
    expect(e.message).toMatch(/IANA time zone/);
    expect(e.position).toEqual({ file: FILE, ...at(text, 'Mars/Olympus') });
  });

  it('bad duration for revoke.grace', async () => {
    for (const bad of ['soon', '-5', '5 parsecs', '""']) {
      const text = `version: 1\nrevoke:\n  grace: ${bad}\n${dotenvTargets()}`;
      const e = await onlyError(text);
      expect(e.field, bad).toBe('revoke.grace');
      expect(e.message).toMatch(/duration/);
      expect(e.position).toEqual({ file: FILE, line: 3, column: 10 });
    }
  });

  it('bad revoke.mode lists the modes', async () => {
    const text = `version: 1\nrevoke:\n  mode: email\n${dotenvTargets()}`;
    const e = await onlyError(text);
    expect(e.field).toBe('revoke.mode');
    expect(e.message).toContain('"prompt"');
    expect(e.message).toContain('"openai-admin"');
  });

  it('empty targets list', async () => {
    const text = `version: 1\nenvironments:\n  production:\n    targets: []\n`;
    const e = await onlyError(text);
    expect(e.field).toBe('environments.production.targets');
    expect(e.message).toMatch(/at least one target/);
    expect(e.position).toEqual({ file: FILE, line: 4, column: 14 });
  });

  it('an empty document', async () => {
    const e = await onlyError('');
    expect(e.message).toMatch(/expected a mapping/);
    expect(e.position).toMatchObject({ file: FILE, line: 1 });
  });

  it('every mistake is reported at once, in one ConfigErrors', async () => {
    const text = `version: 1
schedule:
  cron: "0 9 1 * *"
  timezone: Nowhere/Land
environments:
  production:
    targets:
      - type: herokuu
        app: x
      - type: dotenv
        colour: red
        path: .env
      - type: file
        path: 7
        token: literal-token
`;
    const errors = await errorsOf(text);
    const fields = errors.map((e) => e.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'schedule.timezone',
        'environments.production.targets[0].type',
        'environments.production.targets[1].colour',
        'environments.production.targets[2].path',
        'environments.production.targets[2].token',
      ]),
    );
    expect(errors).toHaveLength(5);
    for (const e of errors) expect(e.position?.file).toBe(FILE);
    // ConfigErrors' message lists every one as file:line:column: field: message.
    try {
      await parseInventory(text, FILE);
    } catch (err) {
      const lines = (err as ConfigErrors).message.split('\n');
      expect(lines).toHaveLength(5);
      for (const l of lines) expect(l).toMatch(new RegExp(`^${FILE}:\\d+:\\d+: `));
    }
  });

  it('top-level and target mistakes are reported together', async () => {
    const text = `version: 3\nunknown: 1\nenvironments:\n  production:\n    targets:\n      - type: herokuu\n`;
    const fields = (await errorsOf(text)).map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['version', 'unknown', 'environments.production.targets[0].type']));
  });
});

describe('selectEnvironment', () => {
  const one = () => parseInventory(`version: 1\n${dotenvTargets()}`, FILE);
  const several = (): Promise<Inventory> =>
    parseInventory(
      `version: 1\nenvironments:\n  production:\n    targets:\n      - type: dotenv\n        path: p/.env\n  staging:\n    targets:\n      - type: dotenv\n        path: s/.env\n`,
      FILE,
    );

  it('the only environment is chosen without -e', async () => {
    expect(selectEnvironment(await one(), undefined).name).toBe('production');
  });

  it('-e picks the named environment', async () => {
    const env = selectEnvironment(await several(), 'staging');
    expect(env.name).toBe('staging');
    expect(env.targets[0]!.name).toBe('dotenv:s/.env');
    expect(selectEnvironment(await one(), 'production').name).toBe('production');
  });

  it('an unknown environment is a ConfigError listing the environments', async () => {
    const inv = await several();
    const err = (() => {
      try {
        selectEnvironment(inv, 'prod');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/no environment "prod"/);
    expect((err as ConfigError).message).toContain('production, staging');
  });

  it('several environments and none chosen: a ConfigError asking for -e', async () => {
    const inv = await several();
    expect(() => selectEnvironment(inv, undefined)).toThrow(ConfigError);
    expect(() => selectEnvironment(inv, undefined)).toThrow(/2 environments \(production, staging\): choose one with -e NAME/);
  });
});

describe('CLI: an inventory error exits 2 with file:line:column on stderr', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyrot-cli-inv-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keyrot plan -c <bad targets.yaml>', async () => {
    const path = join(dir, 'targets.yaml');
    await writeFile(path, `version: 1\nenvironments:\n  production:\n    targets:\n      - type: herokuu\n        app: x\n      - type: dotenv\n        colour: red\n        path: .env\n`);
    const r = spawnSync(process.execPath, [join(REPO, 'bin', 'keyrot.js'), 'plan', '-c', path], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', KEYROT_STATE_DIR: join(dir, 'state') },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${path}:5:15:`);
    expect(r.stderr).toContain(`${path}:8:9:`);
    expect(r.stderr).toMatch(/unknown target type "herokuu"/);
    expect(r.stdout).toBe('');
  });

  it('a missing inventory also exits 2', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'bin', 'keyrot.js'), 'plan', '-c', join(dir, 'nope.yaml')], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(join(dir, 'nope.yaml'));
  });
});

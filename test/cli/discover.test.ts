import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FlyEmulator } from '../../emulators/fly/emulator.ts';
import { RenderEmulator } from '../../emulators/render/emulator.ts';
import { SupabaseEmulator } from '../../emulators/supabase/emulator.ts';
import { Secret } from '../../src/core/secret.ts';
import { loadInventory } from '../../src/inventory/load.ts';
import { runCli } from '../helpers/cli.ts';
import { runCliOnPty } from '../helpers/pty.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `keyrot discover` through the real CLI, against the Render, Fly and Supabase emulators and a
 * real git work tree: places holding the key in and out of the inventory, places holding other
 * keys, providers without credentials, and never a key value in the output.
 */
let dir: string;
let key: string;
let other: string;
let fly: FlyEmulator;
let render: RenderEmulator;
let supa: SupabaseEmulator;
let env: Record<string, string>;
let listed: string;
let forgotten: string;
let sprawl: string;
let ref: string;
let lostRef: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-discover-'));
  key = testKey();
  other = testKey();
  fly = new FlyEmulator({ phaseMs: 20 });
  render = new RenderEmulator({ phaseMs: 20 });
  supa = new SupabaseEmulator();
  await Promise.all([fly.start(), render.start(), supa.start()]);
  fly.seedApp('api', { secrets: { OPENAI_API_KEY: key } });
  fly.seedApp('api-staging', { secrets: { OPENAI_API_KEY: key } });
  fly.seedApp('unrelated', { secrets: { OTHER: 'x' } });
  listed = render.seedService({ name: 'web', env: { OPENAI_API_KEY: key } });
  forgotten = render.seedService({ name: 'forgotten-worker', env: { OPENAI_API_KEY: key } });
  sprawl = render.seedService({ name: 'dev-sandbox', env: { OPENAI_API_KEY: other } });
  ref = supa.seedProject({ secrets: { OPENAI_API_KEY: key } });
  lostRef = supa.seedProject({ name: 'old-edge', secrets: { OPENAI_API_KEY: key } });
  env = {
    FLY_API_TOKEN: fly.addToken({ orgs: ['personal'] }),
    RENDER_API_KEY: render.addToken(),
    SUPABASE_ACCESS_TOKEN: supa.addToken(),
    // The AWS SDK's default chain must fail at once, not wait on an instance metadata service.
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  await writeFile(
    join(dir, 'targets.yaml'),
    `version: 1
key:
  name: OPENAI_API_KEY
  source: stdin
environments:
  prod:
    targets:
      - type: dotenv
        path: .env
      - type: render
        service: ${listed}
        endpoint: ${render.url}/v1
      - type: fly
        app: api
        endpoint: ${fly.url}
      - type: supabase
        project: ${ref}
        endpoint: ${supa.url}
`,
  );
  await writeFile(join(dir, '.env'), `OPENAI_API_KEY=${key}\n`, { mode: 0o600 });
  await mkdir(join(dir, 'side'));
  await writeFile(join(dir, 'side', '.env'), `# the side service\nOPENAI_API_KEY=${key}\nDEBUG=1\n`);
  await mkdir(join(dir, 'config'));
  await writeFile(join(dir, 'config', 'settings.json'), JSON.stringify({ openai: { apiKey: other } }, null, 2));
  await mkdir(join(dir, 'ignored'));
  await writeFile(join(dir, 'ignored', '.env'), `OPENAI_API_KEY=${key}\n`);
  await writeFile(join(dir, '.gitignore'), 'ignored/\n.keyrot/\n.env\n');
  execFileSync('git', ['init', '-q', dir]);
});

afterEach(async () => {
  await Promise.all([fly.stop(), render.stop(), supa.stop()]);
  await rm(dir, { recursive: true, force: true });
});

function noKeyIn(...texts: string[]): void {
  for (const t of texts) {
    expect(t).not.toContain(key);
    expect(t).not.toContain(other);
  }
}

describe('keyrot discover', () => {
  it('--json: every place holding the key, in the inventory or not, other keys, searched and skipped', async () => {
    const r = await runCli(['discover', '-e', 'prod', '--json'], { cwd: dir, env });
    noKeyIn(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(Object.keys(report)).toEqual(['key', 'found', 'otherKeys', 'searched', 'skipped']);
    const k = new Secret(key);
    expect(report.key).toEqual({ hint: k.hint, fingerprint: k.fingerprint });
    const found = Object.fromEntries(report.found.map((f: { location: string }) => [f.location, f]));
    expect(found['.env:1']).toEqual({ type: 'dotenv', location: '.env:1', inInventory: true, target: { type: 'dotenv', path: '.env' } });
    expect(found['side/.env:2']).toEqual({ type: 'dotenv', location: 'side/.env:2', inInventory: false, target: { type: 'dotenv', path: 'side/.env' } });
    expect(found[`render service web (${listed}) OPENAI_API_KEY`].inInventory).toBe(true);
    expect(found[`render service forgotten-worker (${forgotten}) OPENAI_API_KEY`]).toEqual({
      type: 'render',
      location: `render service forgotten-worker (${forgotten}) OPENAI_API_KEY`,
      inInventory: false,
      target: { type: 'render', service: forgotten, endpoint: `${render.url}/v1` },
    });
    expect(found['fly app api secret OPENAI_API_KEY'].inInventory).toBe(true);
    expect(found['fly app api-staging secret OPENAI_API_KEY']).toMatchObject({ inInventory: false, target: { type: 'fly', app: 'api-staging', endpoint: fly.url } });
    const supaFound = report.found.filter((f: { type: string }) => f.type === 'supabase');
    expect(supaFound.map((f: { inInventory: boolean; target: { project: string } }) => [f.target.project, f.inInventory]).sort()).toEqual(
      [[ref, true], [lostRef, false]].sort(),
    );
    // .env is gitignored but searched (.env files usually are); the ignored directory is not.
    expect(report.found).toHaveLength(8);
    expect(report.found.every((f: object) => Object.keys(f).join() === 'type,location,inInventory,target')).toBe(true);

    const o = new Secret(other);
    expect(report.otherKeys).toEqual(
      expect.arrayContaining([
        { type: 'file', location: 'config/settings.json:3', hint: o.hint, fingerprint: o.fingerprint },
        { type: 'render', location: `render service dev-sandbox (${sprawl}) OPENAI_API_KEY`, hint: o.hint, fingerprint: o.fingerprint },
      ]),
    );
    expect(report.otherKeys).toHaveLength(2);

    const searched = Object.fromEntries(report.searched.map((s: { provider: string }) => [s.provider, s]));
    expect(Object.keys(searched)).toEqual(expect.arrayContaining(['files', 'render', 'fly', 'supabase']));
    expect(searched.render).toEqual({ provider: 'render', scope: '3 Render services the API key reaches', count: 3 });
    const skipped = Object.fromEntries(report.skipped.map((s: { provider: string; reason: string }) => [s.provider, s.reason]));
    expect(skipped['github-actions']).toMatch(/^no credentials: set GH_TOKEN or GITHUB_TOKEN/);
    expect(skipped.vault).toMatch(/^no credentials: set VAULT_TOKEN/);
  });

  it('human output: the table, the entries to paste, other keys, searched and skipped; exit 0 once all are listed', async () => {
    const r = await runCli(['discover', '-e', 'prod'], { cwd: dir, env });
    noKeyIn(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/found in 8 places, 4 not in the inventory/);
    // The places the inventory lacks lead the table (what the reader must act on): 4 "no" rows, then the "yes" ones.
    const rows = r.stdout.split('\n').filter((l) => / (yes|no)\s*$/.test(l)).map((l) => l.trim().split(/\s+/).at(-1));
    expect(rows).toEqual(['no', 'no', 'no', 'no', 'yes', 'yes', 'yes', 'yes']);
    expect(r.stdout).toContain(`# found by keyrot discover: render service forgotten-worker (${forgotten}) OPENAI_API_KEY`);
    expect(r.stdout).toContain(`- type: render\n    service: ${forgotten}`);
    expect(r.stdout).toContain(`config/settings.json:3  ${new Secret(other).hint}`);
    expect(r.stdout).toMatch(/skipped github-actions: no credentials/);
    expect(r.stdout).toMatch(/Rotating now would leave the key at 4 places outside the inventory, and revoking the key would break them/);

    // The user adds what discover printed: nothing is left outside.
    const more = `      - type: dotenv\n        path: side/.env\n      - type: render\n        service: ${forgotten}\n        endpoint: ${render.url}/v1\n      - type: fly\n        app: api-staging\n        endpoint: ${fly.url}\n      - type: supabase\n        project: ${lostRef}\n        endpoint: ${supa.url}\n`;
    await writeFile(join(dir, 'targets.yaml'), (await readFile(join(dir, 'targets.yaml'), 'utf8')) + more);
    const again = await runCli(['discover', '-e', 'prod'], { cwd: dir, env });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('Every place found is in the inventory of "prod"');
  });

  it('--key env:VAR looks for that key; --path searches another directory; a missing --path or a key in argv is a usage error', async () => {
    const side = await mkdtemp(join(tmpdir(), 'keyrot-discover-side-'));
    try {
      await writeFile(join(side, 'openai_api_key'), `${other}\n`);
      const r = await runCli(['discover', '-e', 'prod', '--key', 'env:SUSPECT', '--path', side, '--json'], { cwd: dir, env: { ...env, SUSPECT: other } });
      noKeyIn(r.stdout, r.stderr);
      expect(r.code, r.stderr).toBe(1);
      const report = JSON.parse(r.stdout);
      expect(report.key.fingerprint).toBe(new Secret(other).fingerprint);
      expect(report.found.map((f: { type: string; inInventory: boolean }) => [f.type, f.inInventory]).sort()).toEqual([
        ['file', false],
        ['file', false],
        ['render', false],
      ]);
      expect(report.found.find((f: { target: { type: string } | null }) => f.target?.type === 'file').target.path).toMatch(/openai_api_key$/);
      expect(report.otherKeys.length).toBeGreaterThanOrEqual(4);
    } finally {
      await rm(side, { recursive: true, force: true });
    }
    const missing = await runCli(['discover', '-e', 'prod', '--path', 'nowhere'], { cwd: dir, env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--path nowhere: no such file or directory');
    const argv = await runCli(['discover', '-e', 'prod', '--key', key], { cwd: dir, env });
    expect(argv.code).toBe(2);
    noKeyIn(argv.stdout, argv.stderr);
  });

  it('reads the inventory’s own local files even inside an ignored directory; a key found nowhere says so', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keyrot-discover-own-'));
    try {
      await mkdir(join(home, 'sandbox'));
      await writeFile(join(home, 'sandbox', '.env'), `OPENAI_API_KEY=${key}\n`);
      await writeFile(join(home, '.gitignore'), 'sandbox/\n.keyrot/\n');
      await writeFile(join(home, 'targets.yaml'), 'version: 1\nenvironments:\n  local:\n    targets:\n      - type: dotenv\n        path: sandbox/.env\n');
      execFileSync('git', ['init', '-q', home]);
      const r = await runCli(['discover', '--only-inventory', '--json'], { cwd: home, env });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).found).toEqual([{ type: 'dotenv', location: 'sandbox/.env:1', inInventory: true, target: { type: 'dotenv', path: 'sandbox/.env' } }]);
      const nowhere = await runCli(['discover', '--only-inventory', '--key', 'env:FRESH'], { cwd: home, env: { ...env, FRESH: testKey() } });
      expect(nowhere.code, nowhere.stderr).toBe(0);
      expect(nowhere.stdout).toContain('found in 0 places');
      expect(nowhere.stdout).toContain('The key was found nowhere keyrot searched');
      noKeyIn(r.stdout, r.stderr, nowhere.stdout, nowhere.stderr);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('init --discover: refuses to overwrite without --force; with it, writes every place found, commented, as an inventory that loads', async () => {
    const keep = await readFile(join(dir, 'targets.yaml'), 'utf8');
    const refused = await runCli(['init', '--discover', '--key', 'env:K', '-e', 'prod'], { cwd: dir, env: { ...env, K: key } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already exists: keyrot init does not overwrite it \(--force does\)/);
    expect(await readFile(join(dir, 'targets.yaml'), 'utf8')).toBe(keep);

    const r = await runCli(['init', '--discover', '--force', '--key', 'env:K', '-e', 'prod'], { cwd: dir, env: { ...env, K: key } });
    noKeyIn(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/with 8 targets found by keyrot discover/);
    const text = await readFile(join(dir, 'targets.yaml'), 'utf8');
    noKeyIn(text);
    expect(text).toContain(`# found by keyrot discover: render service forgotten-worker (${forgotten}) OPENAI_API_KEY`);
    expect(text).toContain('# found by keyrot discover: side/.env:2');
    const inv = await loadInventory(join(dir, 'targets.yaml'));
    const targets = inv.environments.get('prod')!.targets;
    expect(targets.map((t) => t.type).sort()).toEqual(['dotenv', 'dotenv', 'fly', 'fly', 'render', 'render', 'supabase', 'supabase']);
    expect(targets.find((t) => t.type === 'render' && t.config.service === forgotten)?.config.endpoint).toBe(`${render.url}/v1`);
    // And discover agrees: every place is now in the inventory.
    const again = await runCli(['discover', '-e', 'prod'], { cwd: dir, env });
    expect(again.code, again.stdout).toBe(0);
  });

  it('init --discover without an inventory: the files of the working tree', async () => {
    const fresh = await mkdtemp(join(tmpdir(), 'keyrot-discover-init-'));
    try {
      await writeFile(join(fresh, '.env.production'), `export OPENAI_KEY=${key}\n`);
      await mkdir(join(fresh, 'secrets'));
      await writeFile(join(fresh, 'secrets', 'openai_api_key'), key);
      const r = await runCli(['init', '--discover', '--key', 'stdin', '-e', 'staging'], { cwd: fresh, env: { AWS_EC2_METADATA_DISABLED: 'true' }, input: `${key}\n` });
      noKeyIn(r.stdout, r.stderr);
      expect(r.code, r.stderr).toBe(0);
      const inv = await loadInventory(join(fresh, 'targets.yaml'));
      expect(inv.environments.get('staging')!.targets.map((t) => [t.type, t.config.path, t.config.var])).toEqual([
        ['dotenv', '.env.production', 'OPENAI_KEY'],
        ['file', 'secrets/openai_api_key', undefined],
      ]);
      // Without --key: the only OpenAI-format key the tree holds is the one looked for, and said.
      const inferred = await runCli(['init', '--discover', '--force', '-e', 'staging'], { cwd: fresh, env: { AWS_EC2_METADATA_DISABLED: 'true' } });
      noKeyIn(inferred.stdout, inferred.stderr);
      expect(inferred.code, inferred.stderr).toBe(0);
      expect(inferred.stdout).toContain(`Looked for ${new Secret(key).hint} (${new Secret(key).fingerprint}): the only OpenAI-format key in the working tree.`);
      expect((await loadInventory(join(fresh, 'targets.yaml'))).environments.get('staging')!.targets).toHaveLength(2);
      // Two different keys: keyrot does not guess which one is this environment's.
      await writeFile(join(fresh, 'side.env'), `OPENAI_API_KEY=${other}\n`);
      const two = await runCli(['init', '--discover', '--force'], { cwd: fresh, env: { AWS_EC2_METADATA_DISABLED: 'true' } });
      noKeyIn(two.stdout, two.stderr);
      expect(two.code).toBe(2);
      expect(two.stderr).toContain('the working tree holds 2 different OpenAI keys');
      expect(two.stderr).toContain(new Secret(other).hint);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('plan warns about the places its providers hold outside the inventory (--no-discover skips the pass); plan --json adds `discovered`', async () => {
    const r = await runCli(['plan', '-e', 'prod'], { cwd: dir, env: { ...env, NO_COLOR: '1' } });
    noKeyIn(r.stdout, r.stderr);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `warning: rotating now would leave the key at render service forgotten-worker (${forgotten}) OPENAI_API_KEY, and revoking would break it; run \`keyrot discover -e prod\``,
    );
    expect(r.stdout).toContain('warning: rotating now would leave the key at fly app api-staging secret OPENAI_API_KEY');
    // Only the inventory's providers: the working tree's side/.env is for `keyrot discover`.
    expect(r.stdout).not.toContain('side/.env');

    const json = await runCli(['plan', '-e', 'prod', '--json'], { cwd: dir, env });
    const plan = JSON.parse(json.stdout);
    expect(Object.keys(plan)).toEqual(['env', 'keySource', 'keyName', 'drift', 'problems', 'warnings', 'targets', 'discovered']);
    expect(plan.discovered.outside.map((f: { type: string }) => f.type).sort()).toEqual(['fly', 'render', 'supabase']);
    expect(plan.discovered.searched.map((s: { provider: string }) => s.provider)).toEqual(['fly', 'render', 'supabase']);

    const quick = await runCli(['plan', '-e', 'prod', '--no-discover', '--json'], { cwd: dir, env });
    const without = JSON.parse(quick.stdout);
    expect(without.discovered).toBeUndefined();
    expect(without.warnings.some((w: string) => w.includes('rotating now'))).toBe(false);
  });

  it('a provider that throttles: the search waits, says it is pacing, and finishes', async () => {
    // Two 429s without Retry-After: retried with backoff, the lane cut, and said on stderr.
    render.server.failNext({ times: 2, status: 429, body: { message: 'rate limit exceeded' } });
    // --key: no preflight of the inventory's targets first, so the 429s reach the search itself.
    const r = await runCli(['discover', '-e', 'prod', '--only-inventory', '--key', 'env:K'], { cwd: dir, env: { ...env, K: key } });
    expect(r.code, r.stderr).toBe(1); // the forgotten worker is outside the inventory
    expect(r.stderr).toMatch(/^render:.*: at most \d+ at once \(was \d+\) after: .*429/m);
    expect(r.stderr).not.toContain('render:render:');
    expect(r.stdout).toContain(`render service forgotten-worker (${forgotten})`);
  });

  it('on a terminal: progress per provider while it searches, then the report; no key on the screen', async () => {
    const s = runCliOnPty(['discover', '-e', 'prod'], { cwd: dir, env });
    const exit = await s.exited;
    const screen = s.output();
    expect(exit.code, screen).toBe(1);
    expect(screen).toMatch(/discover/);
    expect(screen).toMatch(/render +searching/);
    expect(screen).toMatch(/render +searched +3 Render services the API key reaches/);
    expect(screen).toMatch(/github-actions +skipped +no credentials/);
    expect(screen).toMatch(/found in 8 places, 4 not in the inventory/);
    noKeyIn(screen);
  }, 60_000);
});

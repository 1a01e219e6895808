import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';
import { COMMANDS } from '../../src/cli/main.ts';

/**
 * Help and errors in one style: every command's --help has examples and lists only the flags it
 * uses; errors are one `keyrot: …` line with a "did you mean"; --quiet, --verbose and the older
 * KEYROT_LOG_LEVEL; FORCE_COLOR and NO_COLOR; no Node or library warning on stderr.
 */
let dir: string;
const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { cwd: dir, env: { XDG_CONFIG_HOME: join(dir, 'config'), ...env } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-help-'));
  await writeFile(join(dir, 'app.env'), `OPENAI_API_KEY=${testKey()}\n`, { mode: 0o600 });
  await writeFile(
    join(dir, 'targets.yaml'),
    'version: 1\nkey:\n  name: OPENAI_API_KEY\n  source: stdin\n  verify: false\nenvironments:\n  production:\n    targets:\n      - type: dotenv\n        name: app\n        path: app.env\n',
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('--help', () => {
  it('every command: an Examples section, -q/-v, and only the shared flags it uses', async () => {
    for (const spec of COMMANDS) {
      const r = await cli([spec.name, '--help']);
      expect(r.code, spec.name).toBe(0);
      expect(r.stdout, spec.name).toMatch(/\nExamples:\n {2}keyrot /);
      expect(r.stdout, spec.name).toMatch(/-q, --quiet/);
      expect(r.stdout, spec.name).toMatch(/-v, --verbose/);
      const uses = (flag: string) => spec.shared.includes(flag as never) || (spec.options ?? []).some((o) => o.flags.includes(flag));
      for (const [flag, name] of [['--state-dir', 'stateDir'], ['--yes', 'yes'], ['--wide', 'wide'], ['--json', 'json'], ['--env', 'env']] as const) {
        expect(r.stdout.includes(flag), `${spec.name} ${flag}`).toBe(uses(flag) || spec.shared.includes(name as never));
      }
    }
  }, 180_000);

  it('the top-level help lists every command and the exit codes, including 4', async () => {
    const r = await cli(['--help']);
    for (const spec of COMMANDS) expect(r.stdout).toContain(spec.name);
    expect(r.stdout).toMatch(/4 verify could not reach the issuer/);
  });
});

describe('errors: one style, with a "did you mean"', () => {
  it('unknown command, option, environment, target type and targets.yaml field', async () => {
    const cmd = await cli(['verfy']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/^keyrot: unknown command 'verfy' \(did you mean verify\?\)/);
    const opt = await cli(['plan', '--jsno']);
    expect(opt.code).toBe(2);
    expect(opt.stderr).toMatch(/^keyrot: unknown option '--jsno' \(did you mean --json\?\)/);
    const env = await cli(['plan', '-e', 'prodution']);
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/^keyrot: .*no environment "prodution".*\(did you mean "production"\?\)/m);
    await writeFile(join(dir, 'typo.yaml'), 'version: 1\nkey:\n  name: K\n  sorce: stdin\nenvironments:\n  p:\n    targets:\n      - type: dotenv\n        name: a\n        pth: a.env\n      - type: dotenvv\n        name: b\n        path: b.env\n');
    const inv = await cli(['plan', '-c', 'typo.yaml']);
    expect(inv.code).toBe(2);
    expect(inv.stderr).toMatch(/unknown field "sorce".*\(did you mean "source"\?\)/);
    expect(inv.stderr).toMatch(/unknown field "pth" in a dotenv target \(did you mean "path"\?\)/);
    expect(inv.stderr).toMatch(/unknown target type "dotenvv" \(did you mean "dotenv"\?\)/);
    // The docs it points at exist: the README's targets.yaml reference section.
    const anchor = /see keyrot's README\.md#([\w-]+)/.exec(inv.stderr)?.[1];
    expect(anchor).toBe('targetsyaml-reference');
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toMatch(/^## targets\.yaml reference$/m);
    for (const line of inv.stderr.trim().split('\n')) expect(line).toMatch(/^(keyrot: |  )/);
  }, 60_000);
});

describe('--quiet, --verbose, KEYROT_LOG_LEVEL', () => {
  it('--quiet leaves progress out of stderr; KEYROT_LOG_LEVEL=warn does the same; results stay', async () => {
    const normal = await cli(['verify']);
    expect(normal.code, normal.stderr).toBe(0);
    expect(normal.stderr).toMatch(/Reading 1 target/);
    for (const [args, env] of [[['verify', '--quiet'], {}], [['verify', '-q'], {}], [['verify'], { KEYROT_LOG_LEVEL: 'warn' }]] as const) {
      const r = await cli([...args], env);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/The target holds/);
    }
  }, 60_000);

  it('--verbose (or KEYROT_LOG_LEVEL=debug) shows the stack of an unexpected error; without it, none', async () => {
    // A state directory whose `inventory` claim file is a directory: an error keyrot did not
    // foresee (EISDIR), so it is reported as unexpected.
    await mkdir(join(dir, 'odd-state', 'inventory'), { recursive: true });
    const plain = await cli(['rotate', '--yes', '--state-dir', 'odd-state']);
    const verbose = await cli(['rotate', '--yes', '--state-dir', 'odd-state', '--verbose']);
    const alias = await cli(['rotate', '--yes', '--state-dir', 'odd-state'], { KEYROT_LOG_LEVEL: 'debug' });
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).not.toMatch(/\n\s+at /);
    expect(verbose.stderr.length).toBeGreaterThan(plain.stderr.length);
    expect(alias.stderr.length).toBeGreaterThan(plain.stderr.length);
  }, 60_000);
});

describe('colour and warnings', () => {
  it('FORCE_COLOR colours output that is not a terminal; NO_COLOR (or FORCE_COLOR=0) keeps it plain', async () => {
    const forced = await cli(['verify'], { NO_COLOR: '', FORCE_COLOR: '1' });
    expect(forced.stdout).toContain('\x1b[');
    const plain = await cli(['verify'], { NO_COLOR: '1' });
    expect(plain.stdout).not.toContain('\x1b[');
    const off = await cli(['verify'], { NO_COLOR: '', FORCE_COLOR: '0' });
    expect(off.stdout).not.toContain('\x1b[');
  }, 60_000);

  it('no Node warning reaches stderr on a first run (a fresh compile cache, a new state directory)', async () => {
    // gcp-metadata's warning: test/cli/gcp-metadata-warning.test.ts.
    for (const args of [['--help'], ['plan'], ['verify']]) {
      const r = await cli(args, { KEYROT_NO_COMPILE_CACHE: '1' });
      expect(r.stderr, args.join(' ')).not.toMatch(/Warning|DEP0\d+|\(node:\d+\)/);
    }
  }, 60_000);
});

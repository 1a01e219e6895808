import { execFileSync, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getVar } from '../../src/targets/dotenv/parse.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * Local files through the real CLI: a real SIGKILL between the temp file's creation and its
 * rename (failpoint `before-rename`), what git, `plan`, `scan`, `resume` and `rotate` make of
 * the temp file left behind, and the permission warning of `plan` and `rotate`.
 */
/** Each test runs the CLI up to six times: room for a loaded machine. */
const SLOW = 120_000;
let root: string;
let repo: string;
let stateDir: string;
let nobodyConfig: string;

const INVENTORY = `version: 1
key:
  source: stdin
  verify: false
environments:
  dev:
    targets:
      - type: dotenv
        name: app-env
        path: .env
`;

const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
const cli = (args: string[], input?: string, env?: Record<string, string>, state = stateDir) =>
  runCli([...args, '--state-dir', state], { cwd: repo, input, env });
/** keyrot's temp files for `.env`: `.env.keyrot-<pid>-<12 hex>.tmp`. */
const strays = async () => (await readdir(repo)).filter((f) => /^\.env\.keyrot-\d+-[0-9a-f]{12}\.tmp$/.test(f));
const envKey = async () => getVar(await readFile(join(repo, '.env'), 'utf8'), 'OPENAI_API_KEY');

/** A repository with a committed inventory and ignore rules, and a `.env` holding a key. */
async function setUp(ignore: string): Promise<string> {
  execFileSync('git', ['init', '-q', repo]);
  await writeFile(join(repo, 'targets.yaml'), INVENTORY);
  await writeFile(join(repo, '.gitignore'), ignore);
  git('add', '.');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-qm', 'inventory');
  const oldKey = testKey();
  await writeFile(join(repo, '.env'), `PORT=3000\nOPENAI_API_KEY=${oldKey}\n`, { mode: 0o600 });
  return oldKey;
}

/** `keyrot rotate` killed (SIGKILL) after writing the temp file, before renaming it. */
async function killedRotation(state = stateDir): Promise<string> {
  const newKey = testKey();
  const r = await cli(['rotate', '--yes'], newKey + '\n', { KEYROT_FAILPOINTS: 'before-rename' }, state);
  expect(r.signal, r.stderr).toBe('SIGKILL');
  return newKey;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'keyrot-localcli-'));
  repo = join(root, 'repo');
  stateDir = join(root, 'state');
  nobodyConfig = join(root, 'nobody-config');
  await mkdir(repo);
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('a crash between the temp file and its rename', { timeout: SLOW }, () => {
  it.each(['.env*\n', '.env\n.env.*\n!.env.example\n'])('leaves nothing git would commit (ignore rules %j); plan and scan report it; resume removes it', async (ignore) => {
    const oldKey = await setUp(ignore);
    const newKey = await killedRotation();
    const left = await strays();
    expect(left).toHaveLength(1);
    // The danger: the stray is a full copy of the file with the new key in it.
    expect(await readFile(join(repo, left[0]!), 'utf8')).toContain(newKey);
    expect(await envKey()).toBe(oldKey);

    expect(git('status', '--porcelain')).toBe('');
    git('add', '-A');
    expect(git('status', '--porcelain')).toBe('');

    const plan = await cli(['plan', '--json']);
    const warnings: string[] = JSON.parse(plan.stdout).targets[0].warnings;
    expect(warnings.join('\n')).toContain(left[0]);
    expect(warnings.join('\n')).toMatch(/left by an interrupted keyrot write/);
    expect(await strays()).toEqual(left); // plan is read-only

    const scan = await runCli(['scan', '--json'], { cwd: repo });
    expect(scan.code, scan.stderr).toBe(1);
    const findings: Array<{ file: string; leak: boolean; note: string }> = JSON.parse(scan.stdout).findings;
    const onStray = findings.filter((f) => f.file === left[0]);
    expect(onStray.length).toBeGreaterThan(0);
    expect(onStray.every((f) => f.leak)).toBe(true);
    expect(onStray[0]!.note).toMatch(/temp file of an interrupted keyrot write/);

    const res = await cli(['resume', '--rollback']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    expect(res.stderr).toContain(`removed ${join(repo, left[0]!)}`);
    expect(await strays()).toEqual([]);
    expect(await envKey()).toBe(oldKey);
    expect(scan.stdout + plan.stdout + res.stdout + res.stderr).not.toContain(newKey);
  });

  it("rotate's preflight removes only keyrot's own strays whose writer is gone", async () => {
    await setUp('.env*\n');
    // The stray of a killed rotation whose journal is elsewhere (another state directory).
    await killedRotation(join(root, 'other-state'));
    const [killed] = await strays();
    const hex = 'abcdef012345';
    const keep = [
      `.env.keyrot-${process.pid}-${hex}.tmp`, // its writer (this test runner) is alive
      `.env.keyrot-notes.tmp`, // not keyrot's pattern
      `.envrc.keyrot-99999999-${hex}.tmp`, // another file's temp
      `.env.keyrot-99999998-${hex}.tmp`, // not owned by the user running keyrot (below)
    ];
    for (const n of keep) await writeFile(join(repo, n), 'x', { mode: 0o600 });
    if (process.getuid?.() === 0) await chown(join(repo, keep[3]!), 65534, 65534);
    else keep.pop();

    const newKey = testKey();
    const r = await cli(['rotate', '--yes'], newKey + '\n');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toContain(`removed ${join(repo, killed!)}`);
    const now = await readdir(repo);
    expect(now).not.toContain(killed);
    for (const n of keep) expect(now).toContain(n);
    expect(await envKey()).toBe(newKey);
  });

  it('a key-file temp name is covered by the documented `*.keyrot-*.tmp` rule', async () => {
    await setUp('.env*\n*.keyrot-*.tmp\n');
    const name = `openai_api_key.keyrot-1234-abcdef012345.tmp`;
    await writeFile(join(repo, name), 'x');
    expect(git('check-ignore', name).trim()).toBe(name);
    expect(git('status', '--porcelain')).toBe('');
  });
});

describe('permissions', { timeout: SLOW }, () => {
  it('plan --json and rotate warn once about a group/world-readable .env, with the chmod that fixes it', async () => {
    await setUp('.env*\n');
    await chmod(join(repo, '.env'), 0o644);
    const fix = `chmod 600 ${join(repo, '.env')}`;

    const plan = await cli(['plan', '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    const j = JSON.parse(plan.stdout);
    expect(j.targets[0].warnings.join('\n')).toContain(fix);
    expect(j.targets[0].notes).toEqual([]); // existing fields unchanged
    expect(j.warnings).toEqual([]);

    const human = await cli(['plan']);
    expect(human.stdout).toContain(fix);

    const r = await cli(['rotate', '--yes'], testKey() + '\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split(fix).length - 1).toBe(1);
    expect((await stat(join(repo, '.env'))).mode & 0o777).toBe(0o644); // never changed by keyrot
  });
});

/** keyrot run by an ordinary user (uid/gid 65534): real permission checks, which root would pass. */
describe.runIf(process.getuid?.() === 0)('as an ordinary user', { timeout: SLOW }, () => {
  const NOBODY = 65534;
  const asNobody = (args: string[], input = '') =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
      const child = spawn(process.execPath, [BIN, ...args, '--state-dir', stateDir], {
        cwd: repo,
        uid: NOBODY,
        gid: NOBODY,
        // Its own config directory: keyrot keeps its state key there (state-auth), writable by it.
        env: { PATH: process.env.PATH ?? '', HOME: root, XDG_CONFIG_HOME: nobodyConfig, NO_COLOR: '1' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', fail);
      child.on('close', (code) => done({ code, stdout, stderr }));
      child.stdin.end(input);
    });
  const reason = async () => {
    const r = await asNobody(['plan', '--json']);
    return JSON.parse(r.stdout).targets[0].reason as string | undefined;
  };

  beforeEach(async () => {
    await chmod(root, 0o755);
    await mkdir(stateDir);
    await chown(stateDir, NOBODY, NOBODY);
    await mkdir(nobodyConfig, { recursive: true });
    await chown(nobodyConfig, NOBODY, NOBODY);
    await writeFile(join(repo, 'targets.yaml'), INVENTORY);
    await writeFile(join(repo, '.env'), `OPENAI_API_KEY=${testKey()}\n`, { mode: 0o640 });
  });

  it('a file it may write in a directory it may not: refused in plan, never written in place', async () => {
    await chown(join(repo, '.env'), NOBODY, NOBODY);
    const before = await readFile(join(repo, '.env'), 'utf8');
    expect(await reason()).toMatch(new RegExp(`directory ${repo} is not writable by the user running keyrot: .*does not rewrite the file in place`));
    const r = await asNobody(['rotate', '--yes'], testKey() + '\n');
    expect(r.code).toBe(1);
    expect(await readFile(join(repo, '.env'), 'utf8')).toBe(before);
  });

  it("a file someone else owns (group-writable for it): refused, the owner would change", async () => {
    await chown(repo, NOBODY, NOBODY);
    await chown(join(repo, '.env'), 0, NOBODY);
    await chmod(join(repo, '.env'), 0o660);
    expect(await reason()).toMatch(/is owned by uid 0, not by the user running keyrot \(uid 65534\)/);
  });

  it('a file of its own in a group it is not in: refused, the group would change', async () => {
    await chown(repo, NOBODY, NOBODY);
    await chown(join(repo, '.env'), NOBODY, 4242);
    expect(await reason()).toMatch(/belongs to group 4242, which the user running keyrot is not in/);
  });

  it('its own file in its own directory: rotated, mode and owner kept', async () => {
    await chown(repo, NOBODY, NOBODY);
    await chown(join(repo, '.env'), NOBODY, NOBODY);
    const newKey = testKey();
    const r = await asNobody(['rotate', '--yes'], newKey + '\n');
    expect(r.code, r.stderr).toBe(0);
    expect(await envKey()).toBe(newKey);
    const st = await stat(join(repo, '.env'));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([NOBODY, NOBODY, 0o640]);
  });
});

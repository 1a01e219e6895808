import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, hint } from '../../src/core/secret.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/** `keyrot scan` as a subprocess: exit codes of the contract, human and --json output, and the keys appearing nowhere in stdout/stderr. */
function runScanCommand(
  flags: { stateDir?: string; json?: boolean; image?: string[] },
  paths: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<CliResult> {
  const args = ['scan'];
  if (flags.stateDir) args.push('--state-dir', flags.stateDir);
  if (flags.json) args.push('--json');
  for (const image of flags.image ?? []) args.push('--image', image);
  return runCli([...args, ...paths], { cwd, env });
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('scan command (subprocess)', () => {
  let dir: string;
  let leaked: string;
  let retired: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyrot-scan-cli-'));
    dirs.push(dir);
    leaked = testKey();
    retired = 'old-' + testKey('').slice(0, 40);
    await mkdir(join(dir, 'leaky/src'), { recursive: true });
    await mkdir(join(dir, 'clean'), { recursive: true });
    await writeFile(join(dir, 'leaky/src/config.js'), `module.exports = { key: "${leaked}" };\n`);
    await writeFile(join(dir, 'leaky/settings.ini'), `[openai]\napi_key = ${retired}\n`);
    await writeFile(join(dir, 'clean/a.txt'), 'nothing to see: sk-learn, task-list\n');
    // A journal that retired `retired` (generic shape: only its fingerprint can find it).
    await mkdir(join(dir, 'state/journal'), { recursive: true });
    const start = {
      v: 1,
      rotation: 'rot_20260301T090000Z_zz9',
      env: 'production',
      step: 'start',
      outcome: 'ok',
      at: '2026-03-01T09:00:00.000Z',
      oldFingerprint: fingerprint(retired),
      oldHint: hint(retired),
      targets: [],
    };
    await writeFile(join(dir, 'state/journal/production.ndjson'), JSON.stringify(start) + '\n');
  });

  const keys = () => [leaked, retired];
  const expectNoKey = (r: CliResult) => {
    for (const k of keys()) {
      expect(r.stdout.includes(k)).toBe(false);
      expect(r.stderr.includes(k)).toBe(false);
    }
  };

  it('exit 1 on findings; shows file:line, kind, hint and fingerprint, never the key', async () => {
    const r = await runScanCommand({ stateDir: 'state' }, ['leaky'], dir);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/leaky\/src\/config\.js:1\s+project key\s+sk-proj-\.\.\.\S{4}\s+[0-9a-f]{12}/);
    expect(r.stdout).toContain(hint(leaked));
    expect(r.stdout).toContain(fingerprint(leaked));
    expect(r.stdout).toMatch(/leaky\/settings\.ini:2\s+retired key/);
    expect(r.stdout).toContain('a retired key (rotation rot_20260301T090000Z_zz9 of env production)');
    expect(r.stdout).toContain('2 leaked keys found');
    expectNoKey(r);
  });

  it('--json: { findings, scanned, skipped } on stdout', async () => {
    const r = await runScanCommand({ stateDir: 'state', json: true }, ['leaky', 'clean'], dir);
    expect(r.code, r.stderr).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.scanned).toEqual({ files: 3, binaries: 0, commits: 0, images: 0 });
    expect(j.skipped).toEqual([]);
    expect(j.findings.map((f: any) => [f.location, f.kind, f.hint, f.fingerprint])).toEqual([
      ['leaky/settings.ini:2', 'retired', hint(retired), fingerprint(retired)],
      ['leaky/src/config.js:1', 'project', hint(leaked), fingerprint(leaked)],
    ]);
    expectNoKey(r);
  });

  it('exit 0 when clean', async () => {
    const r = await runScanCommand({ stateDir: 'state' }, ['clean'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('No leaked key found.');
  });

  it('exit 2 on a path that does not exist', async () => {
    const r = await runScanCommand({}, ['no/such/dir'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no such file or directory: no/such/dir');
  });

  it('exit 1 with a clear message when --image finds no Docker Engine', async () => {
    const r = await runScanCommand({ image: ['app:1'] }, ['clean'], dir, { DOCKER_HOST: `unix://${dir}/none.sock` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach a Docker Engine');
  });

  it('exit 1 on findings, 0 clean, 2 bad path, 2 for --git outside a work tree', async () => {
    const leaky = await runCli(['scan', '--state-dir', 'state', 'leaky'], { cwd: dir });
    expect(leaky.code, leaky.stderr).toBe(1);
    expect(leaky.stdout).toContain(fingerprint(leaked));
    expectNoKey(leaky);
    expect((await runCli(['scan', 'clean'], { cwd: dir })).code).toBe(0);
    expect((await runCli(['scan', 'no/such/dir'], { cwd: dir })).code).toBe(2);
    const git = await runCli(['scan', '--json', '--git', 'clean'], { cwd: dir });
    expect(git.code).toBe(2); // not a git work tree
  });
});

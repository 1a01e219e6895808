import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/** plan warns when a dotenv/file target would be committed (the seed: never commit keys). */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-git-'));
  execFileSync('git', ['init', '-q', dir]);
  await writeFile(join(dir, 'targets.yaml'), 'version: 1\nkey:\n  source: stdin\n  verify: false\nenvironments:\n  dev:\n    targets:\n      - type: dotenv\n        path: .env\n');
  await writeFile(join(dir, '.env'), `OPENAI_API_KEY=${testKey()}\n`);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

it('a .env inside a git work tree that is not ignored is reported (exit 1)', async () => {
  const r = await runCli(['plan'], { cwd: dir });
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/not ignored: add it to \.gitignore/);
});

it('a tracked .env is reported as committed', async () => {
  execFileSync('git', ['-C', dir, 'add', '-f', '.env']);
  const r = await runCli(['plan', '--json'], { cwd: dir });
  expect(r.code).toBe(1);
  const notes = JSON.parse(r.stdout).targets[0].notes.join(' ');
  expect(notes).toMatch(/TRACKED by git/);
});

it('an ignored .env is fine (exit 0)', async () => {
  await writeFile(join(dir, '.gitignore'), '.env\n');
  const r = await runCli(['plan'], { cwd: dir });
  expect(r.code, r.stdout + r.stderr).toBe(0);
});

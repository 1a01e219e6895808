import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { gitExposures } from '../../src/scan/git-exposure.ts';

let dir: string;
let git: string;
let log: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-git-exposure-'));
  // A git that logs each run, then runs the real one: the test counts processes.
  const real = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  log = join(dir, 'git-runs.log');
  git = join(dir, 'git-shim.sh');
  await writeFile(git, `#!/bin/sh\necho "$*" >> '${log}'\nexec '${real}' "$@"\n`);
  await chmod(git, 0o755);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const runs = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);

it('answers tracked / not ignored / ignored for many files with two git processes per work tree, none outside one', async () => {
  const repo = join(dir, 'repo');
  execFileSync('git', ['init', '-q', repo]);
  await mkdir(join(repo, 'svc', 'deep'), { recursive: true });
  await writeFile(join(repo, '.gitignore'), 'ignored.env\nsvc/deep/\n');
  const files = {
    tracked: join(repo, 'tracked.env'),
    open: join(repo, 'svc', 'open.env'),
    ignored: join(repo, 'ignored.env'),
    deepIgnored: join(repo, 'svc', 'deep', 'x.env'),
    spaced: join(repo, 'svc', 'with space [1].env'),
  };
  for (const f of Object.values(files)) await writeFile(f, 'OPENAI_API_KEY=placeholder\n');
  execFileSync('git', ['-C', repo, 'add', '-f', 'tracked.env']);
  const outside = join(dir, 'plain', 'app.env');
  await mkdir(join(dir, 'plain'));
  await writeFile(outside, 'OPENAI_API_KEY=placeholder\n');
  // Many more files in the same work tree: still two processes.
  const many = Array.from({ length: 50 }, (_, i) => join(repo, 'svc', `n${i}.env`));
  for (const f of many) await writeFile(f, 'X=1\n');

  const found = await gitExposures([...Object.values(files), outside, ...many], { git });
  expect(found.get(files.tracked)).toBe('tracked');
  expect(found.get(files.open)).toBe('not-ignored');
  expect(found.get(files.spaced)).toBe('not-ignored');
  expect(found.get(files.ignored)).toBeUndefined();
  expect(found.get(files.deepIgnored)).toBeUndefined();
  expect(found.get(outside)).toBeUndefined();
  for (const f of many) expect(found.get(f)).toBe('not-ignored');
  const r = await runs();
  expect(r).toHaveLength(2);
  expect(r[0]).toMatch(/ ls-files /);
  expect(r[1]).toMatch(/ check-ignore --stdin/);
});

it('a glob-like file name is a name, not a pattern', async () => {
  const repo = join(dir, 'repo');
  execFileSync('git', ['init', '-q', repo]);
  await writeFile(join(repo, 'a.env'), 'X=1\n');
  await writeFile(join(repo, '*.env'), 'X=1\n');
  execFileSync('git', ['-C', repo, 'add', 'a.env']);
  const found = await gitExposures([join(repo, '*.env')], { git });
  expect(found.get(join(repo, '*.env'))).toBe('not-ignored');
});

it('files in two work trees: two processes each; all tracked: no check-ignore', async () => {
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  for (const r of [a, b]) {
    execFileSync('git', ['init', '-q', r]);
    await writeFile(join(r, '.env'), 'X=1\n');
  }
  execFileSync('git', ['-C', b, 'add', '-f', '.env']);
  const found = await gitExposures([join(a, '.env'), join(b, '.env')], { git });
  expect(found.get(join(a, '.env'))).toBe('not-ignored');
  expect(found.get(join(b, '.env'))).toBe('tracked');
  expect(await runs()).toHaveLength(3);
});

it('outside any work tree: no git process at all', async () => {
  await writeFile(join(dir, 'x.env'), 'X=1\n');
  // tmpdir may itself sit in a work tree on some machines: only assert when it does not.
  const found = await gitExposures([join(dir, 'x.env')], { git });
  if (found.get(join(dir, 'x.env')) === undefined) expect(await runs()).toHaveLength(0);
});

import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/inventory/load.ts';
import { fingerprint, hint } from '../../src/core/secret.ts';
import { expectedFilesOf, knownKeysFromEvents, runScan, ScanUsageError } from '../../src/scan/index.ts';
import { type JournalEvent } from '../../src/state/journal.ts';
import { testKey } from '../helpers/keys.ts';
import { legacyKey } from './fixtures.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'keyrot-scan-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function put(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), content);
  }
}

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'keyrot test',
  GIT_AUTHOR_EMAIL: 'test@example.invalid',
  GIT_COMMITTER_NAME: 'keyrot test',
  GIT_COMMITTER_EMAIL: 'test@example.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
};
function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'commit.gpgsign=false', '-c', 'init.defaultBranch=main', ...args], { cwd, env: GIT_ENV, encoding: 'utf8' });
}

/** Every finding serialised: the keys must not appear in it. */
function expectNoKey(value: unknown, keys: string[]): void {
  const s = JSON.stringify(value);
  for (const k of keys) expect(s.includes(k)).toBe(false);
}

describe('files', () => {
  it('finds every key format with file:line, hint and fingerprint, never the key', async () => {
    const root = await tempDir();
    const proj = testKey('sk-proj-');
    const svc = testKey('sk-svcacct-');
    const admin = testKey('sk-admin-');
    const legacy = legacyKey();
    await put(root, {
      'src/config.ts': `export const a = 1;\nconst key = "${proj}";\n`,
      'deploy/env.yaml': `env:\n  - name: OPENAI_API_KEY\n    value: ${svc}\n`,
      'scripts/admin.sh': `#!/bin/sh\ncurl -H "Authorization: Bearer ${admin}" https://api.openai.com/v1/organization/users\n`,
      'old/notes.md': `# notes\n\nused ${legacy} back then\n`,
      'README.md': 'pip install scikit-learn (sk-learn), see risk-assessment-and-task-management\n',
    });
    const r = await runScan({ paths: [root], cwd: root });
    expect(r.findings.map((f) => [f.location, f.kind, f.hint, f.fingerprint])).toEqual([
      ['deploy/env.yaml:3', 'service-account', hint(svc), fingerprint(svc)],
      ['old/notes.md:3', 'legacy', hint(legacy), fingerprint(legacy)],
      ['scripts/admin.sh:2', 'admin', hint(admin), fingerprint(admin)],
      ['src/config.ts:2', 'project', hint(proj), fingerprint(proj)],
    ]);
    expect(r.findings[3]).toMatchObject({ source: 'file', file: 'src/config.ts', line: 2, column: 14, leak: true });
    expect(r.leaks).toBe(4);
    expect(r.scanned.files).toBe(5);
    expectNoKey(r, [proj, svc, admin, legacy]);
  });

  it('respects .gitignore (with and without git), skips node_modules, .git, binaries and large files', async () => {
    for (const withGit of [false, true]) {
      const root = await tempDir();
      const k = () => testKey();
      await put(root, {
        '.gitignore': 'ignored/\n*.secret\n!keep.secret\n',
        'ignored/a.txt': `KEY=${k()}\n`,
        'x.secret': `${k()}\n`,
        'keep.secret': `${k()}\n`,
        'sub/.gitignore': 'local.txt\n',
        'sub/local.txt': `${k()}\n`,
        'sub/shared.txt': `${k()}\n`,
        'node_modules/pkg/index.js': `module.exports = "${k()}";\n`,
        'vendor/node_modules/pkg/index.js': `module.exports = "${k()}";\n`,
        'bin/blob.bin': Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1]), Buffer.from(k())]),
        'big/huge.txt': `${k()}\n${'x'.repeat(2048)}\n`,
      });
      if (withGit) {
        git(root, 'init', '-q');
        // A tracked file under node_modules is still skipped.
        git(root, 'add', '-f', 'node_modules/pkg/index.js');
      }
      const r = await runScan({ paths: [root], cwd: root, maxFileBytes: 1024 });
      expect(r.findings.map((f) => f.file).sort(), `git: ${withGit}`).toEqual(['keep.secret', 'sub/shared.txt']);
      expect(r.scanned.binaries).toBe(1);
      expect(r.skipped).toEqual([{ path: 'big/huge.txt', reason: 'larger than 1 KB (2.1 KB)' }]);
    }
  });

  it('an ignored file given explicitly is scanned', async () => {
    const root = await tempDir();
    const k = testKey();
    await put(root, { '.gitignore': '.env\n', '.env': `OPENAI_API_KEY=${k}\n` });
    expect((await runScan({ paths: [root], cwd: root })).findings).toEqual([]);
    const r = await runScan({ paths: [join(root, '.env')], cwd: root });
    expect(r.findings.map((f) => f.location)).toEqual(['.env:1']);
  });

  it('a path that does not exist is a usage error', async () => {
    const root = await tempDir();
    await expect(runScan({ paths: [join(root, 'nope')], cwd: root })).rejects.toBeInstanceOf(ScanUsageError);
  });

  it('finds a retired key by fingerprint, in a pattern or as a plain assignment value', async () => {
    const root = await tempDir();
    const retiredProj = testKey();
    const retiredGeneric = 'generic-' + testKey('').slice(0, 40);
    const events: JournalEvent[] = [
      {
        v: 1,
        rotation: 'rot_20260101T090000Z_abc123',
        env: 'production',
        step: 'start',
        outcome: 'ok',
        at: '2026-01-01T09:00:00.000Z',
        mode: 'rotate',
        source: 'env:NEW',
        oldFingerprint: fingerprint(retiredProj),
        oldHint: hint(retiredProj),
        targets: [],
      },
      {
        v: 1,
        rotation: 'rot_20260201T090000Z_def456',
        env: 'staging',
        step: 'start',
        outcome: 'ok',
        at: '2026-02-01T09:00:00.000Z',
        oldFingerprint: fingerprint(retiredGeneric),
        oldHint: hint(retiredGeneric),
        targets: [],
      },
    ];
    await put(root, {
      'app/settings.json': `{\n  "api_key": "${retiredGeneric}"\n}\n`,
      'app/.env.example': `OPENAI_API_KEY=${retiredProj}\n`,
      'app/other.txt': `OPENAI_API_KEY=${'generic-' + testKey('').slice(0, 40)}\n`,
    });
    const r = await runScan({ paths: [root], cwd: root, known: knownKeysFromEvents(events) });
    expect(r.findings.map((f) => [f.location, f.kind, f.format, f.note])).toEqual([
      ['app/.env.example:1', 'retired', 'project', 'a retired key (rotation rot_20260101T090000Z_abc123 of env production)'],
      ['app/settings.json:2', 'retired', null, 'a retired key (rotation rot_20260201T090000Z_def456 of env staging)'],
    ]);
    expect(r.findings[1]).toMatchObject({ hint: hint(retiredGeneric), fingerprint: fingerprint(retiredGeneric), retired: { env: 'staging' } });
    expectNoKey(r, [retiredProj, retiredGeneric]);
  });

  it('keys in the inventory own dotenv/file targets are expected, not leaks (a retired key there is)', async () => {
    const root = await tempDir();
    const current = testKey();
    const retired = testKey();
    const inv = await parseInventory(
      `version: 1
key:
  name: OPENAI_API_KEY
  source: stdin
environments:
  production:
    targets:
      - type: dotenv
        path: backend/.env
      - type: file
        path: secrets/openai_api_key
`,
      join(root, 'targets.yaml'),
    );
    await put(root, {
      'backend/.env': `OPENAI_API_KEY=${current}\n`,
      'secrets/openai_api_key': `${retired}\n`,
      'backend/.env.bak': `OPENAI_API_KEY=${current}\n`,
      'backend/old.env': `OPENAI_API_KEY=${retired}\n`,
    });
    const known = knownKeysFromEvents([
      { v: 1, rotation: 'rot_1', env: 'production', step: 'start', outcome: 'ok', at: '2026-01-01T00:00:00Z', oldFingerprint: fingerprint(retired) },
    ]);
    const r = await runScan({ paths: [root], cwd: root, expectedFiles: expectedFilesOf(inv), known });
    const byFile = Object.fromEntries(r.findings.map((f) => [f.file, f]));
    expect(byFile['backend/.env']).toMatchObject({ leak: false, expected: { target: 'dotenv:backend/.env', env: 'production' } });
    expect(byFile['backend/.env']!.note).toBe('expected (inventory target dotenv:backend/.env)');
    expect(byFile['backend/.env.bak']).toMatchObject({ leak: true });
    expect(byFile['backend/old.env']).toMatchObject({ leak: true, kind: 'retired' });
    // The file target holds a retired key: that is a leak even in a target.
    expect(byFile['secrets/openai_api_key']).toMatchObject({ leak: true, kind: 'retired' });
    expect(r.leaks).toBe(3);
    expect(r.expected).toBe(1);
  });

  it("a symlinked target's real file (Capistrano's shared/.env) is expected too", async () => {
    const root = await tempDir();
    const current = testKey();
    const inv = await parseInventory(
      'version: 1\nkey:\n  source: stdin\nenvironments:\n  production:\n    targets:\n      - type: dotenv\n        path: current/.env\n',
      join(root, 'targets.yaml'),
    );
    await put(root, { 'shared/.env': `OPENAI_API_KEY=${current}\n` });
    await mkdir(join(root, 'current'));
    await symlink(join('..', 'shared', '.env'), join(root, 'current/.env'));
    const r = await runScan({ paths: [root], cwd: root, expectedFiles: expectedFilesOf(inv) });
    expect(r.findings.find((f) => f.file === 'shared/.env')).toMatchObject({ leak: false, expected: { target: 'dotenv:current/.env' } });
    expect(r.leaks).toBe(0);
  });

  it('a keyrot temp file a crash left is scanned even where ignore rules hide it (outside git)', async () => {
    const root = await tempDir();
    const k = testKey();
    await put(root, { '.gitignore': '.env*\n', '.env': `OPENAI_API_KEY=${k}\n`, '.env.keyrot-4242-abcdef012345.tmp': `OPENAI_API_KEY=${k}\n` });
    const r = await runScan({ paths: [root], cwd: root });
    expect(r.findings.map((f) => f.file)).toEqual(['.env.keyrot-4242-abcdef012345.tmp']);
    expect(r.findings[0]).toMatchObject({ leak: true });
    expect(r.findings[0]!.note).toMatch(/temp file of an interrupted keyrot write/);
  });

  it('scans a tree of 10k small files in a few seconds', async () => {
    const root = await tempDir();
    const k = testKey();
    const work: Promise<void>[] = [];
    for (let d = 0; d < 100; d++) {
      work.push(
        (async () => {
          await mkdir(join(root, `d${d}`), { recursive: true });
          for (let f = 0; f < 100; f++) {
            const body = d === 42 && f === 7 ? `x\nkey = "${k}"\n` : `export const v${f} = ${f}; // task-${f} risk-${d}\n`.repeat(5);
            await writeFile(join(root, `d${d}`, `f${f}.ts`), body);
          }
        })(),
      );
    }
    await Promise.all(work);
    const t0 = Date.now();
    const r = await runScan({ paths: [root], cwd: root });
    const ms = Date.now() - t0;
    expect(r.scanned.files).toBe(10_000);
    expect(r.findings.map((f) => f.location)).toEqual(['d42/f7.ts:2']);
    if (process.env.KEYROT_SCAN_BENCH) console.log(`scan of 10k files: ${ms} ms`);
    expect(ms).toBeLessThan(10_000);
  }, 60_000);
});

describe('git history (--git)', () => {
  let repo: string;
  let committed: string;
  let removedCommit: string;
  let addedCommit: string;
  beforeAll(async () => {
    repo = await tempDir();
    committed = testKey();
    await put(repo, { 'README.md': '# app\n', 'src/app.ts': 'export const x = 1;\n' });
    git(repo, 'init', '-q');
    git(repo, 'add', '.');
    git(repo, 'commit', '-q', '-m', 'initial');
    await put(repo, { 'src/app.ts': `export const x = 1;\nexport const y = 2;\nconst key = '${committed}';\n` });
    git(repo, 'commit', '-q', '-am', 'oops');
    addedCommit = git(repo, 'rev-parse', 'HEAD').trim();
    await put(repo, { 'src/app.ts': 'export const x = 1;\nexport const y = 2;\nconst key = process.env.OPENAI_API_KEY;\n' });
    git(repo, 'commit', '-q', '-am', 'remove the key');
    removedCommit = git(repo, 'rev-parse', 'HEAD').trim();
    // A key on another branch only, in a file whose name has a space.
    git(repo, 'checkout', '-q', '-b', 'side', addedCommit);
    await put(repo, { 'docs/set up.md': `Use OPENAI_API_KEY=${committed}\n` });
    git(repo, 'add', '.');
    git(repo, 'commit', '-q', '-m', 'docs');
    git(repo, 'checkout', '-q', 'main');
  });

  it('a key committed then removed is found with --git (commit:file:line), not without', async () => {
    const clean = await runScan({ paths: [repo], cwd: repo });
    expect(clean.findings).toEqual([]);
    expect(clean.scanned.commits).toBe(0);

    const r = await runScan({ paths: [repo], cwd: repo, git: true });
    expect(r.scanned.commits).toBe(4);
    const locs = r.findings.map((f) => f.location);
    expect(locs).toHaveLength(2);
    expect(locs).toContain(`${addedCommit.slice(0, 12)}:src/app.ts:3`);
    expect(locs.find((l) => l.includes('docs/'))).toMatch(/^[0-9a-f]{12}:docs\/set up\.md:1$/);
    const f = r.findings.find((x) => x.file === 'src/app.ts')!;
    expect(f).toMatchObject({ source: 'git', commit: addedCommit, line: 3, kind: 'project', fingerprint: fingerprint(committed), leak: true });
    expect(r.findings.some((x) => x.commit === removedCommit)).toBe(false);
    expectNoKey(r, [committed]);
  });

  it('--git with a sub-path limits the history to it', async () => {
    const r = await runScan({ paths: [join(repo, 'src')], cwd: repo, git: true });
    expect(r.findings.filter((f) => f.source === 'git').map((f) => f.location)).toEqual([`${addedCommit.slice(0, 12)}:src/app.ts:3`]);
    expect(r.scanned.commits).toBe(3);
  });

  it('a path outside any git work tree is a usage error with --git', async () => {
    const plain = await tempDir();
    await expect(runScan({ paths: [plain], cwd: plain, git: true })).rejects.toBeInstanceOf(ScanUsageError);
  });
});

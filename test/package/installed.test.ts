import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envWithNode, nodeRelease, ROOT, run, type RunResult } from '../helpers/npm.ts';

/**
 * The published package as users get it: `npm pack` (its prepack bundles src/ and emulators/ into
 * dist/), then the tarball installed the ways users install keyrot, by npm running on Node 22.12.0,
 * the oldest Node keyrot supports (a real release, from the registry's node-<os>-<cpu> package):
 * globally into a fresh prefix, as a project dependency, and through npx. Then the installed
 * `keyrot` runs on that Node. Nothing is mocked: real npm, real registry (--prefer-offline: npm's
 * cache first), real processes.
 */
const OLDEST_NODE = '22.12.0';
const INSTALL = ['--prefer-offline', '--no-audit', '--no-fund'];

let work: string;
let nodeDir: string;
let tarball: string;
let packed: { files: Array<{ path: string }>; size: number; unpackedSize: number };
let globalInstall: RunResult;
let projectInstall: RunResult;
let npxRun: RunResult;

/** The machine's own Node (PATH without the clone's pin), when it is older than keyrot supports. */
function olderSystemNode(): string | undefined {
  try {
    const env = envWithNode('');
    const version = execFileSync('node', ['-p', 'process.versions.node'], { env, encoding: 'utf8' }).trim();
    const [major = 0, minor = 0] = version.split('.').map(Number);
    return major < 22 || (major === 22 && minor < 12) ? version : undefined;
  } catch {
    return undefined;
  }
}
const oldNode = olderSystemNode();

/** npm's warnings, less its notice that it did not run protobufjs's postinstall (see the README). */
function npmWarnings(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => /^npm warn/i.test(l))
    .filter((l) => !/^npm warn install-scripts(\s*$|\s+\d+ package|\s+protobufjs@| +Run `npm)/.test(l));
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'keyrot-package-'));
  const node24 = envWithNode(dirname(process.execPath));
  const [dir, pack] = await Promise.all([nodeRelease(OLDEST_NODE), run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, env: node24, timeoutMs: 600_000 })]);
  expect(pack.code, pack.stderr).toBe(0);
  nodeDir = dir;
  packed = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('\n[') + 1))[0];
  tarball = join(work, 'keyrot-0.1.0.tgz');

  // npm keeps its own cache (the user's: --prefer-offline reuses it); keyrot runs get HOME=work.
  const env = envWithNode(nodeDir);
  writeFileSync(join(work, 'package.json'), '{ "name": "an-app", "version": "1.0.0", "private": true }\n');
  [globalInstall, projectInstall, npxRun] = await Promise.all([
    run('npm', ['install', '-g', '--prefix', join(work, 'global'), ...INSTALL, tarball], { cwd: work, env }),
    run('npm', ['install', ...INSTALL, tarball], { cwd: work, env }),
    npxFirstUse(env),
  ]);
}, 900_000);

/**
 * `npx <tarball> keyrot --version` from an empty directory. npx installs into npm's cache
 * (_npx/<hash of the spec>): a fresh tarball path is a first use; what this run adds there is
 * removed again.
 */
async function npxFirstUse(env: NodeJS.ProcessEnv): Promise<RunResult> {
  const cache = join((await run('npm', ['config', 'get', 'cache'], { cwd: work, env })).stdout.trim(), '_npx');
  const before = new Set(existsSync(cache) ? readdirSync(cache) : []);
  try {
    return await run('npx', ['--yes', '--prefer-offline', '--package', tarball, '--', 'keyrot', '--version'], { cwd: mkdtempSync(join(work, 'npx-')), env });
  } finally {
    for (const d of existsSync(cache) ? readdirSync(cache) : []) if (!before.has(d)) await rm(join(cache, d), { recursive: true, force: true });
  }
}

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
}, 600_000);

describe('the packed tarball', () => {
  it('ships the bundled code, the bin, README and LICENSE, and no sources, tests or clone-only files', () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['bin/keyrot.js', 'dist/keyrot.js', 'dist/THIRD-PARTY-LICENSES.md', 'README.md', 'LICENSE', 'package.json']));
    const own = paths.filter((p) => !p.startsWith('node_modules/'));
    expect(own.filter((p) => !/^(bin\/keyrot\.js|dist\/(chunks\/)?[\w.-]+\.js|dist\/THIRD-PARTY-LICENSES\.md|README\.md|LICENSE|package\.json)$/.test(p))).toEqual([]);
  });

  it('carries the libraries it bundles with their licences, and depends on none of them', () => {
    const pkgDir = join(work, 'global', 'lib', 'node_modules', 'keyrot');
    const licences = readFileSync(join(pkgDir, 'dist', 'THIRD-PARTY-LICENSES.md'), 'utf8');
    const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const name of ['zod', 'yaml', 'commander']) {
      expect(licences).toMatch(new RegExp(`^## ${name} \\d`, 'm'));
      expect(Object.keys(manifest.dependencies)).not.toContain(name);
    }
  });
});

describe(`installed on Node ${OLDEST_NODE}`, () => {
  it('npm install -g from the tarball: no engine warnings, keyrot --help runs the bundled code', async () => {
    expect(globalInstall.code, globalInstall.stderr).toBe(0);
    expect(npmWarnings(globalInstall.stderr)).toEqual([]);
    const pkgDir = join(work, 'global', 'lib', 'node_modules', 'keyrot');
    expect(existsSync(join(pkgDir, 'dist', 'keyrot.js'))).toBe(true);
    expect(existsSync(join(pkgDir, 'src'))).toBe(false);
    // zod, yaml and commander are inside the bundle, not installed next to it.
    expect(existsSync(join(pkgDir, 'node_modules', 'zod'))).toBe(false);
    const r = await run(join(work, 'global', 'bin', 'keyrot'), ['--help'], { cwd: work, env: envWithNode(nodeDir, { HOME: work }) });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('Usage: keyrot');
    const v = await run(join(nodeDir, 'node'), ['--version'], { cwd: work, env: envWithNode(nodeDir) });
    expect(v.stdout.trim()).toBe(`v${OLDEST_NODE}`);
  });

  it('keyrot demo from the global install: every emulated provider rotated, no warning or stack trace', async () => {
    const r = await run(join(work, 'global', 'bin', 'keyrot'), ['demo'], {
      cwd: work,
      env: envWithNode(nodeDir, { HOME: work, TMPDIR: work, DOCKER_HOST: `unix://${work}/no-docker.sock` }),
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Demo complete');
    expect(r.stdout).toMatch(/kubernetes/i);
    // stderr carries the rotation's progress lines; nothing from Node or a library.
    expect(r.stderr).not.toMatch(/\(node:\d+\)|Warning|^\s+at /m);
  }, 300_000);

  it('as a project dependency: npm install <tarball>, then npx keyrot --help', async () => {
    expect(projectInstall.code, projectInstall.stderr).toBe(0);
    expect(npmWarnings(projectInstall.stderr)).toEqual([]);
    const r = await run('npx', ['keyrot', '--help'], { cwd: work, env: envWithNode(nodeDir) });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('Usage: keyrot');
  });

  it('npx <tarball>: installed on first use, no warnings, keyrot --version', () => {
    expect(npxRun.code, npxRun.stderr).toBe(0);
    expect(npmWarnings(npxRun.stderr)).toEqual([]);
    expect(npxRun.stdout.trim()).toBe('0.1.0');
  });
});

// Debian's Node 20 on this project's machines; elsewhere there may be no older Node to try.
describe.skipIf(!oldNode)(`installed, run on an older Node (${oldNode})`, () => {
  it('says which Node it needs and how to get it, exit 2', async () => {
    const bin = join(work, 'global', 'lib', 'node_modules', 'keyrot', 'bin', 'keyrot.js');
    const r = await run('node', [bin, '--help'], { cwd: work, env: envWithNode('') });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`keyrot needs Node >= 22.12 (found ${oldNode})`);
    expect(r.stderr).toContain('Install Node 22.12 or later');
    expect(r.stderr).not.toContain('devDependencies');
  });
});

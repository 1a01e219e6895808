// Builds a minimal base image for the Dockerfile (NODE_IMAGE) where no image can be pulled: the
// Node binary pinned for development (the node-<os>-<cpu> package in node_modules, integrity-checked
// by package-lock.json), this machine's npm, /bin/sh and /usr/bin/env, the shared libraries `ldd`
// lists for them and for the build step's native code (rolldown's binding), a CA bundle and a root user: what the Dockerfile's steps use. It is imported with
// `docker import` (nothing is pulled) and its name printed on stdout.
//   node scripts/node-base-image.mjs [NAME]     (DOCKER_HOST picks the Engine)
// Linux only. Plain JS: it runs on whatever Node npm uses.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const pinned = require(`node-${process.platform}-${process.arch}/package.json`);
const nodeBin = join(dirname(require.resolve(`node-${process.platform}-${process.arch}/package.json`)), pinned.bin.node);
const name = process.argv[2] ?? `keyrot-base/node:${pinned.version}`;
const npmDir = join(execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim(), 'npm');

/** rolldown's native binding for this machine, as package-lock.json pins it. */
function rolldownBinding() {
  const fromRolldown = createRequire(require.resolve('rolldown/package.json'));
  const binding = `@rolldown/binding-${process.platform}-${process.arch}-gnu`;
  const dir = dirname(fromRolldown.resolve(`${binding}/package.json`));
  return join(dir, `rolldown-binding.${process.platform}-${process.arch}-gnu.node`);
}

const rootfs = mkdtempSync(join(tmpdir(), 'keyrot-base-'));
// ldd lists the same libraries (the loader, libc) for every program: each is copied once. (Node
// 24's cpSync refuses to copy a dereferenced symlink over the file an earlier copy left.)
const copied = new Set();
const put = (from, to = from) => {
  if (copied.has(to)) return;
  copied.add(to);
  mkdirSync(dirname(join(rootfs, to)), { recursive: true });
  cpSync(from, join(rootfs, to), { recursive: true, dereference: true });
};
try {
  const programs = { [nodeBin]: '/usr/local/bin/node', '/bin/sh': '/bin/sh', '/usr/bin/env': '/usr/bin/env' };
  for (const [from, to] of Object.entries(programs)) {
    put(from, to);
    for (const m of execFileSync('ldd', [from], { encoding: 'utf8' }).matchAll(/(\/\S+\.so[^\s)]*)/g)) put(m[1]);
  }
  // The build step's native code (rolldown's binding, installed there by `npm ci`): only the
  // libraries it links (librt, libgcc_s, ...), which a real Node image has and this one would not.
  for (const m of execFileSync('ldd', [rolldownBinding()], { encoding: 'utf8' }).matchAll(/(\/\S+\.so[^\s)]*)/g)) put(m[1]);
  put(npmDir, '/usr/local/lib/node_modules/npm');
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(rootfs, 'usr/local/bin/npx'));
  put('/etc/ssl/certs/ca-certificates.crt');
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\n');
  for (const d of ['root', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  const tar = execFileSync('tar', ['-C', rootfs, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  // NODE_EXTRA_CA_CERTS: Node (and so npm) trusts this machine's CA bundle, as npm here does
  // (its `cafile`), so that the Dockerfile's `npm ci` reaches the registry through this network.
  const env = ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'];
  const changes = [...env.map((e) => ['--change', `ENV ${e}`]).flat(), '--change', 'CMD ["node"]'];
  execFileSync('docker', ['import', ...changes, '-', name], { input: tar, stdio: ['pipe', 'ignore', 'inherit'] });
  process.stdout.write(name + '\n');
} finally {
  rmSync(rootfs, { recursive: true, force: true });
}

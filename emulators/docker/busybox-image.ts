import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, symlinkSync, copyFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DockerEngine } from '../../src/targets/docker-engine.ts';

/*
 * A tiny image that really runs, built on this machine: Debian's `busybox-static` (one static
 * binary, no libraries) as the root filesystem's /bin, with a link per applet, imported through
 * the Engine API (`POST /images/create?fromSrc=-`, what `docker import` does). Nothing is pulled:
 * the tests and the demo run real containers (sh, sleep, sha256sum...) with no registry.
 */

/** Where a static busybox usually is (Debian's busybox-static installs /bin/busybox). */
const CANDIDATES = ['/bin/busybox', '/usr/bin/busybox', '/sbin/busybox', '/usr/sbin/busybox'];

/** A static busybox on this machine, or why there is none. */
export function staticBusybox(): { path: string } | { missing: string } {
  for (const p of CANDIDATES) {
    if (existsSync(p) && isStaticElf(p)) return { path: p };
  }
  return { missing: 'no static busybox on this machine (Debian: apt-get install busybox-static)' };
}

/** An ELF executable without a program interpreter (PT_INTERP) needs no libraries: it runs in an empty root. */
function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    if (head.toString('latin1', 0, 4) !== '\x7fELF' || head[4] !== 2) return false; // ELF64 only
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } finally {
    closeSync(fd);
  }
}

/** Imports `image` (repo:tag) from a static busybox unless the Engine has it already. */
export async function ensureBusyboxImage(engine: DockerEngine, image: string): Promise<void> {
  const have = await engine.call('GET', `/images/${encodeURIComponent(image)}/json`).then(
    () => true,
    () => false,
  );
  if (have) return;
  const bb = staticBusybox();
  if ('missing' in bb) throw new Error(bb.missing);
  const dir = mkdtempSync(join(tmpdir(), 'keyrot-busybox-'));
  try {
    const root = join(dir, 'rootfs');
    for (const d of ['bin', 'tmp', 'run/secrets', 'etc']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(bb.path, join(root, 'bin', 'busybox'));
    const applets = execFileSync(bb.path, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
    for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
    const tar = execFileSync('tar', ['-C', root, '-cf', '-', '.'], { maxBuffer: 64 * 1024 * 1024 });
    const [repo, tag] = image.split(':');
    const res = await engine.raw({
      method: 'POST',
      path: `/images/create?fromSrc=-&repo=${encodeURIComponent(repo!)}&tag=${encodeURIComponent(tag ?? 'latest')}`,
      body: tar,
      contentType: 'application/x-tar',
      timeoutMs: 120_000,
    });
    if (res.status !== 200) throw new Error(`importing ${image} failed: ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

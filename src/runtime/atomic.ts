import { lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { failpoint } from './failpoints.ts';

/** Mode and owner of the file being replaced (the new file gets them exactly). */
export interface FileIdentity {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * keyrot's temp file for NAME: `NAME.keyrot-<pid>-<12 hex>.tmp`, in NAME's directory. It starts
 * with NAME so the rules that ignore NAME's family ignore it too (`.env*`, `.env.*` for `.env`),
 * and `*.keyrot-*.tmp` ignores every one. The pid tells a later run whether its writer is gone.
 */
export function tempNameFor(name: string): string {
  return `${name}.keyrot-${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
}

/** Any keyrot temp file, whatever it replaces (what `keyrot scan` looks for in ignored files). */
export const KEYROT_TEMP_RE = /\.keyrot-\d+-[0-9a-f]{12}\.tmp$/;

/** keyrot's temp file for NAME, or null: its writer's pid. */
export function tempWriterPid(file: string, name: string): number | null {
  if (!file.startsWith(`${name}.keyrot-`)) return null;
  const m = /^\.keyrot-(\d+)-[0-9a-f]{12}\.tmp$/.exec(file.slice(name.length));
  return m ? Number(m[1]) : null;
}

/** Earlier keyrot builds named their temp files `.NAME.keyrot-<12 hex>.tmp`, which no usual ignore rule matches. */
export function isLegacyTempOf(file: string, name: string): boolean {
  return file.startsWith(`.${name}.keyrot-`) && /^\.keyrot-[0-9a-f]{12}\.tmp$/.test(file.slice(name.length + 1));
}

/**
 * Replaces the regular file `path` (never a symlink: resolve links first) atomically: a temp file
 * in the same directory (same filesystem), given `keep`'s owner and mode before any byte is
 * written, fsynced, renamed over `path`, then the directory fsynced so the rename survives a
 * crash. A new file (`keep` undefined) gets mode 0600. If the owner cannot be kept, nothing is
 * replaced.
 */
export async function writeFileAtomic(path: string, data: string, keep?: FileIdentity): Promise<void> {
  const current = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (current && !current.isFile()) throw new Error(`${path} is not a regular file: resolve links before writing`);
  const mode = keep ? keep.mode & 0o7777 : 0o600;
  const dir = dirname(path);
  const tmp = join(dir, tempNameFor(basename(path)));
  // Created with no access for anyone: the owner and mode are settled before the content goes in.
  const fh = await open(tmp, 'wx', 0o000);
  try {
    if (keep) await keepOwner(fh, keep);
    // After chown (which may clear set-id bits); chmod is exact where open() applied the umask.
    await fh.chmod(mode);
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  failpoint('before-rename');
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
}

/** Gives `tmp` the owner and group of the file it replaces, or throws: a replaced file never changes hands. */
async function keepOwner(fh: FileHandle, keep: FileIdentity): Promise<void> {
  const st = await fh.stat();
  if (st.uid === keep.uid && st.gid === keep.gid) return;
  try {
    // Root may set both; anyone may set the group to one of their own groups.
    await fh.chown(process.getuid?.() === 0 ? keep.uid : -1, keep.gid);
  } catch {
    // Checked below.
  }
  const now = await fh.stat();
  if (now.uid !== keep.uid || now.gid !== keep.gid) {
    throw new Error(`cannot give the new file the owner ${keep.uid}:${keep.gid} of the file it replaces (it would be ${now.uid}:${now.gid})`);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await dh.close();
  }
}

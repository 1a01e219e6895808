import { open, rename, stat, unlink, chown } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Replaces a file atomically: a temp file in the same directory (same filesystem), written and
 * fsynced, renamed over the target, then the directory fsynced so the rename survives a crash.
 * The file keeps its mode (and owner when we may set it); a new file gets `newMode`.
 */
export async function writeFileAtomic(path: string, data: string, newMode = 0o600): Promise<void> {
  let mode = newMode;
  let owner: { uid: number; gid: number } | undefined;
  try {
    const st = await stat(path);
    mode = st.mode & 0o7777;
    owner = { uid: st.uid, gid: st.gid };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.keyrot-${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data, 'utf8');
    // open() applies the umask: set the exact mode explicitly.
    await fh.chmod(mode);
    if (owner && process.getuid?.() === 0) await chown(tmp, owner.uid, owner.gid).catch(() => {});
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
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

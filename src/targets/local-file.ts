import type { Stats } from 'node:fs';
import { access, constants, lstat, readlink, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * What a dotenv/file target's path designates on disk. A symlink (Capistrano's `shared/.env`, a
 * mounted config, a chain of links) is followed to the file at its end: that file is replaced,
 * in its own directory, and the link stays a link.
 */
export interface LocalFile {
  /** The path as configured (absolute), possibly a link or under a linked directory. */
  path: string;
  /** The file at the end of every link: where the write goes. */
  real: string;
  /** The real file's stat; null when nothing exists yet (a new file is created). */
  stat: Stats | null;
  /** `path` itself is a symlink. */
  link: boolean;
}

/** A path keyrot will not write to, with what to do about it. */
export class LocalFileRefusal extends Error {
  override name = 'LocalFileRefusal';
}

/** Follows `path` to the file it designates, or refuses: a dangling link, a loop, not a regular file. */
export async function resolveLocalFile(path: string): Promise<LocalFile> {
  const own = await lstat(path).catch(ifMissing(null));
  if (own === null) {
    const dir = await realpath(dirname(path)).catch(ifMissing(null));
    if (dir === null) {
      throw new LocalFileRefusal(`${path} does not exist and neither does its directory ${dirname(path)}: create the directory, or fix the path in targets.yaml`);
    }
    return { path, real: join(dir, basename(path)), stat: null, link: false };
  }
  let real: string;
  try {
    real = await realpath(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new LocalFileRefusal(`${path} is a symlink loop (${await linkChain(path)}): fix the link so it ends at the file holding the key`);
    if (code === 'ENOENT') {
      throw new LocalFileRefusal(
        `${path} is a symlink to ${await danglingEnd(path)}, which does not exist: create it (or fix the link) and run again; keyrot does not create a file at the end of a dangling link`,
      );
    }
    throw err;
  }
  const st = await stat(real);
  if (!st.isFile()) {
    throw new LocalFileRefusal(`${real} is not a regular file: it is a ${fileKind(st)}. Point the target at the file that holds the key`);
  }
  return { path, real, stat: st, link: own.isSymbolicLink() };
}

/**
 * Why keyrot cannot replace the file as it should (atomically, keeping mode and owner, every
 * name of it updated), or undefined. Asked before anything is written, and again at write time.
 */
export async function whyNotReplaceable(f: LocalFile): Promise<string | undefined> {
  if (f.stat) {
    const why = fileProblem(f.real, f.stat);
    if (why) return why;
    // Reading the current value (for restore) needs read access.
    await access(f.real, constants.R_OK);
  }
  return directoryProblem(f.real);
}

function fileProblem(real: string, st: Stats): string | undefined {
  if ((st.mode & 0o222) === 0) {
    return `${real} is read-only (mode ${octal(st.mode)}): keyrot does not replace a file protected against writing. If it should get the new key, run \`chmod u+w ${real}\` and run again`;
  }
  // An atomic rename gives the new content to this name only.
  if (st.nlink > 1) {
    return `${real} has ${st.nlink} hard links: replacing it atomically gives the new key to this name only, and an app reading another name would keep the old key. Make the other names symlinks (\`ln -sf ${real} OTHER-NAME\`) and run again`;
  }
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0) return undefined;
  if (st.uid !== uid) {
    return `${real} is owned by uid ${st.uid}, not by the user running keyrot (uid ${uid}): the replaced file would change owner and its app might no longer read it. Run keyrot as its owner or as root`;
  }
  if (st.gid !== process.getgid?.() && !process.getgroups?.().includes(st.gid)) {
    return `${real} belongs to group ${st.gid}, which the user running keyrot is not in: the replaced file would change group. Run keyrot as a member of that group or as root`;
  }
  return undefined;
}

async function directoryProblem(real: string): Promise<string | undefined> {
  const dir = dirname(real);
  const fix =
    `keyrot replaces ${basename(real)} atomically (a temp file in ${dir}, renamed over it) and does not rewrite the file in place, ` +
    `which a crash could leave half-written`;
  try {
    await access(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS') return `the directory ${dir} is on a read-only filesystem: ${fix}. Write the key where that filesystem's content comes from`;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    return `the directory ${dir} is not writable by the user running keyrot: ${fix}. Make it writable (\`chmod u+w ${dir}\`) or run keyrot as a user who can write it`;
  }
  // Root passes access(): a directory without any write bit was made read-only on purpose.
  const { mode } = await stat(dir);
  if ((mode & 0o222) === 0) return `the directory ${dir} is not writable (mode ${octal(mode)}): ${fix}. Run \`chmod u+w ${dir}\` if it should change`;
  return undefined;
}

/** Others than the owner may read or write the key: what to do about it. */
export function exposureWarning(f: LocalFile): string | undefined {
  const m = f.stat ? f.stat.mode & 0o777 : 0;
  if ((m & 0o077) === 0) return undefined;
  const who = m & 0o007 ? 'every user of this machine' : 'its group';
  return `${f.real} is open to ${who} (mode ${octal(m)}): they can read the key. Run \`chmod 600 ${f.real}\`; keyrot keeps a file's mode as it is`;
}

/** `0640`, `04755`. */
export function octal(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSocket()) return 'socket';
  return 'special file';
}

/** Linux gives up after 40 links (MAXSYMLINKS, path_resolution(7)); so do the messages. */
const MAX_HOPS = 40;

/** The first missing name at the end of a link chain. */
async function danglingEnd(path: string): Promise<string> {
  let cur = path;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const st = await lstat(cur).catch(ifMissing(null));
    if (st === null || !st.isSymbolicLink()) return cur;
    cur = resolve(dirname(cur), await readlink(cur));
  }
  return cur;
}

/** `a.env -> b.env -> a.env`, for a loop's message. */
async function linkChain(path: string): Promise<string> {
  const seen: string[] = [path];
  let cur = path;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const st = await lstat(cur).catch(ifMissing(null));
    if (st === null || !st.isSymbolicLink()) break;
    cur = resolve(dirname(cur), await readlink(cur));
    seen.push(cur);
    if (seen.indexOf(cur) < seen.length - 1) break;
  }
  return seen.join(' -> ');
}

function ifMissing<T>(value: T): (err: NodeJS.ErrnoException) => T {
  return (err) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return value;
    throw err;
  };
}

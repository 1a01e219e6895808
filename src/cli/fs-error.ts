/**
 * A file keyrot itself opens for a command (`init`'s targets.yaml, `report -o`, the state
 * directory) can be refused by the system: a read-only file, a directory of another user, a path
 * that does not exist, a full disk. That is the operator's to fix, not a bug in keyrot: it is said
 * with the path (never a temp file's name) and what to do.
 */
type SystemError = { code?: unknown; syscall?: unknown; path?: unknown };

const ADVICE: Record<string, string> = {
  EACCES: 'permission denied: check the permissions of the file and its directory, or run keyrot as a user who can write there',
  EPERM: 'operation not permitted: check the permissions of the file and its directory, or run keyrot as a user who can write there',
  EROFS: 'the file system is read-only: choose a writable path (--state-dir, -o, -c)',
  ENOENT: 'no such file or directory: create the directory first, or fix the path',
  ENOTDIR: 'a part of the path is a file, not a directory: fix the path',
  EEXIST: 'something is already there (a file where a directory is needed?): fix the path',
  EISDIR: 'it is a directory: name a file',
  ENOSPC: 'no space left on the device: free some space, then run the command again',
  EDQUOT: 'disk quota exceeded: free some space, then run the command again',
};

/** The user's message for a file-system error, or undefined when `err` is not one. */
export function describeFsError(err: unknown): string | undefined {
  const e = err as SystemError | null;
  if (typeof e?.code !== 'string' || typeof e.syscall !== 'string' || typeof e.path !== 'string') return undefined;
  const advice = ADVICE[e.code];
  if (!advice) return undefined;
  // atomic.ts writes through `NAME.keyrot-<pid>-<hex>.tmp`: the operator knows NAME.
  const path = e.path.replace(/\.keyrot-\d+-[0-9a-f]+\.tmp$/, '');
  return `cannot ${e.syscall} ${path}: ${advice}`;
}

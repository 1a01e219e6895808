import { lstat, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isLegacyTempOf, tempWriterPid } from '../runtime/atomic.ts';
import type { LocalFile } from './local-file.ts';

/**
 * Temp files a keyrot write left when it died between creating the temp file and renaming it
 * (SIGKILL, power loss): each is a full copy of the file, key included. Only keyrot's own exact
 * names for this target count, in the real file's directory (and, for names from earlier
 * builds, the configured path's directory).
 */
export interface Stray {
  path: string;
  /** Why it must stay (owned by someone else, its writer may be running), or undefined: removable. */
  keep?: string;
}

/** A write lasts well under a second; an earlier build's temp file this old has no live writer. */
const LEGACY_QUIET_MS = 60_000;

export async function findStrays(f: LocalFile): Promise<Stray[]> {
  const places: Array<[string, string]> = [
    [dirname(f.real), basename(f.real)],
    [dirname(f.path), basename(f.path)],
  ];
  const out: Stray[] = [];
  const seen = new Set<string>();
  for (const [dir, name] of places) {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch {
      continue; // a missing or unreadable directory: nothing keyrot could have left there
    }
    for (const e of entries) {
      const path = join(dir, e);
      const pid = tempWriterPid(e, name);
      if ((pid === null && !isLegacyTempOf(e, name)) || seen.has(path)) continue;
      seen.add(path);
      const keep = await whyKeep(path, pid);
      if (keep !== null) out.push({ path, keep });
    }
  }
  return out;
}

/** Removes the strays no live write can own; returns what it removed. Only under the environment's lock. */
export async function removeStrays(f: LocalFile): Promise<string[]> {
  const removed: string[] = [];
  for (const s of await findStrays(f)) {
    if (s.keep) continue;
    await unlink(s.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    removed.push(s.path);
  }
  return removed;
}

/** One plan line for a target's strays, or undefined. */
export function strayWarning(strays: Stray[]): string | undefined {
  if (!strays.length) return undefined;
  const list = strays.map((s) => (s.keep ? `${s.path} (kept: ${s.keep})` : s.path)).join(', ');
  return (
    `${strays.length === 1 ? 'a temp file' : `${strays.length} temp files`} left by an interrupted keyrot write, each a full copy of the file (key included): ${list}. ` +
    '`keyrot rotate` or `keyrot resume` removes them at preflight; or delete them by hand'
  );
}

/** Undefined: a stray to remove; a string: a stray to keep, and why; null: not a stray (not a regular file). */
async function whyKeep(path: string, pid: number | null): Promise<string | undefined | null> {
  const st = await lstat(path).catch(() => null);
  if (!st?.isFile()) return null;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return `owned by uid ${st.uid}, not the user running keyrot`;
  if (pid === null) return Date.now() - st.mtimeMs < LEGACY_QUIET_MS ? 'written less than a minute ago' : undefined;
  if (pid === process.pid || processExists(pid)) return `its writer, pid ${pid}, may still be running`;
  return undefined;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

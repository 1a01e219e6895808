import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { TargetError } from '../core/errors.ts';
import { writeFileAtomic } from '../runtime/atomic.ts';
import { exposureWarning, LocalFileRefusal, resolveLocalFile, whyNotReplaceable } from './local-file.ts';
import { findStrays, removeStrays, strayWarning } from './strays.ts';
import type { PreflightResult, ReadResult } from './types.ts';

/** File-system errors in product words. */
export function fsError(err: unknown, target: string, op: string, path: string): TargetError {
  if (err instanceof TargetError) return err;
  if (err instanceof LocalFileRefusal) return new TargetError(err.message, { target, op, kind: 'invalid', retryable: false });
  const code = (err as NodeJS.ErrnoException).code;
  if (!code) return new TargetError(`${path}: ${(err as Error).message}`, { target, op, kind: 'invalid', retryable: false, cause: err });
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? `permission denied on ${path}: the user running keyrot needs read and write access`
      : code === 'ENOENT'
        ? `${path} does not exist (nor does its directory)`
        : code === 'EROFS'
          ? `${path} is on a read-only filesystem`
          : `${code} on ${path}`;
  return new TargetError(why, { target, op, kind: code === 'EACCES' || code === 'EPERM' ? 'permission' : 'invalid', retryable: false, cause: err });
}

/**
 * Preflight for local files: where the path leads (through links), whether keyrot can replace
 * that file as it should, the current value; warnings for a key others can read and for temp
 * files an interrupted write left.
 */
export async function localPreflight(path: string, read: () => Promise<ReadResult>, what: string): Promise<PreflightResult> {
  try {
    const f = await resolveLocalFile(path);
    const why = await whyNotReplaceable(f);
    if (why) return { status: 'blocked', reason: why, current: { kind: 'absent' } };
    const notes = f.link ? [`${path} is a symlink to ${f.real}: the new key is written there and the link stays a link`] : [];
    const warnings = [exposureWarning(f), strayWarning(await findStrays(f))].filter((w): w is string => w !== undefined);
    const extra = warnings.length ? { warnings } : {};
    if (!f.stat) return { status: 'ready', current: { kind: 'absent' }, willCreate: true, notes: [`${what} will be created (mode 0600)`, ...notes], ...extra };
    const current = await read();
    return { status: 'ready', current, willCreate: current.kind === 'absent', ...(notes.length ? { notes } : {}), ...extra };
  } catch (err) {
    return { status: 'blocked', reason: fsError(err, '', 'preflight', path).message, current: { kind: 'absent' } };
  }
}

/** Replaces the file `path` leads to (through links) with `data`, atomically, keeping its mode and owner. */
export async function writeLocalFile(path: string, data: string, target: string, op = 'write'): Promise<void> {
  try {
    const f = await resolveLocalFile(path);
    const why = await whyNotReplaceable(f);
    if (why) throw new TargetError(why, { target, op, kind: 'invalid', retryable: false });
    await writeFileAtomic(f.real, data, f.stat ? { mode: f.stat.mode, uid: f.stat.uid, gid: f.stat.gid } : undefined);
  } catch (err) {
    throw fsError(err, target, op, path);
  }
}

/** Removes the temp files interrupted keyrot writes left for `path` (under the environment's lock). */
export async function removeLocalStrays(path: string): Promise<string[]> {
  try {
    return await removeStrays(await resolveLocalFile(path));
  } catch (err) {
    // A path keyrot refuses has no strays of its own; preflight says why it is refused.
    if (err instanceof LocalFileRefusal) return [];
    throw err;
  }
}

/** A local file's text (through links), or null when it does not exist. */
export async function readTextOrNull(path: string, target: string): Promise<string | null> {
  let fh;
  try {
    // Non-blocking: opening a FIFO to read would otherwise wait for a writer forever.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    if (!(await fh.stat()).isFile()) throw new LocalFileRefusal(`${path} is not a regular file: point the target at the file that holds the key`);
    return await fh.readFile('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(err, target, 'read', path);
  } finally {
    await fh?.close();
  }
}

import { access, constants, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TargetError } from '../core/errors.ts';
import type { PreflightResult, ReadResult } from './types.ts';

/** File-system errors in product words. */
export function fsError(err: unknown, target: string, op: string, path: string): TargetError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
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

/** Preflight for local files: readable, writable (or creatable), and the current value. */
export async function localPreflight(path: string, read: () => Promise<ReadResult>, what: string): Promise<PreflightResult> {
  try {
    const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (st === null) {
      try {
        await access(dirname(path), constants.W_OK);
      } catch {
        return {
          status: 'blocked',
          reason: `${path} does not exist and its directory ${dirname(path)} is missing or not writable`,
          current: { kind: 'absent' },
        };
      }
      return { status: 'ready', current: { kind: 'absent' }, willCreate: true, notes: [`${what} will be created (mode 0600)`] };
    }
    if (!st.isFile()) return { status: 'blocked', reason: `${path} is not a regular file`, current: { kind: 'absent' } };
    await access(path, constants.R_OK | constants.W_OK);
    // The rename of the atomic write needs a writable directory.
    await access(dirname(path), constants.W_OK);
    const current = await read();
    return { status: 'ready', current, willCreate: current.kind === 'absent' };
  } catch (err) {
    const e = err instanceof TargetError ? err : fsError(err, '', 'preflight', path);
    return { status: 'blocked', reason: e.message, current: { kind: 'absent' } };
  }
}

/** A local file's text, or null when it does not exist. */
export async function readTextOrNull(path: string, target: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(err, target, 'read', path);
  }
}

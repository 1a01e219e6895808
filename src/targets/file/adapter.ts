import { unlink } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { Secret } from '../../core/secret.ts';
import { fsError, localPreflight, readTextOrNull, removeLocalStrays, writeLocalFile } from '../local.ts';
import { verifyByReadBack } from '../common.ts';
import type { ReadResult, Target, TargetContext } from '../types.ts';
import type { FileConfig, FileReceipt } from './index.ts';

export function createFileTarget(config: FileConfig, ctx: TargetContext & { name: string }): Target<FileReceipt> {
  const path = isAbsolute(config.path) ? config.path : resolve(ctx.baseDir, config.path);

  const readRaw = () => readTextOrNull(path, ctx.name);

  async function read(): Promise<ReadResult> {
    const raw = await readRaw();
    if (raw === null) return { kind: 'absent' };
    const value = raw.replace(/\r?\n$/, '');
    return value ? { kind: 'value', value: new Secret(value) } : { kind: 'absent' };
  }

  async function put(value: Secret): Promise<void> {
    const raw = await readRaw();
    // Keep the file's own trailing-newline convention; a new file gets none (Docker secret style).
    const eol = raw?.match(/\r?\n$/)?.[0] ?? '';
    if (raw !== null && raw.replace(/\r?\n$/, '') === value.reveal()) return; // idempotent
    await writeLocalFile(path, value.reveal() + eol, ctx.name);
  }

  return {
    id: 'file',
    name: ctx.name,
    location: config.path,
    lockKey: `file:${path}`,
    removeStrays: () => removeLocalStrays(path),
    preflight: () => localPreflight(path, read, 'the file'),
    read,
    async write(value) {
      const before = await readRaw();
      await put(value);
      return { createdFile: before === null };
    },
    verify: (value) => verifyByReadBack(read, value, ctx.name, config.path),
    async restore(previous, _op, receipt) {
      if (previous) return put(previous);
      // The file did not exist (or was empty) before this rotation: remove what we created.
      if (receipt?.createdFile) {
        await unlink(path).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw fsError(err, ctx.name, 'restore', path);
        });
      } else {
        await writeLocalFile(path, '', ctx.name, 'restore');
      }
    },
  };
}

import { mkdir, open, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Serialises a short read-modify-write across processes with an exclusive lock file (`wx`), held
 * for milliseconds. A holder that crashed leaves the file behind: it is broken after ~2 s.
 */
export async function withFileMutex<T>(path: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  for (let i = 0; ; i++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (i > 200) await unlink(path).catch(() => {});
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => {});
  }
}

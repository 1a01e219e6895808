import { mkdir, open, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, isStale, readLock } from './lock.ts';
import type { StateStore } from './store.ts';

/** Appends one line and fsyncs it: an event is recorded once this returns. */
export async function appendLine(path: string, line: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const fh = await open(path, 'a+', 0o600);
  try {
    // A crash mid-append can leave a torn last line without its newline: start on a fresh line, or
    // this event would be glued to the torn one and lost with it when the journal is read.
    const { size } = await fh.stat();
    let sep = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) sep = '\n';
    }
    await fh.write(sep + line + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Serialises audit appends across processes with an exclusive lock file (held for milliseconds). */
async function withFileMutex<T>(path: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  for (let i = 0; ; i++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A writer holds it for a few ms; one that crashed mid-append left it: break it after ~2 s.
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

/** The state directory: journal/<env>.ndjson, audit.ndjson, locks/<env>.lock. */
export function localState(dir: string): StateStore {
  const journal = (env: string) => join(dir, 'journal', `${env}.ndjson`);
  const audit = join(dir, 'audit.ndjson');
  return {
    kind: 'local',
    where: dir,
    appendJournalLine: (env, line) => appendLine(journal(env), line),
    readJournalText: (env) => readText(journal(env)),
    async journalEnvs() {
      try {
        return (await readdir(join(dir, 'journal'))).filter((f) => f.endsWith('.ndjson')).map((f) => f.slice(0, -'.ndjson'.length));
      } catch {
        return [];
      }
    },
    appendAuditLine: (make) =>
      withFileMutex(join(dir, 'audit.lock'), async () => {
        const lines = (await readText(audit)).split('\n').filter((l) => l.trim());
        const line = make(lines[lines.length - 1], lines.length);
        await appendLine(audit, line);
        return line;
      }),
    readAuditText: () => readText(audit),
    acquireLock: (env, meta) => acquireLock(dir, env, meta),
    readLock: (env) => readLock(dir, env),
    isStale,
  };
}

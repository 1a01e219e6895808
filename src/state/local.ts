import { mkdir, open, readFile, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { withFileMutex } from '../runtime/file-mutex.ts';
import { acquireLock, isStale, readLock } from './lock.ts';
import type { StateStore } from './store.ts';
import { localTrust, type StateTrust } from './trust.ts';

/** Appends one line (or several joined by `\n`) and fsyncs it: recorded once this returns. */
export async function appendLine(path: string, line: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const fh = await open(path, 'a+', 0o600);
  try {
    await appendTo(fh, line, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}

/**
 * A crash mid-append can leave a torn last line without its newline: start on a fresh line, or
 * this append would be glued to the torn one and lost with it when the file is read.
 */
async function appendTo(fh: FileHandle, text: string, size: number): Promise<void> {
  let sep = '';
  if (size > 0) {
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    if (last[0] !== 0x0a) sep = '\n';
  }
  await fh.write(sep + text + '\n');
  await fh.sync();
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

const nonEmptyLines = (text: string) => text.split('\n').filter((l) => l.trim());

/** Appends of this process, per file, one after the other (they would only wait on each other's lock file). */
const queues = new Map<string, Promise<unknown>>();

/**
 * The lines of each file as this process last wrote them, with the size and mtime it left: a
 * file still that size with that mtime is read from here instead of from disk (a journal of a
 * thousand targets is read back once per commit otherwise). Any other writer changes both.
 */
const known = new Map<string, { size: number; mtimeMs: number; ino: number; lines: string[] }>();

/**
 * `make(lines)` appended to a file under its mutex: every line chains to the one before it, so
 * appends (several targets' journal events at once, several processes' audit entries) go one at a time.
 */
function appendComputed(path: string, make: (lines: string[]) => string): Promise<string> {
  const run = () =>
    withFileMutex(`${path}.lock`, async () => {
      await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
      const fh = await open(path, 'a+', 0o600);
      try {
        const st = await fh.stat();
        const k = known.get(path);
        const lines = k && k.size === st.size && k.mtimeMs === st.mtimeMs && k.ino === st.ino ? k.lines : nonEmptyLines(await fh.readFile('utf8'));
        const text = make(lines);
        await appendTo(fh, text, st.size);
        const after = await fh.stat();
        known.set(path, { size: after.size, mtimeMs: after.mtimeMs, ino: after.ino, lines: [...lines, ...nonEmptyLines(text)] });
        return text;
      } catch (err) {
        known.delete(path);
        throw err;
      } finally {
        await fh.close();
      }
    });
  const p = (queues.get(path) ?? Promise.resolve()).then(run, run);
  const settled = p.catch(() => {});
  queues.set(path, settled);
  void settled.then(() => {
    if (queues.get(path) === settled) queues.delete(path);
  });
  return p;
}

/**
 * The state directory: journal/<env>.ndjson, audit.ndjson, locks/<env>.lock. Its trust (state key
 * and anchors) defaults to the user's config directory; openState() passes the inventory's.
 */
export function localState(dir: string, trust?: StateTrust): StateStore {
  const journal = (env: string) => join(dir, 'journal', `${env}.ndjson`);
  const audit = join(dir, 'audit.ndjson');
  return {
    kind: 'local',
    where: dir,
    appendJournalLine: (env, make) => appendComputed(journal(env), make),
    readJournalText: (env) => readText(journal(env)),
    async journalEnvs() {
      try {
        return (await readdir(join(dir, 'journal'))).filter((f) => f.endsWith('.ndjson')).map((f) => f.slice(0, -'.ndjson'.length));
      } catch {
        return [];
      }
    },
    appendAuditLine: (make) => appendComputed(audit, make),
    readAuditText: () => readText(audit),
    acquireLock: (env, meta) => acquireLock(dir, env, meta),
    readLock: (env) => readLock(dir, env),
    isStale,
    trust: trust ?? localTrust({ stateDir: dir, baseDir: dir, env: process.env }),
  };
}

import { mkdir, open, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { withFileMutex } from '../runtime/file-mutex.ts';
import { acquireLock, isStale, readLock } from './lock.ts';
import type { StateStore } from './store.ts';
import { localTrust, type StateTrust } from './trust.ts';

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

const nonEmptyLines = (text: string) => text.split('\n').filter((l) => l.trim());

/** Appends of this process, per file, one after the other (they would only wait on each other's lock file). */
const queues = new Map<string, Promise<unknown>>();

/**
 * `make(lines)` appended to a file under its mutex: every line chains to the one before it, so
 * appends (several targets' journal events at once, several processes' audit entries) go one at a time.
 */
function appendComputed(path: string, make: (lines: string[]) => string): Promise<string> {
  const run = () =>
    withFileMutex(`${path}.lock`, async () => {
      const line = make(nonEmptyLines(await readText(path)));
      await appendLine(path, line);
      return line;
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

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { withFileMutex } from '../runtime/file-mutex.ts';

/**
 * The anchor: the last head keyrot wrote to each stream of a state, kept OUTSIDE the state (local
 * mode: beside the state key; cluster mode: its own ConfigMap). MACs prove each line is keyrot's,
 * but cutting lines off the end leaves every remaining line valid; the anchor is what says "the
 * audit log reached seq 57" when the log now ends at 40. It only moves forward (two writers
 * racing never move it back); `keyrot history --reanchor` resets it after a deliberate archive.
 */
export interface Anchors {
  audit?: { seq: number; head: string };
  /** Per environment: the number of sealed lines and the last one's MAC. */
  journals: Record<string, { n: number; mac: string }>;
}

export type AnchorUpdate = { audit: { seq: number; head: string } } | { journal: { env: string; n: number; mac: string } };

/** The anchors after `u`, or null when `u` would not move them forward. */
export function advance(current: Anchors | null, u: AnchorUpdate): Anchors | null {
  const cur: Anchors = { audit: current?.audit, journals: { ...(current?.journals ?? {}) } };
  if ('audit' in u) {
    if (cur.audit && cur.audit.seq >= u.audit.seq) return null;
    return { ...cur, audit: u.audit };
  }
  const was = cur.journals[u.journal.env];
  if (was && was.n >= u.journal.n) return null;
  cur.journals[u.journal.env] = { n: u.journal.n, mac: u.journal.mac };
  return cur;
}

export function parseAnchors(text: string | undefined): Anchors | null {
  if (!text) return null;
  try {
    const a = JSON.parse(text) as Partial<Anchors>;
    return { audit: a.audit, journals: a.journals ?? {} };
  } catch {
    return null;
  }
}

/** Where anchors are kept and how they move. */
export interface AnchorStore {
  readonly where: string;
  read(): Promise<Anchors | null>;
  advance(u: AnchorUpdate): Promise<void>;
  /** Replaces them (keyrot history --reanchor). */
  reset(a: Anchors): Promise<void>;
}

/** Local mode: `<config dir>/anchors/<16 hex of the state directory's path>.json`, 0600. */
export function localAnchors(configDir: string, stateDir: string): AnchorStore {
  const abs = resolve(stateDir);
  const file = join(configDir, 'anchors', `${createHash('sha256').update(abs).digest('hex').slice(0, 16)}.json`);
  const write = async (a: Anchors) => {
    await mkdir(join(configDir, 'anchors'), { recursive: true, mode: 0o700 });
    // Temp file + rename, without fsync: the anchor is written after the line it records was
    // fsynced, so a crash can only leave it behind (or unreadable: "no anchor"), never ahead.
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ stateDir: abs, ...a })}\n`, { mode: 0o600 });
    await rename(tmp, file);
  };
  const read = async () => {
    try {
      return parseAnchors(await readFile(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  };
  return {
    where: file,
    read,
    advance: (u) =>
      withFileMutex(`${file}.lock`, async () => {
        const next = advance(await read(), u);
        if (next) await write(next);
      }),
    reset: (a) => withFileMutex(`${file}.lock`, () => write(a)),
  };
}


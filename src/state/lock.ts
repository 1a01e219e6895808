import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LockedError } from '../core/errors.ts';

export interface LockInfo {
  pid: number;
  host: string;
  at: string;
  rotation?: string;
  command?: string;
  /** Random per acquisition: tells this process's own locks apart (same pid, maybe the same ms). */
  nonce?: string;
}

export interface Lock {
  path: string;
  info: LockInfo;
  release(): Promise<void>;
}

export function lockPath(stateDir: string, env: string): string {
  return join(stateDir, 'locks', `${env}.lock`);
}

/** The locks this process holds now (a lock naming our own pid may be one of them). */
const held = new Set<string>();
const heldKey = (i: LockInfo) => `${i.pid}|${i.host}|${i.at}|${i.nonce ?? ''}`;
/** When this process started (a lock taken before that cannot be ours), with a margin for clock error. */
const startedAt = Date.now() - process.uptime() * 1000 - 1000;

/** True when the holder is a process of this host that no longer exists. */
export function isStale(info: LockInfo): boolean {
  if (info.host !== hostname()) return false; // another machine: we cannot tell, so it holds.
  // Our own pid: `kill(pid, 0)` finds us, yet a lock taken before this process started was left by
  // an earlier process that had the same pid (a restarted container's entrypoint is pid 1 again).
  if (info.pid === process.pid) {
    if (held.has(heldKey(info))) return false;
    const at = Date.parse(info.at);
    return Number.isFinite(at) && at < startedAt;
  }
  try {
    process.kill(info.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function sameHolder(a: LockInfo, b: LockInfo): boolean {
  return a.pid === b.pid && a.host === b.host && a.at === b.at && a.nonce === b.nonce;
}

export async function readLock(stateDir: string, env: string): Promise<LockInfo | null> {
  try {
    return JSON.parse(await readFile(lockPath(stateDir, env), 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

/**
 * One rotation per environment: the lock file is created exclusively (O_EXCL), holding pid, host
 * and time. A lock whose holder died on this host is stale and taken over (atomically: the stale
 * file is renamed away first, so two processes cannot both take it over).
 */
export async function acquireLock(
  stateDir: string,
  env: string,
  meta: { rotation?: string; command: string },
): Promise<Lock> {
  const path = lockPath(stateDir, env);
  await mkdir(join(stateDir, 'locks'), { recursive: true, mode: 0o700 });
  const info: LockInfo = { pid: process.pid, host: hostname(), at: new Date().toISOString(), ...meta, nonce: randomBytes(6).toString('hex') };
  for (let attempt = 0; attempt < 3; attempt++) {
    // The lock appears with its content already in place (written to a private file, then
    // hard-linked: link() fails with EEXIST like O_EXCL), so a reader never sees a half-written lock.
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(info) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    // Registered before the lock appears, so that no other acquisition in this process (which sees
    // our pid in it) ever takes it for a dead incarnation's.
    held.add(heldKey(info));
    try {
      try {
        await link(tmp, path);
      } finally {
        await unlink(tmp).catch(() => {});
      }
      let released = false;
      return {
        path,
        info,
        async release() {
          if (released) return;
          released = true;
          const now = await readLock(stateDir, env);
          if (now && sameHolder(now, info)) await unlink(path).catch(() => {});
          held.delete(heldKey(info));
        },
      };
    } catch (err) {
      held.delete(heldKey(info));
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await readLock(stateDir, env);
      if (holder && !isStale(holder)) {
        throw new LockedError(
          `environment "${env}" is locked by ${holder.command ?? 'another keyrot'} (pid ${holder.pid} on ${holder.host}, since ${holder.at}${holder.rotation ? `, rotation ${holder.rotation}` : ''}). ` +
            `Wait for it to finish. If that process is gone${holder.host !== hostname() ? ' (on another machine: check there)' : ''}, remove ${path}.`,
        );
      }
      // A stale lock (dead holder on this host) is taken over under a takeover mutex: only the
      // process holding `<lock>.takeover` may remove a lock, and it checks again, under the mutex,
      // that the lock it removes is still the stale one. Everyone then races on link() as usual,
      // so exactly one process ends up holding the lock.
      await removeStaleLock(path, holder, env);
    }
  }
  throw new LockedError(`environment "${env}": could not take the lock at ${path}; another keyrot is starting at the same time`);
}

/** A takeover mutex older than this was left by a process that crashed while taking over. */
const TAKEOVER_STALE_MS = 30_000;

async function removeStaleLock(path: string, seen: LockInfo | null, env: string): Promise<void> {
  const mutex = `${path}.takeover`;
  try {
    const fh = await open(mutex, 'wx', 0o600);
    await fh.writeFile(`${process.pid}@${hostname()}\n`);
    await fh.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const age = await stat(mutex).then((st) => Date.now() - st.mtimeMs, () => 0);
    if (age > TAKEOVER_STALE_MS) {
      await unlink(mutex).catch(() => {});
      return; // the caller tries again
    }
    throw new LockedError(`environment "${env}": another keyrot is taking over a stale lock right now; try again in a moment`);
  }
  try {
    // undefined: gone already; null: unreadable (corrupt), treated as stale.
    const now = await readFile(path, 'utf8').then(
      (t) => {
        try {
          return JSON.parse(t) as LockInfo;
        } catch {
          return null;
        }
      },
      (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : null),
    );
    if (now === undefined) return; // already gone
    if (now && !isStale(now)) {
      throw new LockedError(
        `environment "${env}" is locked by ${now.command ?? 'another keyrot'} (pid ${now.pid} on ${now.host}, since ${now.at}), which just took over a stale lock. Wait for it to finish.`,
      );
    }
    // Still the stale lock we saw (or an unreadable one): remove it.
    if (now && seen && !sameHolder(now, seen) && !isStale(now)) return;
    await unlink(path).catch(() => {});
  } finally {
    await unlink(mutex).catch(() => {});
  }
}

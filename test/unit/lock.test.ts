import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock, isStale, lockPath, readLock, type LockInfo } from '../../src/state/lock.ts';
import { LockedError } from '../../src/core/errors.ts';

/** A hook run before the lock's takeover mutex is created (to interleave two take-overs); pass-through otherwise. */
const hooks = vi.hoisted(() => ({ beforeTakeover: null as null | (() => Promise<void>) }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...orig,
    open: async (...args: Parameters<typeof orig.open>) => {
      const hook = hooks.beforeTakeover;
      if (hook && String(args[0]).endsWith('.takeover')) {
        hooks.beforeTakeover = null;
        await hook();
      }
      return orig.open(...args);
    },
  };
});

/** The pid of a process that has exited (so, on this host, a dead holder). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  expect(pid).toBeGreaterThan(0);
  return pid;
}

async function plantLock(stateDir: string, env: string, info: LockInfo | string): Promise<void> {
  await mkdir(join(stateDir, 'locks'), { recursive: true });
  await writeFile(lockPath(stateDir, env), typeof info === 'string' ? info : JSON.stringify(info) + '\n');
}

describe('environment lock', () => {
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'keyrot-lock-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('acquire writes pid, host, time and command to a 0600 lock file; release removes it', async () => {
    const lock = await acquireLock(stateDir, 'production', { command: 'rotate', rotation: 'rot_1' });
    expect(lock.path).toBe(join(stateDir, 'locks', 'production.lock'));
    const onDisk = JSON.parse(await readFile(lock.path, 'utf8')) as LockInfo;
    expect(onDisk).toMatchObject({ pid: process.pid, host: hostname(), command: 'rotate', rotation: 'rot_1' });
    expect(Number.isNaN(Date.parse(onDisk.at))).toBe(false);
    expect((await stat(lock.path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(stateDir, 'locks'))).toEqual(['production.lock']); // no temp file left
    await lock.release();
    await expect(stat(lock.path)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(lock.release()).resolves.toBeUndefined(); // twice is fine
  });

  it('a second acquire fails with LockedError naming the holder pid and host', async () => {
    const lock = await acquireLock(stateDir, 'production', { command: 'rotate', rotation: 'rot_1' });
    const err = await acquireLock(stateDir, 'production', { command: 'emergency' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    const msg = (err as LockedError).message;
    expect(msg).toContain(`pid ${process.pid}`);
    expect(msg).toContain(hostname());
    expect(msg).toContain('rotate');
    expect(msg).toContain('rot_1');
    expect(msg).toContain(lock.path);
    // The holder's lock is untouched.
    expect((await readLock(stateDir, 'production'))?.rotation).toBe('rot_1');
    await lock.release();
  });

  it('different environments lock independently', async () => {
    const a = await acquireLock(stateDir, 'production', { command: 'rotate' });
    const b = await acquireLock(stateDir, 'staging', { command: 'rotate' });
    expect(a.path).not.toBe(b.path);
    await a.release();
    await b.release();
  });

  it('concurrent acquires: exactly one wins', async () => {
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => acquireLock(stateDir, 'production', { command: 'rotate' })));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(4);
    for (const l of lost) expect((l as PromiseRejectedResult).reason).toBeInstanceOf(LockedError);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release();
    expect(await readdir(join(stateDir, 'locks'))).toEqual([]);
  });

  it('a stale lock (dead pid on this host) is taken over', async () => {
    const pid = deadPid();
    const stale: LockInfo = { pid, host: hostname(), at: '2026-01-01T00:00:00.000Z', command: 'rotate' };
    expect(isStale(stale)).toBe(true);
    await plantLock(stateDir, 'production', stale);
    const lock = await acquireLock(stateDir, 'production', { command: 'resume' });
    expect(lock.info.pid).toBe(process.pid);
    expect(await readLock(stateDir, 'production')).toMatchObject({ pid: process.pid, command: 'resume' });
    expect((await readdir(join(stateDir, 'locks'))).sort()).toEqual(['production.lock']); // the stale file is gone
    await lock.release();
  });

  it('two processes taking over the same stale lock: only one gets it', async () => {
    await plantLock(stateDir, 'production', { pid: deadPid(), host: hostname(), at: '2026-01-01T00:00:00.000Z', command: 'rotate' });
    let first: Awaited<ReturnType<typeof acquireLock>> | undefined;
    // B has read the stale lock and is about to take it over; A takes it over completely first.
    hooks.beforeTakeover = async () => {
      first = await acquireLock(stateDir, 'production', { command: 'schedule', rotation: 'rot_A' });
    };
    const second = await acquireLock(stateDir, 'production', { command: 'resume', rotation: 'rot_B' }).catch((e: unknown) => e);
    expect(first).toBeDefined();
    expect(second).toBeInstanceOf(LockedError);
    expect((second as LockedError).message).toContain(`pid ${process.pid}`);
    // A's lock is (back) in place and nothing else is left in the locks directory.
    expect(await readLock(stateDir, 'production')).toMatchObject({ rotation: 'rot_A' });
    expect(await readdir(join(stateDir, 'locks'))).toEqual(['production.lock']);
    await first!.release();
  });

  it('many processes racing to take over one stale lock: exactly one gets it, every round', async () => {
    for (let round = 0; round < 10; round++) {
      await plantLock(stateDir, 'production', { pid: deadPid(), host: hostname(), at: '2026-01-01T00:00:00.000Z', command: 'rotate' });
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => acquireLock(stateDir, 'production', { command: `racer-${i}` })));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LockedError);
      expect(await readdir(join(stateDir, 'locks'))).toEqual(['production.lock']);
      await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release();
    }
  });

  it('an unreadable (half-written) lock is taken over', async () => {
    await plantLock(stateDir, 'production', '{"pid": 12');
    const lock = await acquireLock(stateDir, 'production', { command: 'rotate' });
    expect(await readLock(stateDir, 'production')).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('a lock held on another host is never considered stale', async () => {
    const other: LockInfo = { pid: deadPid(), host: `not-${hostname()}`, at: '2026-01-01T00:00:00.000Z', command: 'rotate' };
    expect(isStale(other)).toBe(false);
    await plantLock(stateDir, 'production', other);
    const err = await acquireLock(stateDir, 'production', { command: 'rotate' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as LockedError).message).toContain(`pid ${other.pid} on ${other.host}`);
    expect((err as LockedError).message).toMatch(/another machine/);
  });

  it('a live holder on this host is not stale', () => {
    expect(isStale({ pid: process.pid, host: hostname(), at: new Date().toISOString() })).toBe(false);
  });

  it('release removes the lock only if it is still ours', async () => {
    const lock = await acquireLock(stateDir, 'production', { command: 'rotate' });
    // Someone else took it over (e.g. after deciding ours was stale).
    const theirs: LockInfo = { pid: process.pid + 100000, host: hostname(), at: new Date().toISOString(), command: 'resume' };
    await writeFile(lock.path, JSON.stringify(theirs));
    await lock.release();
    expect(await readLock(stateDir, 'production')).toEqual(theirs);
  });

  it('readLock: null when there is no lock', async () => {
    expect(await readLock(stateDir, 'production')).toBeNull();
  });
});

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { LockedError } from '../../src/core/errors.ts';
import { acquireLock, isStale, lockPath, readLock } from '../../src/state/lock.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('a lock left by an earlier process that had our pid (container restart: pid 1 again) is stale', async () => {
  // `docker restart` keeps the hostname, and the entrypoint gets the same pid as the killed run.
  const leftover = { pid: process.pid, host: hostname(), at: new Date(Date.now() - 3_600_000 - process.uptime() * 1000).toISOString(), command: 'rotate', rotation: 'rot_old' };
  await mkdir(join(dir, 'locks'), { recursive: true });
  await writeFile(lockPath(dir, 'test'), JSON.stringify(leftover));
  expect(isStale(leftover)).toBe(true);
  const lock = await acquireLock(dir, 'test', { command: 'resume' });
  expect((await readLock(dir, 'test'))?.at).toBe(lock.info.at);
  await lock.release();
});

it('a lock this process holds is not stale: a second acquisition in the same process is refused', async () => {
  const lock = await acquireLock(dir, 'test', { command: 'rotate' });
  expect(isStale(lock.info)).toBe(false);
  await expect(acquireLock(dir, 'test', { command: 'rotate' })).rejects.toBeInstanceOf(LockedError);
  await lock.release();
  const again = await acquireLock(dir, 'test', { command: 'rotate' });
  await again.release();
});

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { readJournal, type JournalEvent } from '../../src/state/journal.ts';
import { latestRotation } from '../../src/machine/state.ts';
import { lockPath } from '../../src/state/lock.ts';
import { resume } from '../../src/usecases/resume.ts';
import { rotate } from '../../src/usecases/rotate.ts';
import { testKey } from '../helpers/keys.ts';
import { messagesOf } from '../helpers/messages.ts';
import { MemoryStore, memoryEngine, type FaultPlan } from '../helpers/memory-target.ts';

/**
 * The rotation's word (the trust issue): each case was a defect found from outside, reproduced
 * here against the engine with the in-memory target.
 */

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'keyrot-trust-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const plan = (p: Partial<FaultPlan>): FaultPlan => ({ readBack: true, write: [], verify: [], restore: [], ...p });
const engine = (store: MemoryStore, n: number) => memoryEngine(store, n, stateDir, { retry: { attempts: 3 } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function seed(store: MemoryStore, n: number, key: string): void {
  for (let i = 0; i < n; i++) store.set(`t${i}`, key);
}

async function until(pred: (ev: JournalEvent[]) => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (pred(await readJournal(stateDir, 'test'))) return void (await sleep(20));
    await sleep(5);
  }
  throw new Error('the abandoned rotation never got there');
}

async function deadLock(): Promise<void> {
  await writeFile(lockPath(stateDir, 'test'), JSON.stringify({ pid: 2 ** 22 + 4242, host: hostname(), at: new Date().toISOString() }));
}

describe('1. preflight that could not finish is not "ready"', () => {
  it('a target answering 503 to every preflight read blocks the rotation: nothing is written anywhere', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    seed(store, 3, oldKey);
    store.plans.set('t1', plan({ preflight: Array(10).fill('unavailable') }));
    const rep = await rotate(engine(store, 3), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rep.outcome).toBe('refused');
    expect(rep.exitCode).toBe(1);
    for (let i = 0; i < 3; i++) expect(store.history.get(`t${i}`)).toEqual([oldKey]);
    // Retried like a write (bounded: 3 attempts here), then refused with the reason.
    expect(store.preflights.get('t1')).toBe(3);
    expect(rep.preflight?.find((p) => p.name === 't1')).toMatchObject({ status: 'blocked', reason: expect.stringMatching(/503.*still failing after retries/) });
    expect(messagesOf(rep).join(' ')).toMatch(/Preflight failed for 1 of 3 targets: nothing was written/);
    expect(await readJournal(stateDir, 'test')).toEqual([]);
  });

  it('a transient preflight failure that clears within the retries lets the rotation go ahead', async () => {
    const store = new MemoryStore();
    seed(store, 2, testKey());
    store.plans.set('t0', plan({ preflight: ['unavailable', 'rate-limit'] }));
    const rep = await rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rep.outcome).toBe('awaiting-revocation');
    expect(store.preflights.get('t0')).toBe(3);
  });

  it('resume refuses to continue while a target it must touch is blocked, and says which', async () => {
    const store = new MemoryStore();
    const newKey = testKey();
    seed(store, 2, testKey());
    store.plans.set('t1', plan({ write: ['hang'] }));
    void rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    await until((ev) => ev.some((e) => e.step === 'write' && e.target === 't0' && e.outcome === 'ok'));
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();
    store.plans.set('t1', plan({ preflight: Array(10).fill('unavailable') }));
    const rep = await resume(engine(store, 2), { rollback: false });
    expect(rep.outcome).toBe('interrupted');
    expect(messagesOf(rep).join(' ')).toMatch(/Cannot resume yet: t1 failed preflight/);
  });
});

describe('7. a rollback puts the running apps back too', () => {
  it('killed right after a redeploy, resume --rollback restores the value AND redeploys, and does not call the new key unused before', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    seed(store, 2, oldKey);
    // t0's consumers take the new key by a redeploy; the process dies right after it (t1 hangs).
    store.plans.set('t0', plan({ redeploy: [] }));
    store.plans.set('t1', plan({ write: ['hang'] }));
    void rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    await until((ev) => ev.some((e) => e.step === 'write' && e.target === 't0' && e.outcome === 'ok'));
    // Redeploy t0 as the killed run did (its journal line was never written).
    store.running.set('t0', newKey);
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();

    const rep = await resume(engine(store, 2), { rollback: true });
    expect(rep.outcome).toBe('rolled-back');
    expect(store.values.get('t0')).toBe(oldKey);
    // The running consumers are back on the old key: nothing runs the new key when keyrot says so.
    expect(store.running.get('t0')).toBe(oldKey);
    const ev = await readJournal(stateDir, 'test');
    const restoredAt = ev.findIndex((e) => e.step === 'restore' && e.target === 't0' && e.outcome === 'ok');
    const redeployedAt = ev.findIndex((e) => e.step === 'redeploy' && e.target === 't0' && e.purpose === 'restore' && e.outcome === 'ok');
    const endAt = ev.findIndex((e) => e.step === 'end');
    expect(restoredAt).toBeGreaterThan(-1);
    expect(redeployedAt).toBeGreaterThan(restoredAt);
    expect(endAt).toBeGreaterThan(redeployedAt);
    expect(messagesOf(rep).join(' ')).toMatch(/is used nowhere now/);
  });

  it('a redeploy that fails after the restore leaves the rollback unfinished (no "unused" claim); resume finishes it', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    seed(store, 2, oldKey);
    store.plans.set('t0', plan({ redeploy: [] }));
    store.plans.set('t1', plan({ verify: ['fail'] }));
    const first = await rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    // t1's verify failed: rollback; t0 was redeployed onto the new key, so it is redeployed back.
    expect(first.outcome).toBe('failed');
    expect(store.running.get('t0')).toBe(oldKey);

    const store2 = new MemoryStore();
    seed(store2, 2, oldKey);
    store2.plans.set('t0', plan({ redeploy: ['ok', 'fail', 'fail', 'fail', 'fail', 'fail', 'fail', 'fail', 'fail'] }));
    store2.plans.set('t1', plan({ verify: ['fail'] }));
    const dir2 = await mkdtemp(join(tmpdir(), 'keyrot-trust-'));
    try {
      const o = memoryEngine(store2, 2, dir2, { retry: { attempts: 3 } });
      const rep = await rotate(o, { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
      expect(rep.outcome).toBe('interrupted');
      expect(store2.values.get('t0')).toBe(oldKey);
      expect(store2.running.get('t0')).toBe(newKey); // consumers still on the new key: not done
      expect(messagesOf(rep).join(' ')).not.toMatch(/used nowhere/);
      expect(messagesOf(rep).join(' ')).toMatch(/keyrot resume -e test --rollback/);
      store2.plans.set('t0', plan({ redeploy: [] }));
      const again = await resume(memoryEngine(store2, 2, dir2, { retry: { attempts: 3 } }), { rollback: false });
      expect(again.outcome).toBe('failed'); // the rollback decided earlier is what resume finishes
      expect(store2.running.get('t0')).toBe(oldKey);
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  });
});

describe('8. every crash point resumes', () => {
  it('the first durable record names the new key: a crash right after it resumes with the same key', async () => {
    const store = new MemoryStore();
    const newKey = testKey();
    seed(store, 2, testKey());
    store.plans.set('t0', plan({ write: ['hang'] }));
    store.plans.set('t1', plan({ write: ['hang'] }));
    void rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    await until((ev) => ev.some((e) => e.step === 'start'));
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();
    const start = (await readJournal(stateDir, 'test')).find((e) => e.step === 'start')!;
    expect(start.newFingerprint).toBe(new Secret(newKey).fingerprint);
    store.plans.set('t0', plan({}));
    store.plans.set('t1', plan({}));
    const rep = await resume(engine(store, 2), { rollback: false, newKey: { source: 'stdin', obtain: async () => new Secret(newKey) } });
    expect(rep.outcome).toBe('awaiting-revocation');
    expect(store.values.get('t0')).toBe(newKey);
  });

  it('a v1 journal cut between `start` and `key` (nothing written) is closed by resume, not stuck', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    seed(store, 2, oldKey);
    // A journal keyrot 0.1 wrote (v: 1, unauthenticated), cut right after its `start` line.
    const old = new Secret(oldKey).fingerprint;
    const targets = [0, 1].map((i) => ({ name: `t${i}`, type: 'file', location: `memory:t${i}`, old, readBack: true }));
    const start = { v: 1, rotation: 'rot_20260101T000000Z_v1', env: 'test', step: 'start', outcome: 'ok', at: '2026-01-01T00:00:00.000Z', mode: 'rotate', source: 'stdin', oldFingerprint: old, oldHint: 'sk-...', alsoRevoke: [], targets };
    await mkdir(join(stateDir, 'journal'), { recursive: true });
    await writeFile(join(stateDir, 'journal', 'test.ndjson'), JSON.stringify(start) + '\n', { mode: 0o600 });
    const rep = await resume(engine(store, 2), { rollback: false });
    expect(rep.outcome).toBe('rolled-back');
    expect((await latestRotation(stateDir, 'test'))?.outcome).toBe('rolled-back');
    const next = await rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(next.outcome).toBe('awaiting-revocation');
  });

  it('unattended: when no target can give the new key back and the source gives another, it rolls back instead of waiting for a person', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    seed(store, 2, oldKey);
    // t0 is write-only (the new key cannot be read back from it); t1 hangs in its write.
    store.plans.set('t0', plan({ readBack: false }));
    store.plans.set('t1', plan({ write: ['hang'] }));
    void rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    await until((ev) => ev.some((e) => e.step === 'write' && e.target === 't0' && e.outcome === 'ok'));
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();
    store.plans.set('t1', plan({}));
    const rep = await resume(engine(store, 2), {
      rollback: false,
      newKey: { source: 'env:OPENAI_API_KEY_NEXT', obtain: async () => new Secret(testKey()) },
      rollbackWhenNewKeyUnavailable: true,
    });
    expect(rep.outcome).toBe('rolled-back');
    expect(store.values.get('t0')).toBe(oldKey);
    expect(store.values.get('t1')).toBe(oldKey);
  });
});

describe('10. a failed rotation does not block the next one without need', () => {
  it('a write that keeps failing on one target ends `failed` with everything restored: the next rotate runs', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    seed(store, 4, oldKey);
    store.plans.set('t3', plan({ readBack: false, write: ['fail'] }));
    const rep = await rotate(engine(store, 4), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rep.outcome).toBe('failed');
    for (const t of rep.targets) expect(t.holds, t.name).toBe('old');
    const next = await rotate(engine(store, 4), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(next.outcome).toBe('awaiting-revocation');
  });

  it('a restore that fails a few times is retried with more patience than a write, and the rotation ends clean', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    seed(store, 3, oldKey);
    store.plans.set('t0', plan({ verify: ['fail'], restore: ['unavailable', 'unavailable', 'unavailable', 'unavailable'] }));
    const rep = await rotate(engine(store, 3), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rep.outcome).toBe('failed');
    for (let i = 0; i < 3; i++) expect(store.values.get(`t${i}`)).toBe(oldKey);
  });

  it('a restore whose answer is lost but that landed is established by reading the target back', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    seed(store, 2, oldKey);
    store.plans.set('t0', plan({ verify: ['fail'], restore: Array(20).fill('fail-after-write') }));
    const rep = await rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rep.outcome).toBe('failed');
    expect(store.values.get('t0')).toBe(oldKey);
    const ev = await readJournal(stateDir, 'test');
    expect(ev.some((e) => e.step === 'restore' && e.target === 't0' && e.outcome === 'ok' && /read back/.test(e.detail ?? ''))).toBe(true);
  });

  it('untouched write-only targets are reported holding the old key, not UNKNOWN', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    seed(store, 4, oldKey);
    for (let i = 1; i < 4; i++) store.plans.set(`t${i}`, plan({ readBack: false }));
    store.plans.set('t0', plan({ preflightError: 'memory: expired credentials' }));
    const rep = await rotate(engine(store, 4), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rep.outcome).toBe('refused');
    expect(rep.targets.filter((t) => t.holds === 'unknown').map((t) => t.name)).toEqual(['t0']);
  });
});

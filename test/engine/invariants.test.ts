import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { fakeClock } from '../../src/runtime/clock.ts';
import { ExitError, LockedError } from '../../src/core/errors.ts';
import { latestRotation } from '../../src/machine/state.ts';
import { readJournal } from '../../src/state/journal.ts';
import { lockPath } from '../../src/state/lock.ts';
import { resume } from '../../src/usecases/resume.ts';
import { rotate } from '../../src/usecases/rotate.ts';
import { type EngineOptions } from '../../src/machine/run.ts';
import { type RotationReport } from '../../src/machine/outcome.ts';
import { Secret } from '../../src/core/secret.ts';
import { testKey } from '../helpers/keys.ts';
import { killableState } from '../helpers/killable-state.ts';
import type { StateRef } from '../../src/state/store.ts';
import { MemoryStore, memoryEngine, type FaultPlan, type OpFault } from '../helpers/memory-target.ts';

/**
 * The invariants 1, 2, 4 and 5 of README "Security model", checked over random fault schedules and target counts
 * with an in-memory target that obeys the Target contract.
 */

const transient: OpFault[] = ['rate-limit', 'timeout'];
const opFault = fc.constantFrom<OpFault>('ok', 'ok', 'ok', 'fail', 'fail-after-write', 'rate-limit', 'timeout');
const planArb: fc.Arbitrary<FaultPlan> = fc.record({
  readBack: fc.boolean(),
  write: fc.array(fc.oneof(opFault, fc.constant<OpFault>('corrupt')), { maxLength: 3 }),
  verify: fc.array(fc.constantFrom<OpFault>('ok', 'fail', 'rate-limit', 'timeout'), { maxLength: 3 }),
  restore: fc.array(opFault, { maxLength: 2 }),
  // Present on about half the targets: consumers that need a redeploy, which may fail too.
  redeploy: fc.option(fc.array(fc.constantFrom<OpFault>('ok', 'ok', 'fail', 'rate-limit', 'timeout', 'unavailable'), { maxLength: 3 }), { nil: undefined }),
});

/**
 * How many runs exercised each invariant (printed at the end): a property whose runs mostly
 * return before asserting proves nothing.
 */
const runs = {
  /** Invariant 1: runs that reached the revocation step (every target checked on the new key). */
  revocationReached: 0,
  /** Invariant 1: runs that failed and were checked to have revoked nothing. */
  failedWithoutRevoke: 0,
  /** Invariant 2: runs whose every target (and redeployed consumer) was checked on the old or new key. */
  oldOrNew: 0,
  /** ... of which had a redeploy fault. */
  redeployFaults: 0,
  /** Invariant 4: concurrent rounds checked. */
  exclusive: 0,
  /** Invariant 5: runs started to be crashed, and those really cut short then recovered and checked. */
  crash: 0,
  recovered: 0,
};

async function engine(store: MemoryStore, n: number, stateDir: StateRef): Promise<EngineOptions> {
  return memoryEngine(store, n, stateDir);
}

function seed(store: MemoryStore, n: number, oldKey: string): void {
  for (let i = 0; i < n; i++) store.set(`t${i}`, oldKey);
}

async function events(stateDir: string) {
  return readJournal(stateDir, 'test');
}

describe('engine invariants (property-based)', () => {
  afterAll(() => {
    console.log(`invariant runs: ${JSON.stringify(runs)}`);
  });

  it('1 & 2: revocation is reached only when every target verified; every target ends on the old or the new key', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.array(planArb, { minLength: 6, maxLength: 6 }), async (n, plans) => {
        const stateDir = await mkdtemp(join(tmpdir(), 'keyrot-prop-'));
        try {
          const store = new MemoryStore();
          const oldKey = testKey();
          const newKey = testKey();
          seed(store, n, oldKey);
          // A target whose write corrupts cannot be guaranteed by anyone if its restore also fails for good.
          for (let i = 0; i < n; i++) {
            const p = structuredClone(plans[i]!);
            if (p.write.includes('corrupt')) p.restore = p.restore.filter((f) => transient.includes(f));
            store.plans.set(`t${i}`, p);
            if (p.redeploy) store.running.set(`t${i}`, oldKey);
          }
          const o = await engine(store, n, stateDir);
          const rep = await rotate(o, { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
          const ev = await events(stateDir);
          const verifiedAll = ev.some((e) => e.step === 'verified-all');
          const verifiedTargets = new Set(ev.filter((e) => e.step === 'verify' && e.outcome === 'ok').map((e) => e.target));

          // Invariant 1: the revocation step (verified-all, awaiting revocation, revoke) only after all verified.
          if (verifiedAll || rep.outcome === 'awaiting-revocation' || rep.outcome === 'completed') {
            expect(verifiedTargets.size).toBe(n);
            for (let i = 0; i < n; i++) expect(store.values.get(`t${i}`)).toBe(newKey);
            // Verified includes redeployed: the consumers run the new key before any revocation.
            for (const [name, running] of store.running) expect(running, `${name}'s consumers`).toBe(newKey);
            runs.revocationReached++;
          }
          if (rep.outcome === 'failed' || rep.outcome === 'interrupted') {
            expect(verifiedAll).toBe(false);
            expect(ev.some((e) => e.step === 'revoke')).toBe(false);
            expect(rep.exitCode).toBe(1);
            runs.failedWithoutRevoke++;
          }
          // Invariant 2: nothing but the old or the new key, whatever failed, consumers included.
          for (let i = 0; i < n; i++) expect([oldKey, newKey]).toContain(store.values.get(`t${i}`));
          for (const running of store.running.values()) expect([oldKey, newKey]).toContain(running);
          runs.oldOrNew++;
          if (plans.slice(0, n).some((p) => p.redeploy?.some((f) => f !== 'ok'))) runs.redeployFaults++;
          // A failed rotation that restored everything leaves every target on the old key.
          if (rep.outcome === 'failed') for (let i = 0; i < n; i++) expect(store.values.get(`t${i}`)).toBe(oldKey);
          // The report tells the truth about what each target holds.
          for (const t of rep.targets) {
            const actual = store.values.get(t.name);
            if (t.holds === 'new') expect(actual).toBe(newKey);
            if (t.holds === 'old') expect(actual).toBe(oldKey);
          }
          // Retries are bounded: the fake clock slept a bounded number of times.
          expect((o.clock as ReturnType<typeof fakeClock>).slept.length).toBeLessThanOrEqual(n * 3 * 4);
        } finally {
          await rm(stateDir, { recursive: true, force: true });
        }
      }),
      { numRuns: 80 },
    );
  }, 120_000);

  it('4: two rotations of one environment never run at once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 2, max: 4 }), async (n, k) => {
        const stateDir = await mkdtemp(join(tmpdir(), 'keyrot-prop-'));
        try {
          const store = new MemoryStore();
          seed(store, n, testKey());
          const o = await engine(store, n, stateDir);
          const results = await Promise.allSettled(
            Array.from({ length: k }, () => rotate(o, { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) })),
          );
          expect(store.maxConcurrentRotations).toBe(1);
          runs.exclusive++;
          const ok = results.filter((r) => r.status === 'fulfilled' && (r.value as RotationReport).outcome === 'awaiting-revocation');
          expect(ok.length).toBe(1);
          for (const r of results) {
            if (r.status === 'rejected') {
              // Locked out (exit 3), or started after the winner and refused: a revocation is pending.
              expect(
                r.reason instanceof LockedError || (r.reason instanceof ExitError && /awaiting revocation/.test(r.reason.message)),
                String(r.reason?.stack ?? r.reason),
              ).toBe(true);
            }
          }
        } finally {
          await rm(stateDir, { recursive: true, force: true });
        }
      }),
      { numRuns: 30 },
    );
  }, 60_000);

  it('5: a rotation interrupted at any point is resumed or rolled back from the journal', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.boolean(),
        fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        async (n, crashFraction, rollback, readBack, redeploys) => {
          runs.crash++;
          const stateDir = await mkdtemp(join(tmpdir(), 'keyrot-prop-'));
          try {
            const store = new MemoryStore();
            const oldKey = testKey();
            const newKey = testKey();
            seed(store, n, oldKey);
            // At least one readable target, so the keys can be recovered from the targets themselves.
            for (let i = 0; i < n; i++) {
              store.plans.set(`t${i}`, { readBack: i === 0 || readBack[i]!, write: [], verify: [], restore: [], ...(redeploys[i] ? { redeploy: [] } : {}) });
              if (redeploys[i]) store.running.set(`t${i}`, oldKey);
            }
            // A crash point among the calls an uninterrupted run makes (a write and a verify per
            // target, a redeploy where there is one), so that (nearly) every run is really cut short.
            const calls = n * 2 + redeploys.slice(0, n).filter(Boolean).length;
            store.crashAtOp = 1 + Math.floor(crashFraction * calls);
            // The dead "process" appends no journal line and releases no lock once killed.
            const o1 = await engine(store, n, await killableState(stateDir, () => store.generation > 0));
            // The "process" stops at op `crashAt`: this promise never settles, like a SIGKILL.
            const abandoned = rotate(o1, { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
            let settled = false;
            void abandoned.then(() => (settled = true));
            // Wait until the run either finished or reached the crash point (then let in-flight
            // journal appends land, as they would have before a real SIGKILL... or not: both are fine).
            while (!settled && store.ops < store.crashAtOp) await new Promise((r) => setTimeout(r, 2));
            if (!settled) await new Promise((r) => setTimeout(r, 30));
            const finished = settled;
            store.kill();
            const last = await latestRotation(stateDir, 'test');
            if (finished || !last) return; // crashed before the journal started, or completed before the crash point
            // The dead process's lock: a pid that no longer exists on this host.
            await writeFile(lockPath(stateDir, 'test'), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), at: new Date().toISOString() }));
            // Every claim the journal makes about a target is true.
            for (const [name, t] of last.targets) {
              if (t.holds === new Secret(newKey).fingerprint) expect(store.values.get(name)).toBe(newKey);
            }
            const o2 = await engine(store, n, stateDir);
            // Only a readable target can give the new key back.
            const holdsNew = [...store.values].some(([name, v]) => store.plans.get(name)!.readBack && v === newKey);
            let rep: RotationReport;
            if (!rollback && !holdsNew) {
              // The new key is never persisted: with no readable target holding it, resume asks for it again.
              await expect(resume(o2, { rollback })).rejects.toThrow(/no target holds the new key/);
              rep = await resume(o2, { rollback, newKey: { source: 'stdin', obtain: async () => new Secret(newKey) } });
            } else {
              rep = await resume(o2, { rollback });
              const readableHoldsOld = [...store.values].some(([name, v]) => store.plans.get(name)!.readBack && v === oldKey);
              if (rollback && rep.outcome === 'interrupted') {
                // No readable target holds the old key any more: the rollback needs it given again (--old-key).
                expect(readableHoldsOld).toBe(false);
                expect(rep.targets.some((t) => /old key is not known/.test(t.error ?? ''))).toBe(true);
                rep = await resume(await engine(store, n, stateDir), { rollback, oldKey: { source: 'stdin', obtain: async () => new Secret(oldKey) } });
              }
            }
            const key = rollback ? oldKey : newKey;
            expect(rep.outcome).toBe(rollback ? 'rolled-back' : 'awaiting-revocation');
            for (let i = 0; i < n; i++) expect(store.values.get(`t${i}`)).toBe(key);
            // The consumers of redeployed targets run that key too.
            for (const [name, running] of store.running) expect(running, `${name}'s consumers`).toBe(key);
            const after = await latestRotation(stateDir, 'test');
            expect(after?.outcome).toBe(rep.outcome);
            runs.recovered++;
          } finally {
            await rm(stateDir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
    // Not vacuous: most runs are cut short with a journal to recover from.
    expect(runs.recovered).toBeGreaterThanOrEqual(runs.crash * 0.8);
  }, 120_000);

  it('3: the journal holds fingerprints only, never a key value', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'keyrot-prop-'));
    try {
      const store = new MemoryStore();
      const oldKey = testKey();
      const newKey = testKey();
      seed(store, 3, oldKey);
      store.plans.set('t1', { readBack: true, write: ['fail-after-write'], verify: [], restore: [] });
      const o = await engine(store, 3, stateDir);
      await rotate(o, { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
      for (const f of await readdir(stateDir, { recursive: true })) {
        const text = await readFile(join(stateDir, f), 'utf8').catch(() => '');
        expect(text).not.toContain(oldKey);
        expect(text).not.toContain(newKey);
      }
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

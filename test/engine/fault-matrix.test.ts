import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fault } from '../../emulators/server.ts';
import { fingerprint, Secret } from '../../src/core/secret.ts';
import { latestRotation } from '../../src/machine/state.ts';
import { silentReporter, type TargetPhase } from '../../src/machine/progress.ts';
import type { RotationReport } from '../../src/machine/outcome.ts';
import { readJournal } from '../../src/state/journal.ts';
import { TARGETS } from '../../src/targets/index.ts';
import type { TargetDefinition } from '../../src/targets/types.ts';
import { resume } from '../../src/usecases/resume.ts';
import { rotate } from '../../src/usecases/rotate.ts';
import { engineOptions, type TargetInput } from '../helpers/engine-options.ts';
import { testKey } from '../helpers/keys.ts';
import { MemoryStore, memoryTargets } from '../helpers/memory-target.ts';
import { loadHarnesses, type ConformanceFixture, type ConformanceHarness } from '../conformance/harness.ts';

/**
 * Every target type on its emulator (through its conformance harness) × a provider fault × the
 * phase it strikes in, run through the engine in-process (fake clock: retries are instant). The
 * fault is armed when the engine reports the target entering the phase and cleared when it leaves
 * it. A second, in-memory target fails its verify in the `restoring` cells, so that a rollback
 * reaches the target under test. In every cell: nothing revoked unless every target verified
 * (invariant 1), every target on the old or the new key (2), the journal's claims true and a
 * resume --rollback finishing what the fault left (5), and a failure names its reason.
 * Cells that cannot apply are listed with the reason, not silently dropped.
 */

const KINDS = ['500', '429', 'timeout', 'reset', 'auth', 'mismatch', 'vanished'] as const;
type Kind = (typeof KINDS)[number];
const PHASES = ['preflight', 'writing', 'verifying', 'redeploying', 'restoring', 'finalize'] as const;
type Phase = (typeof PHASES)[number];

/** The per-call deadline of the targets here: a hung call costs this much real time. */
const DEADLINE = '1000ms';

const forever = 10_000;
const HTTP_FAULTS: Record<Exclude<Kind, '429' | 'mismatch' | 'vanished'>, Fault> = {
  '500': { status: 500, body: { error: 'internal error (fault matrix)' }, times: forever },
  timeout: { hang: 'headers', times: forever },
  reset: { reset: true, times: forever },
  auth: { status: 401, body: { error: 'unauthorized (fault matrix)' }, times: forever },
};

const ONLY = process.env.FAULT_MATRIX_ONLY;
const harnesses = (await loadHarnesses()).filter((h) => !ONLY || `${h.id}:`.startsWith(ONLY) || ONLY.startsWith(`${h.id}:`));
/** [target, `kind × phase`, why] of every cell that did not run. */
const skipped: Array<[string, string, string]> = [];

/** Why a cell cannot apply to this target (undefined: it runs). */
function notApplicable(h: ConformanceHarness, fx: ConformanceFixture | undefined, kind: Kind, phase: Phase): string | undefined {
  if (h.skip) return h.skip;
  if (!fx) return `no fixture`;
  if (!fx.emulator && !fx.breakLocally) return `no emulated provider API (${h.noEmulator ?? 'none'}) and no local fault (a stopped Engine is not in this matrix yet)`;
  if (phase === 'finalize') return 'finalize runs after a completed revocation: not reached by this matrix yet';
  if (kind === 'vanished' && !fx.breakLocally) return 'a local-file fault';
  if (kind !== 'vanished' && !fx.emulator) return 'no HTTP: a local file (its seed is asynchronous: a mismatch would race the verify)';
  if (phase === 'redeploying' && !fx.target.redeploy) return 'no redeploy with this config';
  if (kind === 'mismatch' && phase !== 'verifying') return 'a read-back mismatch is a verify fault';
  return undefined;
}

/** The target under test as an inventory entry: the harness's adapter, already created. */
function entry(h: ConformanceHarness, fx: ConformanceFixture): TargetInput {
  const registered = TARGETS[h.id as keyof typeof TARGETS] as TargetDefinition<any, any>;
  return { name: h.id, definition: { ...registered, describe: () => fx.target.location, create: async () => fx.target }, config: {} };
}

interface Cell {
  h: ConformanceHarness;
  fx: ConformanceFixture;
  kind: Kind;
  phase: Phase;
}

/** Arms `kind` on the target's provider the first time it enters `phase`; clears it when it leaves. */
function faultingReporter(c: Cell, oldKey: string) {
  let armed = false;
  let done = false;
  let undo = () => c.fx.emulator?.clearFaults();
  const arm = () => {
    if (c.kind === '429') c.fx.failNextWithRateLimit();
    else if (c.kind === 'mismatch') void c.fx.seed(oldKey); // someone put the old key back under us
    else if (c.kind === 'vanished') undo = c.fx.breakLocally!();
    else c.fx.emulator!.failNext(HTTP_FAULTS[c.kind]);
  };
  const clear = () => {
    if (!done) undo();
    done = true;
  };
  const reporter = {
    ...silentReporter,
    target(name: string, phase: TargetPhase) {
      if (name !== c.h.id || done) return;
      if (!armed && phase === c.phase) {
        armed = true;
        arm();
      } else if (armed && phase !== c.phase) clear();
    },
  };
  return { reporter, clear };
}

async function runCell(c: Cell): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'keyrot-faults-'));
  try {
    const oldKey = testKey();
    const newKey = testKey();
    await c.fx.seed(oldKey);
    const store = new MemoryStore();
    store.set('t0', oldKey);
    // Restore is reached by a rollback: the other target's verify fails.
    store.plans.set('t0', { readBack: true, write: [], verify: c.phase === 'restoring' ? ['fail'] : [], restore: [] });
    const targets = [entry(c.h, c.fx), ...memoryTargets(store, 1)];
    const fault = faultingReporter(c, oldKey);
    const options = () => engineOptions(targets, stateDir, { retry: { attempts: 2 }, reporter: fault.reporter });
    const holds = async () => ({ [c.h.id]: await c.fx.peek([oldKey, newKey]), t0: store.values.get('t0') ?? null });
    const where = `${c.h.id} × ${c.kind} × ${c.phase}`;

    const rep: RotationReport | Error = await rotate(options(), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) }).catch((e: Error) => e);
    fault.clear();
    const ev = await readJournal(stateDir, 'test');
    const held = await holds();
    // Invariant 1: nothing revoked, and the revocation step only once every target verified.
    expect(ev.some((e) => e.step === 'revoke'), where).toBe(false);
    if (!(rep instanceof Error) && rep.outcome === 'awaiting-revocation') expect(held, where).toEqual({ [c.h.id]: newKey, t0: newKey });
    // Invariant 2: the old or the new key, whatever failed.
    for (const v of Object.values(held)) expect([oldKey, newKey], where).toContain(v);
    // A failure names the target and why.
    if (rep instanceof Error) expect(rep.message, where).toMatch(new RegExp(`${c.h.id}|t0`));
    else if (rep.outcome !== 'awaiting-revocation') expect(rep.targets.filter((t) => t.error).map((t) => t.name), `${where}: ${JSON.stringify(rep.targets)}`).not.toEqual([]);
    // Invariant 5: what the journal says each target holds is true; a rollback finishes the rest.
    const last = await latestRotation(stateDir, 'test');
    for (const [name, t] of last?.targets ?? []) {
      if (t.holds === 'unknown') continue;
      const actual = held[name];
      expect(actual === null || actual === undefined ? null : fingerprint(actual), `${where}: the journal's ${name}`).toBe(t.holds);
    }
    const settled = !(rep instanceof Error) && rep.outcome === 'awaiting-revocation' ? newKey : oldKey;
    if (Object.values(held).some((v) => v !== settled)) {
      // As an operator would: run the rollback again while it stops short (a 1 s per-call deadline
      // can pass on a loaded machine, and the rollback then stays resumable instead of finishing).
      let back = await resume(options(), { rollback: true, oldKey: { source: 'stdin', obtain: async () => new Secret(oldKey) } });
      for (let again = 0; again < 3 && !['rolled-back', 'failed'].includes(back.outcome); again++) {
        back = await resume(options(), { rollback: true, oldKey: { source: 'stdin', obtain: async () => new Secret(oldKey) } });
      }
      // `failed` when the engine had already decided to roll back (a failure, every target restored).
      expect(['rolled-back', 'failed'], `${where}: rollback ${JSON.stringify({ outcome: back.outcome, targets: back.targets, notices: back.notices })}`).toContain(back.outcome);
      expect(await holds(), where).toEqual({ [c.h.id]: oldKey, t0: oldKey });
    }
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

describe.concurrent('fault matrix: every target × fault × phase', () => {
  const fixtures = new Map<string, ConformanceFixture>();
  beforeAll(async () => {
    for (const h of harnesses) {
      if (h.skip) continue;
      fixtures.set(h.id, await h.setup({ requestTimeout: DEADLINE, wait: '5s' }));
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all([...fixtures.values()].map((fx) => fx.close()));
    // One line per target and reason: which cells did not run, and why.
    const byReason = new Map<string, string[]>();
    for (const [target, cell, why] of skipped) byReason.set(`${target}: ${why}`, [...(byReason.get(`${target}: ${why}`) ?? []), cell]);
    console.log(`fault matrix: ${skipped.length} cells skipped:\n${[...byReason].map(([why, cells]) => `  ${why} (${cells.length}: ${cells.join(', ')})`).join('\n')}`);
  });

  for (const h of harnesses) {
    it(`${h.id}`, async () => {
      const fx = fixtures.get(h.id);
      let ran = 0;
      for (const phase of PHASES) {
        for (const kind of KINDS) {
          // FAULT_MATRIX_ONLY=target[:kind[:phase]] reruns those cells.
          if (ONLY && !`${h.id}:${kind}:${phase}`.startsWith(ONLY)) continue;
          const why = notApplicable(h, fx, kind, phase);
          if (why) {
            skipped.push([h.id, `${kind} × ${phase}`, why]);
            continue;
          }
          await runCell({ h, fx: fx!, kind, phase });
          ran++;
        }
      }
      console.log(`fault matrix: ${h.id}: ${ran} cells ran`);
    }, 600_000);
  }
});

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
import { REGISTERED_IDS, loadTargetDefinitions } from '../../src/targets/index.ts';
import type { TargetDefinition } from '../../src/targets/types.ts';
import { resume } from '../../src/usecases/resume.ts';
import { revoke } from '../../src/usecases/revoke.ts';
import { rotate } from '../../src/usecases/rotate.ts';
import { engineOptions, type TargetInput } from '../helpers/engine-options.ts';
import { testKey } from '../helpers/keys.ts';
import { MemoryStore, memoryTargets } from '../helpers/memory-target.ts';
import { PERMISSION_DENIED } from './permission-denied.ts';
import { loadHarnesses, type ConformanceFixture, type ConformanceHarness } from '../conformance/harness.ts';

/** Every registered definition, loaded (the registry loads them on demand). */
const TARGETS = Object.fromEntries(await loadTargetDefinitions(REGISTERED_IDS));

/**
 * Every target type on its emulator (through its conformance harness) × a provider fault × the
 * phase it strikes in, run through the engine in-process (fake clock: retries are instant). The
 * fault is armed when the engine reports the target entering the phase and cleared when it leaves
 * it. A second, in-memory target fails its verify in the `restoring` cells, so that a rollback
 * reaches the target under test. In every cell: nothing revoked unless every target verified
 * (invariant 1), every target on the old or the new key (2), the journal's claims true and a
 * resume --rollback finishing what the fault left (5), and a failure names its reason. The
 * finalize cells fault the provider during `keyrot revoke` instead (runFinalizeCell). The 403
 * column is each provider's own permission-denied answer (permission-denied.ts).
 * Cells that cannot apply are listed with the reason, not silently dropped.
 */

const KINDS = ['500', '429', 'timeout', 'reset', '401', '403', 'mismatch', 'vanished'] as const;
type Kind = (typeof KINDS)[number];
const PHASES = ['preflight', 'writing', 'verifying', 'redeploying', 'restoring', 'finalize'] as const;
type Phase = (typeof PHASES)[number];

/** The per-call deadline of the targets here: a hung call costs this much real time. */
const DEADLINE = '1000ms';

const forever = 10_000;
const HTTP_FAULTS: Record<Exclude<Kind, '429' | '403' | 'mismatch' | 'vanished'>, Fault> = {
  '500': { status: 500, body: { error: 'internal error (fault matrix)' }, times: forever },
  timeout: { hang: 'headers', times: forever },
  reset: { reset: true, times: forever },
  '401': { status: 401, body: { error: 'unauthorized (fault matrix)' }, times: forever },
};

/** Cells a real Docker Engine cannot have (it is not an HTTP provider with accounts and quotas). */
const NOT_ON_AN_ENGINE: Partial<Record<Kind, string>> = {
  '429': 'the Docker Engine API has no rate limit (no 429, no Retry-After)',
  '401': 'the Engine socket has no credentials (access is the socket\'s file permission); a denial is a 403',
  mismatch: 'the Engine never returns secret data and seed() re-creates the service: verify refusing a service on another secret is test/targets/docker-secret.test.ts "verify proves the write…"',
};

/** Where faults are injected: the provider's emulator, or the loopback front of a real Engine. */
const injector = (fx: ConformanceFixture) => fx.emulator ?? fx.faults;

/** FAULT_MATRIX_ONLY=target[:kind[:phase]] reruns those cells; `*` stands for any one part (`*:403`). */
const ONLY = process.env.FAULT_MATRIX_ONLY;
const onlyCell = ONLY && new RegExp(`^${ONLY.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^:]*')}`);
const selected = (cell: string) => !onlyCell || onlyCell.test(cell);
const harnesses = (await loadHarnesses()).filter((h) => !onlyCell || KINDS.some((k) => PHASES.some((p) => selected(`${h.id}:${k}:${p}`))));
/** [target, `kind × phase`, why] of every cell that did not run. */
const skipped: Array<[string, string, string]> = [];

/** Why a cell cannot apply to this target (undefined: it runs). */
function notApplicable(h: ConformanceHarness, fx: ConformanceFixture | undefined, kind: Kind, phase: Phase): string | undefined {
  if (h.skip) return h.skip;
  if (!fx) return `no fixture`;
  if (!injector(fx) && !fx.breakLocally) return `no provider API to fault (${h.noEmulator ?? 'none'}) and no local fault`;
  if (phase === 'finalize' && !fx.target.finalize) return 'no finalize (nothing to clean up after the revocation)';
  if (kind === 'vanished' && !fx.breakLocally) return 'a local-file fault';
  if (kind !== 'vanished' && !injector(fx)) return 'no HTTP: a local file (its seed is asynchronous: a mismatch would race the verify)';
  if (!fx.emulator && NOT_ON_AN_ENGINE[kind]) return NOT_ON_AN_ENGINE[kind];
  if (phase === 'redeploying' && !fx.target.redeploy) return 'no redeploy with this config';
  if (kind === 'mismatch' && phase !== 'verifying' && phase !== 'finalize') return 'a read-back mismatch is a verify fault (and, in finalize, the old key put back before the clean-up)';
  return undefined;
}

/** The target under test as an inventory entry: the harness's adapter, already created. */
function entry(h: ConformanceHarness, fx: ConformanceFixture): TargetInput {
  const registered = TARGETS[h.id as keyof typeof TARGETS] as TargetDefinition<any, any>;
  return { name: h.id, definition: { ...registered, describe: () => fx.target.location, create: async () => fx.target }, config: {} };
}

/** Puts an HTTP fault (or the old key back) on the target's provider until the fault is cleared. */
function armProvider(c: Cell, oldKey: string): Promise<void> {
  if (c.kind === '429') c.fx.failNextWithRateLimit();
  else if (c.kind === 'mismatch') return c.fx.seed(oldKey); // someone put the old key back under us
  else if (c.kind === '403') injector(c.fx)!.failNext(PERMISSION_DENIED[c.h.id] ?? { status: 403, body: { error: 'forbidden (fault matrix)' }, times: forever });
  else if (c.kind !== 'vanished') injector(c.fx)!.failNext(HTTP_FAULTS[c.kind]);
  return Promise.resolve();
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
  let undo = () => injector(c.fx)?.clearFaults();
  const arm = () => {
    if (c.kind === 'vanished') undo = c.fx.breakLocally!();
    else void armProvider(c, oldKey);
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

/** One cell's world: the target under test and an in-memory t0, both on a fresh old key. */
async function cellWorld(c: Cell, stateDir: string, reporter = silentReporter) {
  const oldKey = testKey();
  const newKey = testKey();
  await c.fx.seed(oldKey);
  const store = new MemoryStore();
  store.set('t0', oldKey);
  // Restore is reached by a rollback: the other target's verify fails.
  store.plans.set('t0', { readBack: true, write: [], verify: c.phase === 'restoring' ? ['fail'] : [], restore: [] });
  const targets = [entry(c.h, c.fx), ...memoryTargets(store, 1)];
  return {
    oldKey,
    newKey,
    where: `${c.h.id} × ${c.kind} × ${c.phase}`,
    options: (extra = {}) => engineOptions(targets, stateDir, { retry: { attempts: 2 }, reporter, ...extra }),
    holds: async (): Promise<Record<string, string | null>> => ({ [c.h.id]: await c.fx.peek([oldKey, newKey]), t0: store.values.get('t0') ?? null }),
  };
}

/** Invariant 5: every claim the journal makes about what a target holds is true of the provider. */
async function journalTellsTheTruth(stateDir: string, held: Record<string, string | null>, where: string, changedSince?: string) {
  const last = await latestRotation(stateDir, 'test');
  for (const [name, t] of last?.targets ?? []) {
    if (t.holds === 'unknown' || name === changedSince) continue;
    const actual = held[name];
    expect(actual === null || actual === undefined ? null : fingerprint(actual), `${where}: the journal's ${name}`).toBe(t.holds);
  }
  return last;
}

async function runCell(c: Cell): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'keyrot-faults-'));
  try {
    if (c.phase === 'finalize') return await runFinalizeCell(c, stateDir);
    let fault: ReturnType<typeof faultingReporter> | undefined;
    const w = await cellWorld(c, stateDir, { ...silentReporter, target: (n, p) => fault!.reporter.target(n, p) });
    const { oldKey, newKey, where } = w;
    fault = faultingReporter(c, oldKey);
    const rep: RotationReport | Error = await rotate(w.options(), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) }).catch((e: Error) => e);
    fault.clear();
    const ev = await readJournal(stateDir, 'test');
    const held = await w.holds();
    // Invariant 1: nothing revoked, and the revocation step only once every target verified.
    expect(ev.some((e) => e.step === 'revoke'), where).toBe(false);
    if (!(rep instanceof Error) && rep.outcome === 'awaiting-revocation') expect(held, where).toEqual({ [c.h.id]: newKey, t0: newKey });
    // Invariant 2: the old or the new key, whatever failed.
    for (const v of Object.values(held)) expect([oldKey, newKey], where).toContain(v);
    // A failure names the target and why.
    if (rep instanceof Error) expect(rep.message, where).toMatch(new RegExp(`${c.h.id}|t0`));
    else if (rep.outcome !== 'awaiting-revocation') expect(rep.targets.filter((t) => t.error).map((t) => t.name), `${where}: ${JSON.stringify(rep.targets)}`).not.toEqual([]);
    await journalTellsTheTruth(stateDir, held, where);
    const settled = !(rep instanceof Error) && rep.outcome === 'awaiting-revocation' ? newKey : oldKey;
    if (Object.values(held).some((v) => v !== settled)) await rollBackAll(c, w);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

/** Invariant 5's second half: a rollback finishes what the fault left, every target back on the old key. */
async function rollBackAll(c: Cell, w: Awaited<ReturnType<typeof cellWorld>>): Promise<void> {
  const oldKey = { source: 'stdin' as const, obtain: async () => new Secret(w.oldKey) };
  // As an operator would: run the rollback again while it stops short (a 1 s per-call deadline
  // can pass on a loaded machine, and the rollback then stays resumable instead of finishing).
  let back = await resume(w.options(), { rollback: true, oldKey });
  for (let again = 0; again < 3 && !['rolled-back', 'failed'].includes(back.outcome); again++) back = await resume(w.options(), { rollback: true, oldKey });
  // `failed` when the engine had already decided to roll back (a failure, every target restored).
  expect(['rolled-back', 'failed'], `${w.where}: rollback ${JSON.stringify({ outcome: back.outcome, targets: back.targets, notices: back.notices })}`).toContain(back.outcome);
  expect(await w.holds(), w.where).toEqual({ [c.h.id]: w.oldKey, t0: w.oldKey });
}

/**
 * Finalize runs after the revocation (`keyrot revoke`, prompt mode with --yes): the fault is on
 * the provider for the whole revoke. A finalize failure is reported and leaves everything as it
 * was: the rotation stays completed, no target un-verified, every target on the new key (or, in
 * the mismatch cell, the old key someone put back: finalize must refuse to disable the current
 * value); `keyrot revoke` again, fault gone, finishes the clean-up.
 */
async function runFinalizeCell(c: Cell, stateDir: string): Promise<void> {
  const w = await cellWorld(c, stateDir);
  const { oldKey, newKey, where } = w;
  const rotated = await rotate(w.options(), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
  expect(rotated.outcome, where).toBe('awaiting-revocation');
  await armProvider(c, oldKey);
  const rep: RotationReport | Error = await revoke(w.options()).catch((e: Error) => e);
  injector(c.fx)?.clearFaults();
  const ev = await readJournal(stateDir, 'test');
  // Invariant 1: one revocation, after verified-all; no finalize before it.
  const revokedAt = ev.findIndex((e) => e.step === 'revoke' && e.outcome === 'ok');
  expect(revokedAt, where).toBeGreaterThan(ev.findIndex((e) => e.step === 'verified-all'));
  expect(ev.findIndex((e) => e.step === 'finalize'), where).toBeGreaterThan(revokedAt);
  expect(rep instanceof Error ? rep.message : rep.outcome, where).toBe('completed');
  const held = await w.holds();
  // Invariant 2, and nothing undone: the new key stays (the old one, if put back, is not disabled).
  expect(held, where).toEqual({ [c.h.id]: c.kind === 'mismatch' ? oldKey : newKey, t0: newKey });
  // (In the mismatch cell the journal's claim was true until someone changed the target after the rotation.)
  const last = await journalTellsTheTruth(stateDir, held, where, c.kind === 'mismatch' ? c.h.id : undefined);
  expect([...last!.targets.values()].filter((t) => !t.verified).map((t) => t.info.name), `${where}: un-verified`).toEqual([]);
  const finalized = last!.targets.get(c.h.id)!.finalized;
  if (c.kind === 'mismatch') expect(finalized, `${where}: finalize disabled the current value`).toBe(false);
  if (finalized) return;
  // The failure names the target and why; `keyrot revoke` again finishes the clean-up.
  expect((rep as RotationReport).notices.find((n) => n.code === 'finalize-failed'), where).toMatchObject({ target: c.h.id });
  if (c.kind === 'mismatch') return;
  const again = await revoke(w.options());
  expect(again.outcome, where).toBe('completed');
  expect((await latestRotation(stateDir, 'test'))!.targets.get(c.h.id)!.finalized, `${where}: finalize on retry`).toBe(true);
  expect(await w.holds(), where).toEqual({ [c.h.id]: newKey, t0: newKey });
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
          if (!selected(`${h.id}:${kind}:${phase}`)) continue;
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

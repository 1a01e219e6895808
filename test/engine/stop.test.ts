import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { silentLogger } from '../../src/runtime/logger.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { latestRotation } from '../../src/machine/state.ts';
import { resume } from '../../src/usecases/resume.ts';
import { rotate } from '../../src/usecases/rotate.ts';
import { silentReporter } from '../../src/machine/progress.ts';
import { Secret } from '../../src/core/secret.ts';
import { PromptCancelled } from '../../src/core/errors.ts';
import { testKey } from '../helpers/keys.ts';
import { messagesOf } from '../helpers/messages.ts';
import { MemoryStore, memoryEngine, memoryInventory } from '../helpers/memory-target.ts';

/** SIGTERM mid-rotation: the current step finishes and is journaled, no rollback, then resume. */
it('a stop request ends the rotation after the current step; the next start resumes it', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'keyrot-stop-'));
  try {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    for (let i = 0; i < 3; i++) store.set(`t${i}`, oldKey);
    const { inventory, env } = memoryInventory(store, 3);
    const controller = new AbortController();
    const base = { inventory, env, processEnv: {}, clock: fakeClock(), logger: silentLogger, state: stateDir, reporter: silentReporter, interactive: false, yes: true };
    // The signal arrives while the writes are in flight.
    const origSet = store.set.bind(store);
    store.set = (name, v) => {
      origSet(name, v);
      if (v === newKey) controller.abort(new Error('SIGTERM'));
    };
    const rep = await rotate({ ...base, signal: controller.signal }, { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    store.set = origSet;
    expect(rep.outcome).toBe('interrupted');
    expect(messagesOf(rep).join(' ')).toMatch(/Stopped on request/);
    // Nothing was rolled back, nothing was verified, the journal has no end.
    const last = await latestRotation(stateDir, 'test');
    expect(last?.outcome).toBeUndefined();
    expect(last?.allVerified).toBe(false);
    expect([...store.values.values()].every((v) => v === oldKey || v === newKey)).toBe(true);
    // The next start resumes it to the end.
    const done = await resume(base, { rollback: false });
    expect(done.outcome).toBe('awaiting-revocation');
    for (let i = 0; i < 3; i++) expect(store.values.get(`t${i}`)).toBe(newKey);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});

/** Two memory targets on an old key, in a fresh state directory (removed afterwards). */
async function twoTargets(fn: (stateDir: string, store: MemoryStore, newKey: string) => Promise<void>): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'keyrot-stop-'));
  try {
    const store = new MemoryStore();
    const oldKey = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, oldKey);
    await fn(stateDir, store, testKey());
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

/**
 * Ctrl-C once every target is verified (cli/interrupt.ts): nothing half-done remains, so the
 * rotation ends awaiting revocation (journaled), not interrupted, and nothing more is asked.
 */
it('a stop request during the verify step ends awaiting revocation without asking to revoke', () =>
  twoTargets(async (stateDir, store, newKey) => {
    const controller = new AbortController();
    let asked = false;
    // The stop comes while the last target's verification is in flight: in-flight work finishes.
    const reporter = { ...silentReporter, target: (name: string, phase: string) => name === 't1' && phase === 'verifying' && controller.abort(new Error('SIGINT')) };
    const o = memoryEngine(store, 2, stateDir, {
      reporter,
      signal: controller.signal,
      interactive: true,
      yes: false,
      confirmRevocation: async () => (asked = true),
    });
    const rep = await rotate(o, { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    expect(rep.outcome).toBe('awaiting-revocation');
    expect(asked).toBe(false);
    expect((await latestRotation(stateDir, 'test'))?.outcome).toBe('awaiting-revocation');
  }));

it('a cancelled revocation confirmation (Ctrl-C, Ctrl-D) is "not confirmed": the rotation awaits revocation', () =>
  twoTargets(async (stateDir, store, newKey) => {
    const o = memoryEngine(store, 2, stateDir, {
      interactive: true,
      yes: false,
      confirmRevocation: async () => {
        throw new PromptCancelled('Ctrl-C');
      },
    });
    const rep = await rotate(o, { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    expect(rep.outcome).toBe('awaiting-revocation');
    const last = await latestRotation(stateDir, 'test');
    expect(last?.outcome).toBe('awaiting-revocation');
    expect(last?.revokedAt).toBeUndefined();
  }));

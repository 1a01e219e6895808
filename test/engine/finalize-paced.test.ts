import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { DEFAULT_MAX_CONCURRENCY } from '../../src/targets/types.ts';
import { revoke } from '../../src/usecases/revoke.ts';
import { rotate } from '../../src/usecases/rotate.ts';
import { testKey } from '../helpers/keys.ts';
import { MemoryStore, memoryEngine } from '../helpers/memory-target.ts';

/**
 * After the revocation, a fleet's clean-up (finalize: old versions disabled, old Docker secrets
 * removed) runs in its provider's pacing lane like every other step: never more at once than the
 * lane's window allows, however many targets there are.
 */
it("a fleet's finalize runs in the provider's lane: at most its window at once, every target finalized", async () => {
  const N = 3 * DEFAULT_MAX_CONCURRENCY;
  const stateDir = await mkdtemp(join(tmpdir(), 'keyrot-finalize-'));
  try {
    const store = new MemoryStore();
    const oldKey = testKey();
    for (let i = 0; i < N; i++) {
      store.set(`t${i}`, oldKey);
      store.plans.set(`t${i}`, { readBack: true, write: [], verify: [], restore: [], finalize: [] });
    }
    const engine = () => memoryEngine(store, N, stateDir);
    const rotated = await rotate(engine(), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rotated.outcome).toBe('awaiting-revocation');
    const revoked = await revoke(engine());
    expect(revoked.outcome).toBe('completed');
    expect([...store.finalized.values()]).toEqual(Array(N).fill(1));
    expect(store.maxFinalizing).toBeGreaterThan(1);
    expect(store.maxFinalizing).toBeLessThanOrEqual(DEFAULT_MAX_CONCURRENCY);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});

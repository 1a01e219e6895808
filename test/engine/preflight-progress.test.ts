import { expect, it } from 'vitest';
import { fakeClock } from '../../src/runtime/clock.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { createTargets } from '../../src/machine/live-targets.ts';
import { preflightAll } from '../../src/machine/preflight.ts';
import { testKey } from '../helpers/keys.ts';
import { MemoryStore, memoryInventory } from '../helpers/memory-target.ts';

/** A fleet's display shows each target ready when its preflight ends, not when the slowest one does. */
it('reports each preflight result as soon as it is known', async () => {
  const store = new MemoryStore();
  const key = testKey();
  for (const t of ['t0', 't1']) store.set(t, key);
  const { inventory, env } = memoryInventory(store, 2);
  const clock = fakeClock();
  const live = await createTargets({ inventory, env, processEnv: {}, clock, logger: silentLogger });
  let t0Reported!: () => void;
  const reportedFirst = new Promise<void>((resolve) => (t0Reported = resolve));
  // t1's preflight ends only once t0's result was reported: reporting at the end would never finish.
  const slow = live[1]!.target!;
  const preflight = slow.preflight.bind(slow);
  slow.preflight = async (signal) => {
    await reportedFirst;
    return preflight(signal);
  };
  const reported: string[] = [];
  const results = await preflightAll(live, {
    clock,
    onResult: (name, r) => {
      reported.push(`${name} ${r.status}`);
      if (name === 't0') t0Reported();
    },
  });
  expect(reported).toEqual(['t0 ready', 't1 ready']);
  expect([...results.keys()].sort()).toEqual(['t0', 't1']);
});

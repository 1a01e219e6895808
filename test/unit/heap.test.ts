import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

const HEAP = new URL('../../src/runtime/heap.ts', import.meta.url).href;

/**
 * In a Node process of its own (a V8 flag is process-wide): preferSmallHeap for `targets`, then
 * allocation as a fleet's run does it (many short-lived objects, the last batches still alive),
 * then the young generation's size and what preferSmallHeap answered.
 */
function youngGenerationAfterChurn(targets: number): { small: boolean; newSpaceMiB: number } {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    import { preferSmallHeap } from ${JSON.stringify(HEAP)};
    const small = preferSmallHeap(${targets});
    const live = [];
    for (let round = 0; round < 16; round++) {
      const batch = [];
      for (let i = 0; i < 60000; i++) batch.push({ i, s: 'x' + i });
      live.push(batch);
      if (live.length > 2) live.shift();
    }
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(JSON.stringify({ small, newSpaceMiB: young.space_size / 1048576 }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { small: boolean; newSpaceMiB: number };
}

it('a run over a large fleet keeps V8 young generation small; a small run lets it grow', () => {
  const fleet = youngGenerationAfterChurn(1000);
  expect(fleet.small).toBe(true);
  expect(fleet.newSpaceMiB).toBeLessThanOrEqual(16);
  const few = youngGenerationAfterChurn(10);
  expect(few.small).toBe(false);
  expect(few.newSpaceMiB).toBeGreaterThan(16);
});

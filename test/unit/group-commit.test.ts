import { expect, it } from 'vitest';
import { GroupCommit } from '../../src/state/group-commit.ts';

it('items added together share one commit; items added while it runs share the next; each resolves once its commit returned', async () => {
  const commits: number[][] = [];
  let release!: () => void;
  const group = new GroupCommit<number>(async (items) => {
    commits.push(items);
    if (commits.length === 1) await new Promise<void>((r) => (release = r));
  });
  const durable = new Set<number>();
  const first = [1, 2, 3].map((n) => group.add(n).then(() => durable.add(n)));
  await new Promise((r) => setImmediate(r));
  expect(commits).toEqual([[1, 2, 3]]);
  // While the first commit is in flight: these wait, and none of the first is durable yet.
  const second = [4, 5].map((n) => group.add(n).then(() => durable.add(n)));
  await new Promise((r) => setImmediate(r));
  expect(durable.size).toBe(0);
  release();
  await Promise.all([...first, ...second]);
  expect(commits).toEqual([[1, 2, 3], [4, 5]]);
  expect([...durable].sort()).toEqual([1, 2, 3, 4, 5]);
});

it('a failed commit rejects its own items only; the next commit goes on', async () => {
  let n = 0;
  const group = new GroupCommit<string>(async () => {
    if (++n === 1) throw new Error('disk full');
  });
  const a = group.add('a');
  const b = group.add('b');
  await expect(a).rejects.toThrow('disk full');
  await expect(b).rejects.toThrow('disk full');
  await expect(group.add('c')).resolves.toBeUndefined();
});

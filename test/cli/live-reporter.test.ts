import { expect, it } from 'vitest';
import { ROWS_UP_TO, renderFrame, type TargetState } from '../../src/cli/live-reporter.ts';
import type { TargetPhase } from '../../src/machine/progress.ts';

const T0 = 1_000_000;

function fleet(n: number, phaseOf: (i: number) => TargetPhase, since: (i: number) => number = () => T0 + 1_000): Map<string, TargetState> {
  const types = ['heroku', 'vercel', 'aws-secrets-manager', 'dotenv'];
  return new Map(
    Array.from({ length: n }, (_, i) => {
      const phase = phaseOf(i);
      return [`t${i}`, { phase, since: since(i), type: types[i % 4], detail: phase === 'failed' ? `boom ${i}` : undefined }] as const;
    }),
  );
}

it('at 1000 targets a frame stays one screen: progress bar with ETA, one line per provider, the failures, the slowest in flight', () => {
  // Write step started at T0; 10 s later: 600 written, 10 failed, the rest in flight (10 s per 610: 390 more take 7 s).
  const targets = fleet(1000, (i) => (i < 600 ? 'written' : i < 610 ? 'failed' : 'writing'), (i) => (i >= 610 ? T0 + 500 + i : T0 + 5_000));
  const frame = renderFrame({ step: 'write — 1000 targets', stepSince: T0, targets, now: T0 + 10_000, tick: 0, color: false });
  const lines = frame.split('\n');
  expect(lines.length).toBeLessThanOrEqual(25);
  expect(frame).toMatch(/\[#{18}\.{12}\] 610\/1000, about 7 s left/);
  expect(frame).toMatch(/heroku\s+153\/250 done\s+97 in flight\s+3 failed/);
  expect(frame).toMatch(/dotenv\s+152\/250 done\s+98 in flight\s+2 failed/);
  expect(frame).toContain('failed (10):');
  expect(frame).toContain('t600: boom 600');
  expect(frame).toContain('and 2 more');
  // The slowest in flight: the ones that started first.
  expect(frame).toMatch(/t610: writing 9s/);
  expect(frame).not.toContain('t999');
});

it('targets settled in an earlier step do not count as done in this one', () => {
  const targets = fleet(100, () => 'written', () => T0 - 1);
  const frame = renderFrame({ step: 'verify — 100 targets', stepSince: T0, targets, now: T0 + 1_000, tick: 0, color: false });
  expect(frame).toContain('0/100');
  expect(frame).not.toContain('left');
});

it(`up to ${ROWS_UP_TO} targets: one row each, as before`, () => {
  const targets = fleet(3, (i) => (['writing', 'verified', 'failed'] as const)[i]!);
  const frame = renderFrame({ step: 'write', stepSince: T0, targets, now: T0 + 3_000, tick: 0, color: false });
  expect(frame.split('\n')).toHaveLength(4);
  expect(frame).toMatch(/t0\s+writing 2s/);
  expect(frame).toMatch(/✓\s+t1\s+verified/);
  expect(frame).toMatch(/✗\s+t2\s+FAILED\s+boom 2/);
});

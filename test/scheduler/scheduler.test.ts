import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/runtime/logger.ts';
import { systemClock } from '../../src/runtime/clock.ts';
import { Journal } from '../../src/state/journal.ts';
import { EXIT } from '../../src/core/errors.ts';
import { type RotationReport } from '../../src/machine/outcome.ts';
import { parseInventory, type Environment, type Inventory } from '../../src/inventory/load.ts';
import { checkDue, schedulePeriod, Scheduler, type SchedulerDeps } from '../../src/scheduler/scheduler.ts';
import { localState } from '../../src/state/local.ts';

/**
 * The scheduler under fake time (vitest fake timers drive node-cron and Date): monthly firing,
 * time zones, catch-up after downtime, no double run, unattended key sources only.
 */
let dir: string;
const DAY = 86_400_000;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-sched-'));
});
afterEach(async () => {
  vi.useRealTimers();
  await rm(dir, { recursive: true, force: true });
});

function inventory(schedule: string, source = 'env:NEW_KEY') {
  return parseInventory(
    `version: 1\nkey:\n  source: "${source}"\n  verify: false\nschedule:\n${schedule}\nenvironments:\n  prod:\n    targets:\n      - type: file\n        path: key\n`,
    join(dir, 'targets.yaml'),
  );
}

/** A finished rotation in the journal, at the current (fake) time. */
async function recordRotation(env: string, outcome: 'awaiting-revocation' | 'completed' | 'failed' | null): Promise<string> {
  const id = `rot_${Date.now()}_${Math.random().toString(36).slice(2, 6)}`;
  const j = new Journal(localState(dir), env, id);
  await j.append({ step: 'start', outcome: 'ok', mode: 'rotate', source: 'env:NEW_KEY', oldFingerprint: 'aaaaaaaaaaaa', oldHint: 'sk-...AAAA', targets: [] });
  await j.append({ step: 'key', outcome: 'ok', fingerprint: 'bbbbbbbbbbbb', hint: 'sk-...BBBB' });
  if (outcome === 'awaiting-revocation' || outcome === 'completed') await j.append({ step: 'verified-all', outcome: 'ok' });
  if (outcome) await j.append({ step: 'end', outcome });
  return id;
}

async function harness(inv?: Inventory) {
  inv ??= await inventory('  cron: "0 9 1 * *"\n  timezone: UTC');
  const calls: Array<{ kind: 'rotate' | 'resume' | 'remind'; env: string; at: string }> = [];
  const deps: SchedulerDeps = {
    inventory: inv,
    state: localState(dir),
    clock: { now: () => Date.now(), sleep: systemClock.sleep },
    logger: silentLogger,
    async rotate(env: Environment) {
      calls.push({ kind: 'rotate', env: env.name, at: new Date().toISOString() });
      const rotation = await recordRotation(env.name, 'awaiting-revocation');
      // The operator revokes promptly: the next period finds a completed rotation.
      await new Journal(localState(dir), env.name, rotation).append({ step: 'end', outcome: 'completed' });
      return { env: env.name, outcome: 'completed', exitCode: EXIT.ok, targets: [], notices: [], rotation } satisfies RotationReport;
    },
    async resume(env: Environment) {
      calls.push({ kind: 'resume', env: env.name, at: new Date().toISOString() });
      return { env: env.name, outcome: 'awaiting-revocation', exitCode: EXIT.ok, targets: [], notices: [] } satisfies RotationReport;
    },
    async remind(env: Environment) {
      calls.push({ kind: 'remind', env: env.name, at: new Date().toISOString() });
    },
  };
  return { deps, calls, scheduler: new Scheduler(deps) };
}

describe('schedule period and due checks', () => {
  it('a monthly cron has a period of about a month', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-15T00:00:00Z') });
    const { periodMs, nextRun } = await schedulePeriod('0 9 1 * *', 'UTC', Date.now());
    expect(periodMs).toBeGreaterThanOrEqual(28 * DAY);
    expect(periodMs).toBeLessThanOrEqual(31 * DAY);
    expect(new Date(nextRun!).toISOString()).toBe('2026-02-01T09:00:00.000Z');
  });

  it('never rotated is due; recently rotated is not; older than a period is overdue; interrupted resumes', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-03-10T12:00:00Z') });
    const { deps } = await harness();
    const env = deps.inventory.environments.get('prod')!;
    expect((await checkDue(deps, env, Date.now())).reason).toBe('never-rotated');
    await recordRotation('prod', 'completed');
    expect((await checkDue(deps, env, Date.now())).reason).toBe('not-due');
    expect((await checkDue(deps, env, Date.now() + 40 * DAY)).reason).toBe('overdue');
    await recordRotation('prod', null);
    const c = await checkDue(deps, env, Date.now());
    expect(c.reason).toBe('interrupted');
    expect(c.due).toBe(true);
  });

  it('a rotation awaiting revocation blocks a new one and earns a reminder', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-03-10T12:00:00Z') });
    const { scheduler, calls } = await harness();
    await recordRotation('prod', 'awaiting-revocation');
    vi.setSystemTime(Date.parse('2026-05-10T12:00:00Z'));
    const [r] = await scheduler.runDue();
    expect(r!.action).toBe('reminded');
    expect(calls.map((c) => c.kind)).toEqual(['remind']);
  });

  it('refuses an unattended run whose key source needs a person', async () => {
    const { scheduler, calls } = await harness(await inventory('  cron: "0 9 1 * *"', 'prompt'));
    const [r] = await scheduler.runDue();
    expect(r!.action).toBe('refused');
    expect(r!.detail).toMatch(/env:VAR, file:PATH or openai-admin/);
    expect(calls).toEqual([]);
  });
});

describe('the daemon under fake time', () => {
  it('fires monthly at 09:00 UTC on the 1st, once per month', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-20T00:00:00Z') });
    const { scheduler, calls } = await harness();
    await recordRotation('prod', 'completed'); // rotated on Jan 20: nothing to catch up
    await scheduler.start();
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(Date.parse('2026-02-01T08:59:30Z') - Date.now());
    await scheduler.idle();
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(60_000); // 09:00:30
    await scheduler.idle();
    expect(calls.map((c) => c.kind)).toEqual(['rotate']);
    await vi.advanceTimersByTimeAsync(Date.parse('2026-02-28T23:00:00Z') - Date.now());
    await scheduler.idle();
    expect(calls.length).toBe(1); // nothing else in February
    await vi.advanceTimersByTimeAsync(Date.parse('2026-03-01T09:00:30Z') - Date.now());
    await scheduler.idle();
    expect(calls.length).toBe(2);
    await scheduler.stop();
  });

  it('honours the schedule time zone', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-20T00:00:00Z') });
    const { scheduler, calls } = await harness(await inventory('  cron: "0 9 1 * *"\n  timezone: America/New_York'));
    await recordRotation('prod', 'completed');
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(Date.parse('2026-02-01T13:59:00Z') - Date.now());
    await scheduler.idle();
    expect(calls).toEqual([]); // 09:00 in New York is 14:00 UTC in winter
    await vi.advanceTimersByTimeAsync(2 * 60_000);
    await scheduler.idle();
    expect(calls.length).toBe(1);
    await scheduler.stop();
  });

  it('catches up a run missed while it was down, then does not run twice for that firing', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T09:00:05Z') });
    const { scheduler, calls } = await harness();
    await recordRotation('prod', 'completed');
    // Down through February: starts on Mar 1 at 08:30, the Feb 1 run was missed.
    vi.setSystemTime(Date.parse('2026-03-01T08:30:00Z'));
    await scheduler.start();
    expect(calls.map((c) => c.kind)).toEqual(['rotate']);
    // The 09:00 tick comes half an hour after the catch-up: skipped, no double run.
    await vi.advanceTimersByTimeAsync(Date.parse('2026-03-01T09:01:00Z') - Date.now());
    await scheduler.idle();
    expect(calls.length).toBe(1);
    // April's tick runs.
    await vi.advanceTimersByTimeAsync(Date.parse('2026-04-01T09:01:00Z') - Date.now());
    await scheduler.idle();
    expect(calls.length).toBe(2);
    await scheduler.stop();
  });

  it("a late catch-up does not swallow the next month's run", async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T09:00:05Z') });
    const { scheduler, calls } = await harness();
    await recordRotation('prod', 'completed');
    vi.setSystemTime(Date.parse('2026-02-27T12:00:00Z')); // Feb 1 missed
    await scheduler.start();
    expect(calls.length).toBe(1);
    await vi.advanceTimersByTimeAsync(Date.parse('2026-03-01T09:01:00Z') - Date.now());
    await scheduler.idle();
    expect(calls.length).toBe(2);
    await scheduler.stop();
  });

  it('--once from a daily CronJob finds each monthly run, whatever the month length', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-02-01T09:30:00Z') });
    const { scheduler, calls } = await harness();
    await recordRotation('prod', 'completed'); // Feb 1, 09:30 (the job runs after the 09:00 firing)
    // Every day at 09:30 until Mar 1, then Mar 1.
    for (let day = 2; day <= 28; day++) {
      vi.setSystemTime(Date.parse(`2026-02-${String(day).padStart(2, '0')}T09:30:00Z`));
      await scheduler.runDue();
    }
    expect(calls).toEqual([]);
    vi.setSystemTime(Date.parse('2026-03-01T09:30:00Z'));
    await scheduler.runDue();
    expect(calls.length).toBe(1); // February has 28 days: the run is still found
  });

  it('resumes an interrupted rotation at start before anything else', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-10T00:00:00Z') });
    const { scheduler, calls } = await harness();
    await recordRotation('prod', null);
    await scheduler.start();
    expect(calls.map((c) => c.kind)).toEqual(['resume']);
    await scheduler.stop();
  });

  it('stop() fires no new run', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-20T00:00:00Z') });
    const { scheduler, calls } = await harness();
    await recordRotation('prod', 'completed');
    await scheduler.start();
    await scheduler.stop();
    await vi.advanceTimersByTimeAsync(Date.parse('2026-02-01T09:01:00Z') - Date.now());
    await scheduler.idle();
    expect(calls).toEqual([]);
  });
});

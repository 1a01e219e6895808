import { validateDetailed } from 'node-cron';
import { describe, expect, it } from 'vitest';
import { cronRefusal, cronShapeProblem } from '../../src/inventory/cron.ts';
import { scheduleInfo } from '../../src/scheduler/scheduler.ts';
import { ConfigErrors } from '../../src/core/errors.ts';

/** Schedules node-cron runs: nicknames, names, steps, lists, L / W / #, six fields, doubled spaces. */
const RUNNABLE = [
  '0 9 1 * *',
  '*/5 * * * *',
  '0 0 * * 0',
  '0 0 * * 7',
  '@daily',
  '@MONTHLY',
  '0 9 * * mon-fri',
  '0 9 1 jan,jul *',
  '0 0 L * *',
  '0 0 15W * *',
  '0 0 * * 5#2',
  '0 0 * * 5L',
  '*/75 * * * *',
  '0,30 8-18/2 * * *',
  '30 0 9 1 * *',
  '0  9 1 * *',
];

/** Mistakes targets.yaml's check finds without node-cron (and node-cron refuses too). */
const MALFORMED = ['61 9 1 * *', 'every monday', '0 24 * * *', '0 9 0 * *', '0 9 1 13 *', '0 9 1 * 8', '0 9 1 * * * *', '0 9 1 * *;', '0 0 32W * *', '0-70 * * * *', '0 9\t1 * *', ''];

describe('the cron check targets.yaml gets without node-cron', () => {
  it.each(RUNNABLE)('accepts %j, which node-cron runs', (expr) => {
    expect(validateDetailed(expr).valid).toBe(true);
    expect(cronShapeProblem(expr)).toBeUndefined();
  });

  it.each(MALFORMED)('refuses %j, as node-cron does', (expr) => {
    expect(validateDetailed(expr).valid).toBe(false);
    expect(cronShapeProblem(expr)).toMatch(/\w/);
  });
});

describe('node-cron decides where the schedule is used', () => {
  // 31 February has the shape of a schedule and never comes.
  it('a schedule with the right shape that node-cron refuses is refused before it is used, naming schedule.cron', async () => {
    expect(cronShapeProblem('0 9 31 2 *')).toBeUndefined();
    expect(await cronRefusal('0 9 31 2 *')).toMatch(/dayOfMonth/);
    const err = await scheduleInfo('0 9 31 2 *', 'UTC', Date.now()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigErrors);
    expect((err as ConfigErrors).errors[0]!.field).toBe('schedule.cron');
    expect((err as ConfigErrors).message).toMatch(/fix it in targets\.yaml/);
  });

  it('a runnable schedule still gives its period', async () => {
    expect(await cronRefusal('0 9 1 * *')).toBeUndefined();
    const info = await scheduleInfo('0 9 * * *', 'UTC', Date.now());
    expect(info.periodMs).toBe(86_400_000);
  });
});

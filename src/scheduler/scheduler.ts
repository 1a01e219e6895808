import type { Logger } from '../runtime/logger.ts';
import type { Clock } from '../runtime/clock.ts';
import { readJournal } from '../state/journal.ts';
import { currentKey, latestRotation, replay, type RotationState } from '../machine/state.ts';
import type { RotationReport } from '../machine/outcome.ts';
import type { Environment, Inventory } from '../inventory/load.ts';
import type { StateStore } from '../state/store.ts';
import { ConfigError, ConfigErrors } from '../core/errors.ts';
import { cronRefusal } from '../inventory/cron.ts';

/** What the scheduler needs from the outside: injected, so tests drive it with fake time. */
export interface SchedulerDeps {
  inventory: Inventory;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  /** Runs a new rotation of the environment (unattended: key from env:, file: or openai-admin). */
  rotate(env: Environment, signal: AbortSignal): Promise<RotationReport>;
  /** Continues the environment's interrupted rotation. */
  resume(env: Environment, signal: AbortSignal): Promise<RotationReport>;
  /** A reminder that a revocation still waits (no new rotation starts meanwhile). */
  remind(env: Environment, last: RotationState): Promise<void>;
  /** Each time an environment is checked for a due run (the daemon's last-tick metric). */
  onCheck?(env: Environment, check: DueCheck, now: number): void;
}

export type DueReason = 'interrupted' | 'never-rotated' | 'overdue' | 'awaiting-revocation' | 'not-due';

export interface DueCheck {
  env: string;
  due: boolean;
  reason: DueReason;
  detail: string;
  /** When the key now in place was rotated in (ms), if keyrot did it. */
  lastRotatedAt: number | null;
  periodMs: number;
  nextRun: number | null;
}

/** Key sources an unattended run can use: never a prompt or standard input. */
export function unattendedSourceProblem(env: Environment): string | undefined {
  const s = env.keySource;
  if (s === 'prompt' || s === 'stdin') {
    return `environment "${env.name}" takes its new key from "${s}", which needs a person: set key.source (or environments.${env.name}.key.source) to env:VAR, file:PATH or openai-admin for scheduled runs`;
  }
  return undefined;
}

/**
 * The schedule's period (the shortest gap between its next firings: a monthly cron → 28 days),
 * its next run, and when it first fires after a given instant, all in the schedule's time zone
 * (node-cron computes them).
 */
export async function scheduleInfo(
  cron: string,
  timezone: string,
  now: number,
): Promise<{ periodMs: number; nextRun: number | null; firstFiringAfter: (t: number) => number }> {
  await refuseUnrunnable(cron);
  const { createTask } = await import('node-cron');
  const task = createTask(cron, () => {}, { timezone });
  try {
    const runs = task.getNextRuns(4).map((d) => d.getTime());
    const gaps = runs.slice(1).map((t, i) => t - runs[i]!);
    const periodMs = gaps.length ? Math.min(...gaps) : 30 * 86_400_000;
    const next = runs.find((t) => t > now) ?? null;
    // node-cron 4's task keeps its TimeMatcher (getNextMatch(date) is what its own scheduler
    // uses); without it, one period after `t` is the fallback.
    const matcher = (task as unknown as { timeMatcher?: { getNextMatch(d: Date): Date } }).timeMatcher;
    const firstFiringAfter = (t: number) => (matcher ? matcher.getNextMatch(new Date(t)).getTime() : t + periodMs);
    return { periodMs, nextRun: next, firstFiringAfter };
  } finally {
    await task.destroy();
  }
}

/**
 * targets.yaml's check of `schedule.cron` is its shape (inventory/cron.ts, without node-cron);
 * node-cron itself decides here, before a schedule is used, and a refusal says what to fix.
 */
async function refuseUnrunnable(cron: string): Promise<void> {
  const why = await cronRefusal(cron);
  if (why) throw new ConfigErrors([new ConfigError(`"${cron}" is not a schedule node-cron can run (${why}): fix it in targets.yaml`, undefined, 'schedule.cron')]);
}

/** Kept for callers that only need the period and the next run. */
export async function schedulePeriod(cron: string, timezone: string, now: number): Promise<{ periodMs: number; nextRun: number | null }> {
  const { periodMs, nextRun } = await scheduleInfo(cron, timezone, now);
  return { periodMs, nextRun };
}

/** When the key in place was rotated in: the last rotation that got every target verified. */
export function lastRotatedAt(rotations: RotationState[]): number | null {
  return currentKey(rotations)?.since ?? null;
}

/**
 * Is a run due? An interrupted rotation is always resumed first; a key keyrot never rotated, or
 * one older than the schedule's period, is rotated (catch-up after downtime); a rotation still
 * awaiting revocation blocks a new one (and earns a reminder).
 */
export async function checkDue(deps: SchedulerDeps, env: Environment, now: number): Promise<DueCheck> {
  const schedule = env.schedule;
  const info = schedule ? await scheduleInfo(schedule.cron, schedule.timezone, now) : null;
  const periodMs = info?.periodMs ?? Infinity;
  const nextRun = info?.nextRun ?? null;
  const rotations = replay(await readJournal(deps.state, env.name));
  const last = rotations[rotations.length - 1];
  const rotatedAt = lastRotatedAt(rotations);
  const base = { env: env.name, lastRotatedAt: rotatedAt, periodMs, nextRun };
  if (last && last.outcome === undefined) {
    return { ...base, due: true, reason: 'interrupted', detail: `rotation ${last.id} was interrupted: resuming it` };
  }
  if (last?.outcome === 'awaiting-revocation') {
    const overdue = rotatedAt !== null && now - rotatedAt >= periodMs;
    return {
      ...base,
      due: false,
      reason: 'awaiting-revocation',
      detail: `rotation ${last.id} still awaits revocation of ${last.oldHint ?? 'the old key'} (${last.oldFingerprint})${overdue ? '; the schedule is overdue until it is revoked' : ''}`,
    };
  }
  if (rotatedAt === null) {
    return { ...base, due: true, reason: 'never-rotated', detail: 'keyrot has not rotated this key yet: its age is unknown, so it is treated as due' };
  }
  // Due when the schedule has fired since the key was rotated in: the run of that firing is owed
  // (a missed one is caught up; a CronJob firing at any time of the day finds it).
  const firing = info ? info.firstFiringAfter(rotatedAt) : Infinity;
  if (firing <= now) {
    return { ...base, due: true, reason: 'overdue', detail: `last rotated ${new Date(rotatedAt).toISOString()}; the schedule fired at ${new Date(firing).toISOString()} since` };
  }
  return { ...base, due: false, reason: 'not-due', detail: `last rotated ${new Date(rotatedAt).toISOString()}; next run ${nextRun ? new Date(nextRun).toISOString() : '—'}` };
}

export interface RunResult {
  env: string;
  action: 'rotated' | 'resumed' | 'reminded' | 'skipped' | 'refused' | 'error';
  report?: RotationReport;
  detail: string;
}

/**
 * The scheduler. `runDue()` is `keyrot schedule --once` (and the catch-up at daemon start);
 * `start()` installs one node-cron task per scheduled environment. One run at a time per
 * environment (the state lock enforces it across processes too).
 */
export class Scheduler {
  readonly deps: SchedulerDeps;
  readonly #abort = new AbortController();
  readonly #running = new Map<string, Promise<RunResult>>();
  readonly #tasks: Array<{ stop(): void | Promise<void>; destroy(): void | Promise<void> }> = [];

  constructor(deps: SchedulerDeps) {
    this.deps = deps;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  scheduledEnvs(): Environment[] {
    return [...this.deps.inventory.environments.values()].filter((e) => e.schedule);
  }

  /** Runs one environment if due; `fromTick` = the cron fired (then "due" also means this period's run). */
  runEnv(env: Environment, fromTick = false): Promise<RunResult> {
    const busy = this.#running.get(env.name);
    if (busy) {
      this.deps.logger.info('run already in progress: skipped', { env: env.name });
      return Promise.resolve({ env: env.name, action: 'skipped', detail: 'a run of this environment is already in progress' });
    }
    const p = this.#run(env, fromTick).finally(() => this.#running.delete(env.name));
    this.#running.set(env.name, p);
    return p;
  }

  async #run(env: Environment, fromTick: boolean): Promise<RunResult> {
    const { logger } = this.deps;
    if (this.signal.aborted) return { env: env.name, action: 'skipped', detail: 'stopping' };
    const now = this.deps.clock.now();
    const check = await checkDue(this.deps, env, now);
    this.deps.onCheck?.(env, check, now);
    // No double run: a tick right after a rotation (a catch-up at start just before the firing, a
    // duplicate firing) is skipped when the key was rotated in within the last hour (or quarter
    // period, for frequent schedules).
    const window = Math.min(3_600_000, check.periodMs / 4);
    const justRotated = fromTick && check.lastRotatedAt !== null && now - check.lastRotatedAt < window;
    if (!check.due || (justRotated && check.reason === 'overdue')) {
      if (check.reason === 'awaiting-revocation') {
        const last = await latestRotation(this.deps.state, env.name);
        if (last) await this.deps.remind(env, last);
        logger.info('revocation pending: no new rotation', { env: env.name, detail: check.detail });
        return { env: env.name, action: 'reminded', detail: check.detail };
      }
      logger.info('not due', { env: env.name, detail: check.detail });
      return { env: env.name, action: 'skipped', detail: check.detail };
    }
    if (check.reason === 'interrupted') {
      logger.info('resuming an interrupted rotation', { env: env.name, detail: check.detail });
      try {
        const report = await this.deps.resume(env, this.signal);
        return { env: env.name, action: 'resumed', report, detail: report.outcome };
      } catch (err) {
        logger.error('resume failed', { env: env.name, error: (err as Error).message });
        return { env: env.name, action: 'error', detail: (err as Error).message };
      }
    }
    const problem = unattendedSourceProblem(env);
    if (problem) {
      logger.error('cannot rotate unattended', { env: env.name, error: problem });
      return { env: env.name, action: 'refused', detail: problem };
    }
    logger.info('rotation due', { env: env.name, reason: fromTick ? 'schedule' : check.reason, detail: check.detail });
    try {
      const report = await this.deps.rotate(env, this.signal);
      logger.info('rotation finished', { env: env.name, outcome: report.outcome, rotation: report.rotation });
      return { env: env.name, action: 'rotated', report, detail: report.outcome };
    } catch (err) {
      logger.error('rotation failed to start', { env: env.name, error: (err as Error).message });
      return { env: env.name, action: 'error', detail: (err as Error).message };
    }
  }

  /** `--once`: everything due now, one environment after another. */
  async runDue(): Promise<RunResult[]> {
    const out: RunResult[] = [];
    for (const env of this.scheduledEnvs()) {
      if (this.signal.aborted) break;
      out.push(await this.runEnv(env));
    }
    return out;
  }

  /** The daemon: catch up what was missed, then fire on each environment's cron in its time zone. */
  async start(): Promise<RunResult[]> {
    const { createTask } = await import('node-cron');
    for (const env of this.scheduledEnvs()) {
      const s = env.schedule!;
      await refuseUnrunnable(s.cron);
      const task = createTask(s.cron, () => void this.runEnv(env, true), { timezone: s.timezone, name: `keyrot-${env.name}` });
      await task.start();
      this.#tasks.push(task);
      this.deps.logger.info('scheduled', { env: env.name, cron: s.cron, timezone: s.timezone, next: task.getNextRun()?.toISOString() ?? null });
    }
    return this.runDue();
  }

  /** Resolves when no run is in flight. */
  async idle(): Promise<void> {
    while (this.#running.size) await Promise.allSettled([...this.#running.values()]);
  }

  /** SIGTERM/SIGINT: no new step starts; the current one finishes and is journaled. */
  async stop(): Promise<void> {
    this.#abort.abort(new Error('stop requested'));
    for (const t of this.#tasks) await t.destroy();
    this.#tasks.length = 0;
    await Promise.allSettled([...this.#running.values()]);
  }
}

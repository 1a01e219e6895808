import { createLogger, type Logger } from '../../runtime/logger.ts';
import { EXIT } from '../../core/errors.ts';
import type { Reporter } from '../../machine/progress.ts';
import type { RotationReport } from '../../machine/outcome.ts';
import type { RotationState } from '../../machine/state.ts';
import { resume } from '../../usecases/resume.ts';
import { rotate } from '../../usecases/rotate.ts';
import { Scheduler, type RunResult } from '../../scheduler/scheduler.ts';
import { adminIssuer, commandContext, commandFlags, notifyReport, obtainNewKey, refusalError, unattendedNewKey, type CommandContext, type CommonFlags } from '../context.ts';
import { selectEnvironment, type Environment, type Inventory } from '../../inventory/load.ts';
import { DaemonMetrics } from '../../ops/metrics.ts';
import { parseListen } from '../../ops/listen.ts';
import { observe, push, pushgatewayUrl, serveMetrics } from '../../ops/observe.ts';
import type { Column } from '../table.ts';
import { keyrotCommand } from '../../render/command.ts';
import { UsageWatch, type WatchResult } from '../../scheduler/usage-watch.ts';
import { sendNotification } from '../../scheduler/notify.ts';
import { ADMIN_API_PROVIDER } from '../../keys/openai-admin-api.ts';

const SCHEDULE_COLUMNS: Column[] = [
  { header: 'ENV', min: 8 },
  { header: 'ACTION', fit: 'fixed' },
  { header: 'DETAIL', fit: 'wrap', min: 24 },
];

/** In daemon mode every step is a structured log line. */
function logReporter(logger: Logger, env: string): Reporter {
  return {
    step: (name, detail) => logger.info('step', { env, step: name, detail }),
    target: (name, phase, detail) => logger.info('target', { env, target: name, phase, detail }),
    info: (m) => logger.info(m, { env }),
    warn: (m) => logger.warn(m, { env }),
  };
}

function engineFor(ctx: CommandContext, env: Environment, logger: Logger, signal: AbortSignal) {
  return {
    inventory: ctx.inventory,
    env,
    processEnv: ctx.processEnv,
    clock: ctx.clock,
    logger,
    state: ctx.state,
    reporter: logReporter(logger, env.name),
    admin: adminIssuer(ctx, env),
    interactive: false,
    yes: true,
    signal,
  };
}

/** What a reminder says: the rotation's report rebuilt from the journal. */
function reportFromState(last: RotationState): RotationReport {
  return {
    rotation: last.id,
    env: last.env,
    outcome: 'awaiting-revocation',
    exitCode: EXIT.ok,
    old: last.oldFingerprint ? { hint: last.oldHint ?? '', fingerprint: last.oldFingerprint } : null,
    new: last.newFingerprint ? { hint: last.newHint ?? '', fingerprint: last.newFingerprint } : null,
    targets: [],
    notices: [],
  };
}

export interface ScheduleFlags extends CommonFlags {
  once?: boolean;
  listen?: string;
  pushgateway?: string;
}

/**
 * `keyrot schedule`: the daemon (node-cron, one task per scheduled environment, catch-up at start,
 * JSON log lines on stdout), or `--once`: run what is due and exit (for cron / a Kubernetes CronJob).
 * SIGTERM/SIGINT let the current step finish and be journaled; the next start resumes.
 * `--listen` serves /metrics and /healthz meanwhile; `--pushgateway` pushes them after `--once`.
 */
export async function schedule(flags: ScheduleFlags): Promise<number> {
  // Flags are checked before anything else: a bad one is a usage error (exit 2) that changes nothing.
  const listen = flags.listen !== undefined ? parseListen(flags.listen) : null;
  const pushgateway = flags.pushgateway !== undefined ? pushgatewayUrl(flags.pushgateway, flags.once) : null;
  const ctx = await commandContext(flags);
  const logger = flags.once
    ? createLogger({ json: Boolean(flags.json), level: ctx.out.verbose ? 'debug' : ctx.out.quiet ? 'warn' : 'info' })
    : createLogger({ json: true, level: 'info', write: (l) => process.stdout.write(l + '\n') });
  const inventory = scheduledInventory(ctx, flags.env);
  const metrics = new DaemonMetrics();
  const scheduler = createScheduler(ctx, inventory, logger, metrics);
  const watch = createUsageWatch(ctx, inventory, logger, metrics);
  if (!scheduler.scheduledEnvs().length && !watch.envs.length) {
    logger.warn(`no environment of ${ctx.configPath} has a schedule or a usage watch: add schedule.cron or watch: (top level or per environment)`);
    return EXIT.usage;
  }
  const observability = observe(ctx, inventory, metrics);
  const server = listen ? await serveMetrics(observability, listen, logger) : null;
  try {
    stopOnSignals(scheduler, logger);
    if (flags.once) {
      const results = await scheduler.runDue();
      const watched = await watch.pollAll();
      printResults(ctx, results, watched);
      if (pushgateway) await push(observability, pushgateway, logger);
      // A usage alert is a problem found (exit 1), like a failed run; a watch that could not run is logged.
      const failed = results.some((r) => r.action === 'error' || r.action === 'refused' || (r.report && r.report.exitCode !== EXIT.ok));
      return failed || watched.some((w) => w.alerts.length) ? EXIT.failed : EXIT.ok;
    }
    return await runDaemon(ctx, scheduler, watch, logger);
  } finally {
    await server?.close();
  }
}

/** The inventory, or only the environment -e names (a usage error naming the others if it has no such one). */
function scheduledInventory(ctx: CommandContext, only: string | undefined): Inventory {
  if (!only) return ctx.inventory;
  selectEnvironment(ctx.inventory, only);
  return { ...ctx.inventory, environments: new Map([...ctx.inventory.environments].filter(([n]) => n === only)) };
}

/** The command context of a daemon part: its OpenAI Admin API failures count in keyrot_provider_errors_total. */
function counted(ctx: CommandContext, metrics: DaemonMetrics): CommandContext {
  return { ...ctx, onAdminApiError: (err) => metrics.countProviderError(ADMIN_API_PROVIDER, err) };
}

export function createScheduler(daemon: CommandContext, inventory: Inventory, logger: Logger, metrics: DaemonMetrics): Scheduler {
  const ctx = counted(daemon, metrics);
  const engine = (env: Environment, signal: AbortSignal) => ({ ...engineFor(ctx, env, logger, signal), onProviderError: metrics.countProviderError });
  return new Scheduler({
    inventory,
    state: ctx.state,
    clock: ctx.clock,
    logger,
    async rotate(env, signal) {
      const source = env.keySource;
      const report = await rotate(engine(env, signal), {
        mode: 'rotate',
        source,
        obtainKey: (at) => obtainNewKey(ctx, env, source, at, false),
      }).catch((err) => Promise.reject(refusalError(ctx, env, err)));
      await notifyReport(ctx, report, 'rotate', logger);
      return report;
    },
    async resume(env, signal) {
      // Unattended recovery needs no person: the new key from the inventory's own source when it
      // is env:/file:, and when it cannot be had at all, the rotation is undone instead.
      const report = await resume(engine(env, signal), {
        rollback: false,
        newKey: unattendedNewKey(ctx, env),
        rollbackWhenNewKeyUnavailable: true,
      }).catch((err) => Promise.reject(refusalError(ctx, env, err)));
      await notifyReport(ctx, report, 'rotate', logger);
      return report;
    },
    async remind(_env, last) {
      await notifyReport(ctx, reportFromState(last), 'rotate', logger);
    },
    onCheck: (_env, _check, now) => {
      metrics.lastTick = now;
    },
  });
}

function stopOnSignals(scheduler: Scheduler, logger: Logger): void {
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info('stop requested: finishing the current step', { signal: sig });
    void scheduler.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function runDaemon(ctx: CommandContext, scheduler: Scheduler, watch: UsageWatch, logger: Logger): Promise<number> {
  logger.info('keyrot scheduler started', { config: ctx.configPath, environments: scheduler.scheduledEnvs().map((e) => e.name), watched: watch.envs.map((e) => e.name) });
  const watching = watch.run(scheduler.signal);
  await scheduler.start();
  // Runs until a signal (which may already have come during the catch-up): node-cron's timers keep
  // the process alive meanwhile.
  if (!scheduler.signal.aborted) {
    await new Promise<void>((resolve) => scheduler.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  await scheduler.stop();
  await watching;
  logger.info('keyrot scheduler stopped');
  return EXIT.ok;
}

function printResults(ctx: CommandContext, results: RunResult[], watched: WatchResult[]): void {
  if (ctx.out.json) {
    ctx.out.result({
      results: results.map((r) => ({ env: r.env, action: r.action, detail: r.detail, outcome: r.report?.outcome, rotation: r.report?.rotation })),
      watch: watched.map((w) => ({ env: w.env, up: w.up, detail: w.detail, alerts: w.alerts })),
    });
    return;
  }
  const silent = !ctx.inventory.config.notify?.webhook;
  const rows = results.map((r) => {
    const detail = r.report ? `${r.report.outcome} ${r.report.rotation ?? ''}` : r.detail;
    return [r.env, r.action, r.action === 'reminded' && silent ? `${detail} (no notify.webhook: nobody was notified; revoke it, then \`${keyrotCommand(ctx.flags, 'revoke', '-e', r.env)}\`)` : detail];
  });
  for (const w of watched) rows.push([w.env, w.up ? 'watched' : 'watch down', w.alerts.length ? w.alerts.map((a) => a.text).join('\n') : w.detail]);
  ctx.out.human(ctx.out.table(SCHEDULE_COLUMNS, rows, { indent: '' }));
}

/** The usage watch of the inventory's watched environments (`watch:`), alerts to watch.webhook or notify.webhook. */
export function createUsageWatch(daemon: CommandContext, inventory: Inventory, logger: Logger, metrics: DaemonMetrics): UsageWatch {
  const ctx = counted(daemon, metrics);
  return new UsageWatch(
    {
      state: ctx.state,
      clock: ctx.clock,
      logger,
      flags: commandFlags(ctx),
      marginMs: ctx.inventory.config.revoke.disuse.margin,
      admin: (env) => adminIssuer(ctx, env),
      async send(env, alert) {
        const webhook = env.watch?.webhook ?? ctx.inventory.config.notify?.webhook;
        if (!webhook) return null;
        const field = env.watch?.webhook ? 'watch.webhook' : 'notify.webhook';
        return sendNotification(webhook, alert, { baseDir: ctx.inventory.baseDir, env: ctx.processEnv, clock: ctx.clock, logger, field });
      },
      onPoll: (r) => metrics.watchUp.set(r.env, r.up),
    },
    [...inventory.environments.values()],
  );
}

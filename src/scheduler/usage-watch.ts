import { TargetError, toTargetError } from '../core/errors.ts';
import type { Environment } from '../inventory/load.ts';
import type { KeyIssuer as AdminApi } from '../keys/openai-admin.ts';
import { rotationsOf } from '../machine/state.ts';
import type { CommandFlags } from '../render/command.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { appendAudit, readAudit } from '../state/audit-log.ts';
import type { StateStore } from '../state/store.ts';
import { alertAuditEntry, alreadyAlerted, usageAlert, type UsageAlert } from '../usage/alert.ts';
import { pollUsage } from '../usage/watch.ts';

export interface UsageWatchDeps {
  state: StateStore;
  clock: Clock;
  logger: Logger;
  /** The user's -c / --state-dir, repeated in the command an alert says to run. */
  flags: CommandFlags;
  /** Use of an idle key within this long after the switch is requests in flight (revoke.disuse.margin). */
  marginMs: number;
  /** The OpenAI Admin API client of key.admin; undefined when key.admin is not configured. */
  admin(env: Environment): (() => Promise<AdminApi>) | undefined;
  /** POSTs the alert to the watch's webhook: true delivered, false failed, null no webhook. */
  send(env: Environment, alert: UsageAlert): Promise<boolean | null>;
  /** After each poll (the keyrot_usage_watch_up metric). */
  onPoll?(result: WatchResult): void;
}

export interface WatchResult {
  env: string;
  /** The watch could read the Admin API this time. */
  up: boolean;
  /** Alerts raised by this poll (not the ones already raised today). */
  alerts: UsageAlert[];
  detail: string;
}

/**
 * The daemon's usage watch: every `watch.interval`, per watched environment, the Admin API's usage
 * and last use of its keys (src/usage/watch.ts). Each alert is raised once per (environment, key,
 * reason, UTC day): "already raised" is read from the audit log, where each alert is recorded,
 * because the audit log is in the state store (local or cluster), so a restarted daemon, a
 * `--once` run from cron and a second replica agree on it; and an auditor sees the alerts there.
 * A watch that cannot run (no key.admin, the Admin API failing) says so and is reported down; it
 * never stops the scheduler.
 */
export class UsageWatch {
  readonly #deps: UsageWatchDeps;
  readonly envs: Environment[];

  constructor(deps: UsageWatchDeps, envs: Environment[]) {
    this.#deps = deps;
    this.envs = envs.filter((e) => e.watch);
  }

  async poll(env: Environment): Promise<WatchResult> {
    // A provider error is the Admin API's; anything else (the state store) is the watch's own.
    const down = (err: unknown): WatchResult => {
      if (!(err instanceof TargetError)) return this.#down(env, `the poll failed: ${toTargetError(err).message}`);
      // The Admin API client itself tells the daemon's metrics of its failures (cli/context.ts).
      return this.#down(env, `the OpenAI Admin API failed: ${err.message}`);
    };
    const result = await this.#poll(env).catch(down);
    this.#deps.onPoll?.(result);
    return result;
  }

  async #poll(env: Environment): Promise<WatchResult> {
    const { state, clock, logger } = this.#deps;
    const admin = this.#deps.admin(env);
    if (!admin) return this.#down(env, 'key.admin is not configured: the usage watch reads the OpenAI Admin API (add key.admin with a token that can read usage and API keys)');
    const now = clock.now();
    const rotations = await rotationsOf(state, env.name);
    const found = await pollUsage(await admin(), rotations, env.watch!, this.#deps.marginMs, now);
    for (const u of found.unwatched) logger.warn('usage watch: key not watched', { env: env.name, key: u.key, why: u.why });
    const alerts: UsageAlert[] = [];
    const audit = found.findings.length ? (await readAudit(state)).entries : [];
    for (const f of found.findings) {
      const alert = usageAlert(env.name, f, env.watch!, now, this.#deps.flags);
      if (alreadyAlerted(audit, alert)) continue;
      const delivered = await this.#deps.send(env, alert);
      await appendAudit(state, alertAuditEntry(alert, delivered), clock.now());
      logger.warn(alert.text, { env: env.name, event: 'usage-alert', reason: alert.reason, key: `${alert.key.hint} ${alert.key.fingerprint}`, delivered });
      alerts.push(alert);
    }
    const keys = rotations.length ? '' : ` (no key of ${env.name} in keyrot's journal yet: nothing to watch until the first rotation)`;
    logger.info('usage watched', { env: env.name, alerts: alerts.length, detail: keys || undefined });
    return { env: env.name, up: true, alerts, detail: `${alerts.length} new alert(s)${keys}` };
  }

  #down(env: Environment, why: string): WatchResult {
    this.#deps.logger.warn(`usage watch of ${env.name} not running: ${why}`, { env: env.name });
    return { env: env.name, up: false, alerts: [], detail: `not running: ${why}` };
  }

  /** `--once`: each watched environment once. */
  async pollAll(): Promise<WatchResult[]> {
    const out: WatchResult[] = [];
    for (const env of this.envs) out.push(await this.poll(env));
    return out;
  }

  /** The daemon: polls each environment now and every `interval` until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all(
      this.envs.map(async (env) => {
        while (!signal.aborted) {
          await this.poll(env);
          await this.#deps.clock.sleep(env.watch!.interval, signal).catch(() => {});
        }
      }),
    );
  }
}

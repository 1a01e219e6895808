import type { IncomingMessage } from 'node:http';
import { Pushgateway, type Registry } from 'prom-client';
import { EXIT, ExitError } from '../core/errors.ts';
import type { Inventory } from '../inventory/load.ts';
import type { Logger } from '../runtime/logger.ts';
import type { StateStore } from '../state/store.ts';
import { readStatus } from '../usecases/status.ts';
import type { ListenAddress } from './listen.ts';
import { metricsRegistry, type DaemonMetrics } from './metrics.ts';
import { startMetricsServer, type Health } from './metrics-server.ts';

export interface Observability {
  collect(): Promise<Registry>;
  health(): Promise<Health>;
}

/** Metrics and health of the scheduled inventory, read from the state store at each call. */
export function observe(ctx: { state: StateStore; clock: { now(): number } }, inventory: Inventory, daemon: DaemonMetrics): Observability {
  const status = async () => {
    try {
      return { ok: await readStatus(inventory, ctx.state, ctx.clock.now()) };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };
  return {
    async collect() {
      const s = await status();
      return metricsRegistry(inventory, s.ok ?? null, daemon, ctx.clock.now());
    },
    async health() {
      const s = await status();
      const lastTick = daemon.lastTick === null ? null : new Date(daemon.lastTick).toISOString();
      return { ok: Boolean(s.ok), stateReachable: Boolean(s.ok), lastTick, ...(s.error ? { detail: `the state store cannot be read: ${s.error}` } : {}) };
    },
  };
}

export async function serveMetrics(o: Observability, address: ListenAddress, logger: Logger): Promise<{ close(): Promise<void> }> {
  const server = await startMetricsServer({ address, collect: o.collect, health: o.health });
  logger.info('serving metrics', { metrics: `${server.url}/metrics`, health: `${server.url}/healthz` });
  if (!address.loopback) {
    logger.warn(`--listen ${address.host}: metrics are served beyond this machine (they name environments, targets and rotation times, never a key); restrict who can reach port ${address.port}`);
  }
  return server;
}

/**
 * `--pushgateway URL`: with --once only (a daemon is scraped). http:// is allowed anywhere, unlike
 * provider endpoints: the push carries metrics, no credential (and an in-cluster Pushgateway is
 * usually plain http://pushgateway.monitoring:9091); credentials in the URL are refused.
 */
export function pushgatewayUrl(raw: string, once: boolean | undefined): URL {
  if (!once) throw new ExitError(EXIT.usage, '--pushgateway goes with --once (a CronJob run pushes its figures when done); a daemon is scraped: use --listen');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ExitError(EXIT.usage, `--pushgateway ${JSON.stringify(raw)} is not a URL (expected http(s)://host:9091)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ExitError(EXIT.usage, `--pushgateway: ${url.protocol} is not http: or https:`);
  if (url.username || url.password) throw new ExitError(EXIT.usage, '--pushgateway: credentials do not belong in the URL (they would be logged and shown in ps)');
  return url;
}

/**
 * PUT /metrics/job/keyrot: the run's figures replace the previous run's (Pushgateway's "push"
 * semantics, https://github.com/prometheus/pushgateway#put-method). A failed push is logged, not
 * fatal: the rotation itself is done and journaled.
 */
export async function push(o: Observability, url: URL, logger: Logger): Promise<void> {
  const registry = await o.collect();
  const gateway = new Pushgateway(url.href, { timeout: 30_000, headers: { 'Content-Type': registry.contentType } }, registry);
  try {
    const { resp } = (await gateway.push({ jobName: 'keyrot' })) as { resp?: IncomingMessage };
    const status = resp?.statusCode ?? 0;
    // prom-client resolves every status below 400: a redirect means nothing was stored.
    if (status < 200 || status >= 300) throw new Error(`HTTP ${status}${resp?.headers.location ? ` (redirect to ${resp.headers.location}: use that URL)` : ''}`);
    logger.info('metrics pushed', { pushgateway: url.host });
  } catch (err) {
    logger.warn(`could not push metrics to the Pushgateway at ${url.host}: ${(err as Error).message}`);
  }
}

import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { ListenAddress } from './listen.ts';

export interface Health {
  ok: boolean;
  stateReachable: boolean;
  lastTick: string | null;
  detail?: string;
}

export interface MetricsServerOptions {
  address: ListenAddress;
  /** A fresh registry per scrape: the figures are derived from the state at that moment. */
  collect(): Promise<Registry>;
  health(): Promise<Health>;
}

/**
 * `/metrics` (Prometheus text format, from prom-client) and `/healthz` (JSON; 503 when the state
 * store cannot be read). GET and HEAD only; nothing else is served.
 */
export async function startMetricsServer(o: MetricsServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const answer = path === '/metrics' ? metrics(o) : path === '/healthz' ? health(o) : Promise.resolve({ status: 404, type: 'text/plain', body: 'not found: /metrics and /healthz are served here\n' });
    answer
      .catch((err: unknown) => ({ status: 500, type: 'text/plain', body: `${(err as Error).message}\n` }))
      .then((r) => res.writeHead(r.status, { 'content-type': r.type, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : r.body));
  });
  await listen(server, o.address);
  const bound = server.address() as { port: number };
  const host = o.address.host.includes(':') ? `[${o.address.host}]` : o.address.host;
  return {
    url: `http://${host}:${bound.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function metrics(o: MetricsServerOptions) {
  const registry = await o.collect();
  return { status: 200, type: registry.contentType, body: await registry.metrics() };
}

async function health(o: MetricsServerOptions) {
  const h = await o.health();
  return { status: h.ok ? 200 : 503, type: 'application/json', body: JSON.stringify(h) + '\n' };
}

function listen(server: Server, a: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot serve metrics on ${a.host}:${a.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`)),
    );
    server.listen(a.port, a.host, () => resolve());
  });
}

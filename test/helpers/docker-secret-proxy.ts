import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * A loopback TCP front for a real Engine's unix socket (what a docker-socket-proxy is): lets the
 * tests reach the Engine through `DOCKER_HOST=tcp://127.0.0.1:<port>`, record every request
 * keyrot makes (method, path, body), and act before a request is forwarded (change the service
 * under keyrot's feet, or answer once with an error the Engine gives under failure).
 */
export interface RecordedRequest {
  method: string;
  path: string;
  body: string;
}

export interface ProxyHookResult {
  /** Answer this instead of forwarding (fault injection). */
  respond?: { status: number; body: unknown };
  /** Destroy the connection instead of answering (ECONNRESET on the client). */
  reset?: boolean;
  /** Take the request and never answer (until the client gives up or the proxy closes). */
  hang?: boolean;
}

export interface EngineProxy {
  host: string;
  requests: RecordedRequest[];
  /** Runs before forwarding each request; the first hook that returns something wins. */
  hook: ((req: RecordedRequest) => Promise<ProxyHookResult | void> | ProxyHookResult | void) | undefined;
  close(): Promise<void>;
}

export async function startEngineProxy(socketPath: string): Promise<EngineProxy> {
  const proxy: EngineProxy = {
    host: '',
    requests: [],
    hook: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const recorded: RecordedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', body: body.toString('utf8') };
    proxy.requests.push(recorded);
    try {
      const out = await proxy.hook?.(recorded);
      if (out?.reset) return void req.socket.destroy();
      if (out?.hang) return;
      if (out && out.respond) {
        const text = JSON.stringify(out.respond.body);
        res.writeHead(out.respond.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
    } catch (err) {
      res.writeHead(599);
      res.end(String(err));
      return;
    }
    const headers = { ...req.headers };
    delete headers.host;
    const up = request({ socketPath, method: req.method, path: req.url, headers: { ...headers, host: 'docker' } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (err) => {
      res.writeHead(502);
      res.end(String(err));
    });
    up.end(body);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.host = `tcp://127.0.0.1:${(server.address() as { port: number }).port}`;
  return proxy;
}

/** What a fault matrix injects, the subset of the emulators' `Fault` an Engine front can answer. */
export interface EngineFault {
  status?: number;
  body?: unknown;
  reset?: boolean;
  hang?: 'headers' | 'body';
  /** How many requests it applies to (default 1). */
  times?: number;
}

/** The emulators' failNext/clearFaults over the proxy's hook: the next requests answer `fault` instead of the Engine. */
export function proxyFaults(proxy: EngineProxy): { failNext(fault: EngineFault): void; clearFaults(): void } {
  const queue: EngineFault[] = [];
  proxy.hook = () => {
    const f = queue[0];
    if (!f) return;
    f.times = (f.times ?? 1) - 1;
    if (f.times <= 0) queue.shift();
    if (f.reset) return { reset: true };
    if (f.hang) return { hang: true };
    return { respond: { status: f.status ?? 500, body: f.body ?? {} } };
  };
  return {
    failNext: (fault) => void queue.push({ ...fault }),
    clearFaults: () => void (queue.length = 0),
  };
}

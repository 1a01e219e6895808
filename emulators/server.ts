import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * The small HTTP framework every loopback emulator is built on: routes, a request log,
 * fault injection (status + headers + body, delays, connection resets) and a loud answer to
 * unknown routes. Emulators bind 127.0.0.1 only.
 */
export interface EmuRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** Parsed JSON when the body is JSON, else the raw text ('' when none). */
  body: unknown;
  rawBody: string;
  params: Record<string, string>;
}

export interface EmuResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export type EmuHandler = (req: EmuRequest) => EmuResponse | Promise<EmuResponse>;

export interface Fault {
  method?: string;
  /** Exact path or a pattern. Omitted: any request. */
  path?: string | RegExp;
  /** Respond with this (e.g. 429 with Retry-After, 503). */
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Destroy the socket instead of answering (ECONNRESET on the client). */
  reset?: boolean;
  /** Wait before answering (timeouts). */
  delayMs?: number;
  /**
   * Accept the request and never finish the answer: `headers` sends nothing at all, `body` sends
   * a 200 with the start of a JSON body and then stalls. The connection stays open until the
   * client gives up (or the emulator stops): a provider that takes a request and goes silent.
   */
  hang?: 'headers' | 'body';
  /** Only requests this predicate accepts (e.g. the one whose body carries the key). */
  when?: (req: { method: string; path: string; rawBody: string }) => boolean;
  /** How many matching requests it applies to (default 1). */
  times?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  headers: IncomingMessage['headers'];
  rawBody: string;
  /** The status answered; -1 for a reset, -2 for a hang (never answered, or a stalled body). */
  status: number;
  at: number;
}

interface Route {
  method: string;
  re: RegExp;
  keys: string[];
  handler: EmuHandler;
}

function compile(pattern: string): { re: RegExp; keys: string[] } {
  const keys: string[] = [];
  const src = pattern
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) {
        const greedy = seg.endsWith('*');
        keys.push(seg.slice(1).replace(/\*$/, ''));
        return greedy ? '(.+)' : '([^/]+)';
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { re: new RegExp(`^${src}$`), keys };
}

export interface EmulatorOptions {
  name: string;
  /** TLS material for HTTPS emulators (Azure Key Vault requires https). */
  tls?: { key: string; cert: string };
  /** The provider's shape of a 404 for an unknown route. */
  notFound?: (req: EmuRequest) => EmuResponse;
  /** Added to every answer (a provider's network round trip); settable later through `latencyMs`. */
  latencyMs?: number;
}

export class EmulatorServer {
  readonly name: string;
  readonly requests: RecordedRequest[] = [];
  private readonly routes: Route[] = [];
  private readonly faults: Fault[] = [];
  private server: Server | undefined;
  private readonly opts: EmulatorOptions;
  url = '';
  /** Every answer waits this long (the fleet benchmark's 25 ms round trip); 0 by default. */
  latencyMs: number;

  constructor(opts: EmulatorOptions) {
    this.name = opts.name;
    this.opts = opts;
    this.latencyMs = opts.latencyMs ?? 0;
  }

  route(method: string, pattern: string, handler: EmuHandler): this {
    const { re, keys } = compile(pattern);
    this.routes.push({ method: method.toUpperCase(), re, keys, handler });
    return this;
  }

  /** Inject a fault for the next matching request(s). */
  failNext(fault: Fault): this {
    this.faults.push({ times: 1, ...fault });
    return this;
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Requests that reached a route (not the ones a fault answered), for assertions. */
  calls(method: string, path: string | RegExp): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.method === method.toUpperCase() && (typeof path === 'string' ? r.path === path : path.test(r.path)),
    );
  }

  async start(port = 0): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = this.opts.tls ? createHttpsServer(this.opts.tls, handler) : createHttpServer(handler);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    this.url = `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${addr.port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections?.();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private takeFault(method: string, path: string, rawBody: string): Fault | undefined {
    const i = this.faults.findIndex(
      (f) =>
        (!f.method || f.method.toUpperCase() === method) &&
        (!f.path || (typeof f.path === 'string' ? f.path === path : f.path.test(path))) &&
        (!f.when || f.when({ method, path, rawBody })),
    );
    if (i < 0) return undefined;
    const f = this.faults[i]!;
    f.times = (f.times ?? 1) - 1;
    if (f.times <= 0) this.faults.splice(i, 1);
    return f;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = (req.method ?? 'GET').toUpperCase();
    const path = decodeURIComponent(url.pathname);
    const record: RecordedRequest = {
      method,
      path,
      query: url.search,
      headers: req.headers,
      rawBody,
      status: 0,
      at: Date.now(),
    };
    this.requests.push(record);

    const fault = this.takeFault(method, path, rawBody);
    const delayMs = (fault?.delayMs ?? 0) + this.latencyMs;
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    if (fault?.reset) {
      record.status = -1;
      req.socket.destroy();
      return;
    }
    if (fault?.hang) {
      record.status = -2;
      if (fault.hang === 'body') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
        res.write('{"');
      }
      return;
    }
    let out: EmuResponse;
    let body: unknown = rawBody;
    if (rawBody && /json/.test(req.headers['content-type'] ?? '')) {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = rawBody;
      }
    }
    const emuReq: EmuRequest = { method, path, query: url.searchParams, headers: req.headers, body, rawBody, params: {} };
    if (fault?.status) {
      out = { status: fault.status, headers: fault.headers, body: fault.body };
    } else {
      const route = this.routes.find((r) => r.method === method && r.re.test(path));
      if (!route) {
        out = this.opts.notFound?.(emuReq) ?? {
          status: 404,
          body: { error: { message: `${this.name} emulator: no route for ${method} ${path}` } },
        };
      } else {
        const m = route.re.exec(path)!;
        route.keys.forEach((k, i) => (emuReq.params[k] = m[i + 1]!));
        try {
          out = await route.handler(emuReq);
        } catch (err) {
          out = { status: 500, body: { error: { message: `${this.name} emulator bug: ${(err as Error).message}` } } };
        }
      }
    }
    record.status = out.status;
    const headers: Record<string, string> = { ...out.headers };
    let payload = '';
    if (out.body !== undefined) {
      if (typeof out.body === 'string') {
        payload = out.body;
        headers['content-type'] ??= 'text/plain';
      } else {
        payload = JSON.stringify(out.body);
        headers['content-type'] ??= 'application/json';
      }
    }
    res.writeHead(out.status, headers);
    res.end(payload);
  }
}

/**
 * What every HTTP emulator is around its EmulatorServer: the base URL once started, start (on a
 * given port, or any free one), stop. A provider's emulator extends it with its routes and test
 * helpers only; tests reach the request log, latency and fault injection through `server`.
 */
export abstract class HttpEmulator {
  readonly server: EmulatorServer;

  protected constructor(opts: EmulatorOptions) {
    this.server = new EmulatorServer(opts);
  }

  /** `http(s)://127.0.0.1:<port>` once started ('' before). */
  get url(): string {
    return this.server.url;
  }

  start(port?: number): Promise<string> {
    return this.server.start(port);
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}

/** Bearer token from an Authorization header, or undefined. */
export function bearer(req: EmuRequest): string | undefined {
  const h = req.headers.authorization;
  return h && /^Bearer\s+/i.test(h) ? h.replace(/^Bearer\s+/i, '') : undefined;
}

import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { TargetError, type TargetErrorKind } from '../core/errors.ts';
import { kindForStatus, redirectRefused } from '../runtime/http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../runtime/deadline.ts';
import { formatDuration } from '../inventory/duration.ts';
import { DEFAULT_DOCKER_HOST } from './docker-secret/index.ts';
import { providerText } from '../core/printable.ts';
import type { Lane } from '../runtime/pacer.ts';

/**
 * A minimal Docker Engine API client: plain HTTP/1.1 over the daemon's unix socket (or a plain
 * `tcp://` endpoint such as a socket proxy) with node:http, shared by the docker-secret and
 * docker-compose targets and the image scanner. No dockerode: it would add a dependency tree
 * (docker-modem, ssh2, tar-fs...) loaded at start-up for the few endpoints keyrot uses, and one
 * more thing to keep patched; the Engine API is a documented, versioned REST API.
 *
 * Reference: Docker Engine API (https://docs.docker.com/reference/api/engine/).
 */

export { DEFAULT_DOCKER_HOST };

/**
 * Below API 1.30 the daemon itself resolves image digests against the registry on every service
 * create/update (moby api/server/router/swarm/cluster_routes.go: `if versions.LessThan(v, "1.30")
 * { queryRegistry = true }`): a secret swap must not depend on reaching a registry.
 */
export const MIN_API_VERSION = '1.30';

export type DockerHost =
  | { kind: 'unix'; socketPath: string; display: string }
  | { kind: 'tcp'; host: string; port: number; display: string };

/**
 * Where the Engine is: the target's `endpoint:`, else `DOCKER_HOST`, else the default socket.
 * Only what keyrot can do faithfully is accepted: TLS (`DOCKER_TLS_VERIFY`), `ssh://` and named
 * pipes are refused with a way around, rather than half-supported.
 */
export function parseDockerHost(raw: string | undefined, env: NodeJS.ProcessEnv): DockerHost {
  const value = (raw ?? '').trim() || DEFAULT_DOCKER_HOST;
  const unsupported = (why: string) => new TargetError(why, { kind: 'unsupported', retryable: false });
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    if (!socketPath.startsWith('/')) {
      throw new TargetError(`DOCKER_HOST ${value} is not an absolute socket path (unix:///var/run/docker.sock)`, {
        kind: 'invalid',
        retryable: false,
      });
    }
    return { kind: 'unix', socketPath, display: value };
  }
  if (value.startsWith('ssh://')) {
    throw unsupported(
      `DOCKER_HOST ${value.replace(/\/\/[^@/]*@/, '//')}: keyrot does not speak ssh to the Docker Engine; run keyrot on the manager, ` +
        'or forward the socket (ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock manager) and set DOCKER_HOST=unix:///tmp/docker.sock',
    );
  }
  if (value.startsWith('npipe://')) throw unsupported(`DOCKER_HOST ${value}: Windows named pipes are not supported`);
  const m = /^(tcp|http|https):\/\/([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(value);
  if (!m) {
    throw new TargetError(`DOCKER_HOST ${value} is not a Docker host (unix:///path or tcp://host:port)`, {
      kind: 'invalid',
      retryable: false,
    });
  }
  if (m[1] === 'https' || (env.DOCKER_TLS_VERIFY ?? '') !== '') {
    throw unsupported(
      `DOCKER_HOST ${value} with TLS (DOCKER_TLS_VERIFY): keyrot talks to the Engine over its unix socket or plain HTTP only; ` +
        'run keyrot on a manager node with the socket, or forward it (ssh -L /tmp/docker.sock:/var/run/docker.sock manager)',
    );
  }
  const host = m[2]!.replace(/^\[|\]$/g, '');
  const port = m[3] ? Number(m[3]) : 2375;
  return { kind: 'tcp', host, port, display: `tcp://${m[2]}:${port}` };
}

/** `1.41` vs `1.9`: numeric by component. */
export function compareApiVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequest {
  method: string;
  /** Path with query string, unversioned (`/version`) or already versioned. */
  path: string;
  body?: Buffer | string;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** A Docker API answer that was not 2xx: the Engine's own `{"message"}` and the status, for callers to branch on. */
export class DockerApiError extends TargetError {
  readonly dockerMessage: string;
  readonly method: string;
  readonly path: string;
  constructor(message: string, init: { kind: TargetErrorKind; status: number; dockerMessage: string; method: string; path: string; retryable?: boolean }) {
    super(message, { kind: init.kind, status: init.status, retryable: init.retryable });
    this.dockerMessage = init.dockerMessage;
    this.method = init.method;
    this.path = init.path;
  }
}

/**
 * What a caller needs from the Engine, for the words of its errors: which socket, and what a
 * socket proxy in front of it must allow (Tecnativa docker-socket-proxy section names).
 */
export interface EngineNeeds {
  /** "the Docker socket of a swarm manager". */
  socket: string;
  /** What to point DOCKER_HOST at: "the manager's socket". */
  pointAt: string;
  /** "SECRETS, SERVICES, TASKS, INFO and POST". */
  proxyAllow: string;
}

export const SWARM_NEEDS: EngineNeeds = {
  socket: 'the Docker socket of a swarm manager',
  pointAt: "the manager's socket",
  proxyAllow: 'SECRETS, SERVICES, TASKS, INFO and POST',
};

export interface EngineInfo {
  /** Product version, e.g. `20.10.24+dfsg1`. */
  version: string;
  /** The API version keyrot speaks to it. */
  apiVersion: string;
  minApiVersion: string;
}

export class DockerEngine {
  readonly host: DockerHost;
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #needs: EngineNeeds;
  readonly #lane: Lane | undefined;
  #info: Promise<EngineInfo> | undefined;

  /** `lane`: the pacing lane every exchange goes through (the targets'; the image scanner has none). */
  constructor(host: DockerHost, opts: { timeoutMs?: number; needs?: EngineNeeds; lane?: Lane } = {}) {
    this.host = host;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#needs = opts.needs ?? SWARM_NEEDS;
    this.#lane = opts.lane;
    // Keep-alive: waits poll the Engine every second. Idle sockets are unref'd by node:http.
    this.#agent = new Agent({ keepAlive: true, maxSockets: 8 });
  }

  /**
   * One HTTP exchange, no interpretation of the status, through the lane when there is one (the
   * Engine publishes no rate; a proxy's 429 would still slow the lane down). Network failures become TargetErrors.
   */
  raw(req: RawRequest): Promise<RawResponse> {
    if (!this.#lane) return this.#exchange(req);
    return this.#lane.request(() => this.#exchange(req), { signal: req.signal, answerOf: (res) => ({ status: res.status }) });
  }

  #exchange(req: RawRequest): Promise<RawResponse> {
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (body) {
      headers['content-type'] = req.contentType ?? 'application/json';
      headers['content-length'] = body.length;
    }
    const target =
      this.host.kind === 'unix'
        ? { socketPath: this.host.socketPath, host: 'docker' }
        : { host: this.host.host, port: this.host.port };
    return new Promise<RawResponse>((resolve, reject) => {
      const signals = [AbortSignal.timeout(req.timeoutMs ?? this.#timeoutMs)];
      if (req.signal) signals.push(req.signal);
      const signal = AbortSignal.any(signals);
      const r = httpRequest({ ...target, method: req.method, path: req.path, headers, agent: this.#agent, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (err) => reject(this.#networkError(err, req)));
      });
      r.on('error', (err) => reject(this.#networkError(err, req)));
      r.end(body);
    });
  }

  /**
   * The Engine's version, negotiated once: keyrot speaks the Engine's own newest API version
   * (`GET /version` → `ApiVersion`, what an unversioned path would get). Pinning one fails both
   * ways: Debian's docker.io 20.10 answers 400 "client version 1.42 is too new", Docker 29 answers 400 "client version 1.41 is too old. Minimum supported API version is
   * 1.44". And a service update sends back the complete spec it read: speaking an older version
   * than the Engine's would let the daemon drop spec fields that version does not know.
   */
  info(signal?: AbortSignal): Promise<EngineInfo> {
    this.#info ??= this.#negotiate(signal).catch((err: unknown) => {
      this.#info = undefined;
      throw err;
    });
    return this.#info;
  }

  async #negotiate(signal?: AbortSignal): Promise<EngineInfo> {
    const res = await this.raw({ method: 'GET', path: '/version', signal });
    if (res.status !== 200) throw this.#apiError(res, 'GET', '/version');
    const v = parseJson(res.body) as { Version?: string; ApiVersion?: string; MinAPIVersion?: string } | undefined;
    const apiVersion = v?.ApiVersion;
    if (!apiVersion || !/^\d+\.\d+$/.test(apiVersion)) {
      throw new TargetError(`${this.host.display} does not look like a Docker Engine (GET /version has no ApiVersion)`, {
        kind: 'invalid',
        retryable: false,
      });
    }
    if (compareApiVersions(apiVersion, MIN_API_VERSION) < 0) {
      throw new TargetError(
        `the Docker Engine at ${this.host.display} (${v?.Version ?? 'unknown version'}) speaks API ${apiVersion}; keyrot needs API ${MIN_API_VERSION} or newer (Docker 17.06+): upgrade the Engine`,
        { kind: 'unsupported', retryable: false },
      );
    }
    return { version: v?.Version ?? 'unknown', apiVersion, minApiVersion: v?.MinAPIVersion ?? MIN_API_VERSION };
  }

  /**
   * A versioned JSON call. Non-2xx answers throw DockerApiError with the Engine's message; a
   * "client version is too new/old" answer (the Engine was upgraded under us) renegotiates once.
   * `timeoutMs` replaces the per-call deadline for calls the Engine answers only when done (a
   * restart waits for the container's stop timeout).
   */
  async call<T = unknown>(method: string, path: string, body?: unknown, signal?: AbortSignal, opts: { timeoutMs?: number } = {}): Promise<T> {
    return parseJson(await this.callRaw(method, path, body, signal, opts)) as T;
  }

  /** As `call`, the answer's body as bytes (an exec's output stream). */
  async callRaw(method: string, path: string, body?: unknown, signal?: AbortSignal, opts: { timeoutMs?: number } = {}): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      const { apiVersion } = await this.info(signal);
      const versioned = `/v${apiVersion}${path}`;
      const res = await this.raw({
        method,
        path: versioned,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        timeoutMs: opts.timeoutMs,
      });
      if (res.status >= 200 && res.status < 300) return res.body;
      const err = this.#apiError(res, method, path);
      if (attempt === 1 && res.status === 400 && /client version .* is too (new|old)/i.test(err.dockerMessage)) {
        this.#info = undefined;
        continue;
      }
      throw err;
    }
  }

  close(): void {
    this.#agent.destroy();
  }

  #apiError(res: RawResponse, method: string, path: string): DockerApiError {
    const parsed = parseJson(res.body) as { message?: unknown } | undefined;
    // The Engine's errors are {"message": ...}; any other body (a proxy's page) is not printed.
    const dockerMessage = typeof parsed?.message === 'string' ? providerText(parsed.message, 500) : '';
    const where = `${method} ${path.split('?')[0]}`;
    // node:http never follows a redirect; a socket proxy that answers one gets an error naming it.
    if (res.status >= 300 && res.status < 400) {
      const location = typeof res.headers.location === 'string' ? res.headers.location : undefined;
      const from = this.host.kind === 'tcp' ? `http://${this.host.host}:${this.host.port}` : 'http://docker';
      const refused = redirectRefused({
        provider: `the Docker Engine at ${this.host.display}`,
        status: res.status,
        location,
        from,
        fix: 'point DOCKER_HOST (or the target’s `endpoint:`) at the Engine’s socket or its socket proxy itself',
      });
      return new DockerApiError(refused.message, { kind: 'invalid', status: res.status, dockerMessage, method, path, retryable: false });
    }
    // Swarm endpoints on a node outside swarm mode or on a worker: 503 with this message (Engine
    // 20.10: "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\"
    // to connect this node to swarm and try again."; on a worker: "... Worker nodes can't be used
    // to view or modify cluster state..."). Retrying will not help.
    if (res.status === 503 && /not a swarm manager|not part of a swarm/i.test(dockerMessage)) {
      const worker = /worker/i.test(dockerMessage);
      return new DockerApiError(
        worker
          ? `the Docker Engine at ${this.host.display} is a swarm worker, not a manager: secrets and services can only be changed on a manager. Point DOCKER_HOST at a manager node (docker node ls on a manager lists them) or promote this node (docker node promote)`
          : `the Docker Engine at ${this.host.display} is not a swarm manager: Docker secrets need swarm mode. On a single host run "docker swarm init"; otherwise point DOCKER_HOST at a manager node`,
        { kind: 'unavailable', status: 503, dockerMessage, method, path, retryable: false },
      );
    }
    if (res.status === 403) {
      return new DockerApiError(
        `${this.host.display} refused ${where} (403${dockerMessage ? `: ${dockerMessage}` : ''}): if a socket proxy sits in front of the Engine, allow ${this.#needs.proxyAllow}`,
        { kind: 'permission', status: 403, dockerMessage, method, path },
      );
    }
    return new DockerApiError(
      `the Docker Engine at ${this.host.display} answered ${res.status} to ${where}${dockerMessage ? `: ${dockerMessage}` : ''}`,
      { kind: kindForStatus(res.status), status: res.status, dockerMessage, method, path },
    );
  }

  #networkError(err: unknown, req: RawRequest): TargetError {
    const e = err as NodeJS.ErrnoException & { name?: string };
    if (e.name === 'TimeoutError' || (e.name === 'AbortError' && !req.signal?.aborted)) {
      return new TargetError(`the Docker Engine at ${this.host.display} did not answer ${req.method} ${req.path.split('?')[0]} within ${formatDuration(req.timeoutMs ?? this.#timeoutMs)}`, {
        kind: 'timeout',
        cause: err,
      });
    }
    if (e.name === 'AbortError') return new TargetError('cancelled', { kind: 'timeout', retryable: false, cause: err });
    const code = e.code ?? 'network error';
    if (code === 'EACCES' || code === 'EPERM') {
      return new TargetError(
        `permission denied on ${this.host.display}: keyrot needs ${this.#needs.socket} (root, or a member of the docker group: that access is root-equivalent)`,
        { kind: 'permission', retryable: false, cause: err },
      );
    }
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      return new TargetError(
        `cannot reach the Docker Engine at ${this.host.display} (${code}): is dockerd running there? Set DOCKER_HOST (or the target's endpoint) to ${this.#needs.pointAt}`,
        { kind: 'unavailable', retryable: false, cause: err },
      );
    }
    return new TargetError(`lost the connection to the Docker Engine at ${this.host.display} (${code})`, {
      kind: 'unavailable',
      retryable: true,
      cause: err,
    });
  }
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

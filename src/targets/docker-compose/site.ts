import { readFile, realpath } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { TargetError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { DockerEngine, parseDockerHost, type EngineNeeds } from '../docker-engine.ts';
import { sha256Hex, sha256Seen, type Seen } from '../docker-exec.ts';
import { waitTimeoutMs, type CommonTargetConfig, type TargetContext } from '../types.ts';
import { serviceContainers, viewOf, type HostFile, type ServiceContainer } from './containers.ts';
import { dockerCompose, type DockerComposeConfig } from './index.ts';
import { laneOf } from '../common.ts';
import type { Lifecycle } from './lifecycle.ts';
import { unreachable } from './plan-lines.ts';

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

const COMPOSE_NEEDS: EngineNeeds = {
  socket: 'the Docker socket of the host that runs the Compose project',
  pointAt: "that host's socket",
  proxyAllow: 'CONTAINERS, IMAGES, NETWORKS, EXEC and POST',
};

/** What a `verify: exec` check should see: the hash of the variable's value, or of the whole file. */
export interface Expected {
  env: string | null;
  file: string | null;
}

/**
 * One docker-compose target's place: the host file, the project's services on the Engine, and
 * how each container sees the key. The Engine client is made on first use, so an unusable
 * DOCKER_HOST is reported by preflight, not when the inventory loads.
 */
export class ComposeSite {
  readonly rel: string;
  readonly path: string;
  /** The variable, for an env file; undefined for a key file. */
  readonly envVar: string | undefined;
  readonly waitMs: number;
  readonly callMs: number;
  readonly config: DockerComposeConfig & CommonTargetConfig;
  readonly ctx: TargetContext & { name: string };
  #engine: DockerEngine | undefined;

  constructor(config: DockerComposeConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.config = config;
    this.ctx = ctx;
    this.rel = (config.file ?? config.env_file)!;
    this.path = isAbsolute(this.rel) ? this.rel : resolve(ctx.baseDir, this.rel);
    this.envVar = config.env_file !== undefined ? ctx.varName : undefined;
    this.waitMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
    this.callMs = waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
  }

  /** The Engine's rate-limit domain: one pacing lane per Docker host, shared by the host's Compose targets. */
  get rateLimitKey(): string {
    return `docker-compose:${this.config.endpoint ?? this.ctx.env.DOCKER_HOST ?? 'default'}`;
  }

  get engine(): DockerEngine {
    // Every exchange through the host's lane: the Engine publishes no limit, but a socket proxy's
    // 429 (with its Retry-After) slows all the host's targets down, as for docker-secret.
    this.#engine ??= new DockerEngine(parseDockerHost(this.config.endpoint ?? this.ctx.env.DOCKER_HOST, this.ctx.env), {
      timeoutMs: this.callMs,
      needs: COMPOSE_NEEDS,
      lane: laneOf(this.ctx, this.rateLimitKey, dockerCompose),
    });
    return this.#engine;
  }

  lifecycle(signal?: AbortSignal): Lifecycle {
    return { engine: this.engine, callMs: this.callMs, signal };
  }

  fail(message: string, kind: TargetError['kind']): TargetError {
    return new TargetError(message, { target: this.ctx.name, kind, retryable: false });
  }

  async hostFile(): Promise<HostFile> {
    return { path: this.path, real: await realpath(this.path).catch(() => this.path) };
  }

  /** Every container of the services, with how it sees the file; what keeps keyrot from reaching one. */
  async survey(signal?: AbortSignal): Promise<{ containers: ServiceContainer[]; problems: string[] }> {
    const file = await this.hostFile();
    const { project, services } = this.config;
    const containers: ServiceContainer[] = [];
    const problems: string[] = [];
    for (const service of services) {
      const found = await serviceContainers(this.engine, project, service, signal);
      if (!found.length) {
        problems.push(`service ${service} of Compose project ${project} has no containers on the Docker Engine at ${this.engine.host.display}: start it (docker compose -p ${project} up -d ${service}) or fix services:/project: of this target`);
      }
      for (const c of found) {
        const view = await viewOf(c, service, file, this.envVar);
        const why = unreachable(view, this.rel, this.envVar);
        if (why) problems.push(why);
        else containers.push(view);
      }
    }
    return { containers, problems };
  }

  async expected(value: Secret | null): Promise<Expected> {
    const bytes = await readFile(this.path).catch(() => null);
    return { env: value ? sha256Hex(value.reveal()) : null, file: bytes ? sha256Hex(bytes) : null };
  }

  /** verify: exec in one running container (`id`): the deliveries where it does not see what it should. */
  async execCheck(c: ServiceContainer, id: string, expected: Expected, signal?: AbortSignal): Promise<string[]> {
    const wrong: string[] = [];
    for (const d of c.deliveries) {
      const seen: Seen = d.kind === 'env' ? { env: this.envVar! } : { file: d.path };
      const hash = await sha256Seen(this.engine, id, c.name, seen, { deadlineMs: this.callMs, clock: this.ctx.clock, signal });
      if (hash !== (d.kind === 'env' ? expected.env : expected.file)) wrong.push(d.kind === 'env' ? `${this.envVar} in its environment` : d.path);
    }
    return wrong;
  }

  close(): void {
    this.#engine?.close();
    this.#engine = undefined;
  }
}

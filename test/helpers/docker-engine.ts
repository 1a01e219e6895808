import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, closeSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { DockerEngine, parseDockerHost } from '../../src/targets/docker-engine.ts';
import { ensureBusyboxImage } from '../../emulators/docker/busybox-image.ts';

/**
 * A REAL Docker Engine in swarm mode for the docker-secret tests.
 *
 * Which Engine: `KEYROT_TEST_DOCKER_HOST` when set (used as is; a swarm is initialised if it has
 * none). Otherwise keyrot's own private dockerd, started here when it is not running yet:
 * `dockerd --bridge=none --iptables=false --ip6tables=false` with its own data-root, exec-root,
 * pidfile, socket and an empty config file under /var/lib/keyrot-test-docker/<name>/ (never the
 * developer's /var/run/docker.sock, whose swarm state tests must not change). It is left running
 * for the next test file or run (vitest workers share it); each start begins from an empty data-root
 * (see startDockerd), and the Engine is initialised
 * as a single-node swarm (`swarm init --advertise-addr 127.0.0.1`, through the API).
 *
 * Services are created with `Replicas: 0` from an image that does not exist anywhere: through the
 * API at version >= 1.30 the daemon does not resolve images on service create/update (the CLI
 * does, unless `--no-resolve-image`), and with no task nothing is pulled or run.
 *
 * No Engine: the tests FAIL when CI=true, and are skipped with the reason otherwise.
 */

export const TEST_DOCKER_ROOT = process.env.KEYROT_TEST_DOCKERD_ROOT ?? '/var/lib/keyrot-test-docker';
/** An image reference that is never pulled: services using it run with 0 replicas. */
export const ABSENT_IMAGE = 'keyrot-test/absent:0';

export interface SecretMount {
  secret: string;
  target: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

export interface ServiceOptions {
  replicas?: number;
  image?: string;
  args?: string[];
  updateConfig?: Record<string, unknown>;
  labels?: Record<string, string>;
  /** Restart delay of failed tasks, in ns. */
  restartDelay?: number;
}

export interface TestDocker {
  /** The DOCKER_HOST value of this Engine. */
  host: string;
  env: NodeJS.ProcessEnv;
  engine: DockerEngine;
  createSecret(name: string, value: string, labels?: Record<string, string>): Promise<string>;
  createService(name: string, mounts: SecretMount[], opts?: ServiceOptions): Promise<string>;
  service(name: string): Promise<any>;
  secret(idOrName: string): Promise<any | null>;
  /** Secrets whose name starts with `prefix`. */
  secrets(prefix: string): Promise<any[]>;
  removeService(name: string): Promise<void>;
  /** Removes services then secrets whose names start with `prefix`. */
  cleanup(prefix: string): Promise<void>;
  close(): void;
}

export type EngineOrSkip = TestDocker | { skip: string };

/** A unique, Docker-valid name for this test run. */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/**
 * The test Engine. `swarm: false` gives a second private Engine that is NOT in a swarm (for the
 * "not a swarm manager" case); stop it with `stopPrivateEngine('plain')` when done.
 */
export async function dockerEngine(opts: { swarm?: boolean } = {}): Promise<EngineOrSkip> {
  const swarm = opts.swarm ?? true;
  let host: string;
  if (swarm && process.env.KEYROT_TEST_DOCKER_HOST) {
    host = process.env.KEYROT_TEST_DOCKER_HOST;
  } else {
    const started = await ensurePrivateEngine(swarm ? 'swarm' : 'plain');
    if ('skip' in started) return orFail(started.skip);
    host = `unix://${started.socket}`;
  }
  const engine = new DockerEngine(parseDockerHost(host, {}));
  try {
    await engine.info();
    if (swarm) await ensureSwarm(engine);
  } catch (err) {
    engine.close();
    return orFail(`the Docker Engine at ${host} is not usable: ${(err as Error).message}`);
  }
  return wrap(host, engine);
}

function orFail(reason: string): { skip: string } {
  if (process.env.CI === 'true') {
    throw new Error(
      `docker-secret tests need a real Docker Engine and CI=true: ${reason}. Install Debian's docker.io (apt-get install -y docker.io) and run as root, or set KEYROT_TEST_DOCKER_HOST to a swarm manager.`,
    );
  }
  return { skip: `no Docker Engine for the docker-secret tests: ${reason}` };
}

function findExecutable(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  return null;
}

/** GET /_ping on a unix socket: true when the Engine answers OK. */
export function ping(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function paths(name: string) {
  const root = join(TEST_DOCKER_ROOT, name);
  return {
    root,
    socket: join(root, 'docker.sock'),
    pidfile: join(root, 'docker.pid'),
    log: join(root, 'dockerd.log'),
    config: join(root, 'daemon.json'),
    data: join(root, 'data'),
    exec: join(root, 'exec'),
    lock: join(root, 'start.lock'),
  };
}

function alive(pidfile: string): number | null {
  try {
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    if (!pid) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

async function ensurePrivateEngine(name: string): Promise<{ socket: string } | { skip: string }> {
  const p = paths(name);
  if (await ping(p.socket)) return { socket: p.socket };
  const dockerd = findExecutable('dockerd');
  if (!dockerd) return { skip: 'dockerd is not installed (Debian: apt-get install -y docker.io)' };
  if (process.getuid?.() !== 0) return { skip: `dockerd needs root to start here (running as uid ${process.getuid?.()})` };
  mkdirSync(p.root, { recursive: true });
  const exit: DockerdExit = {};
  const starting = !alive(p.pidfile) && takeStartLock(p.lock);
  try {
    if (starting) startDockerd(dockerd, p, exit);
    return await waitForEngine(p, exit);
  } finally {
    if (starting) releaseStartLock(p.lock);
  }
}

/**
 * Starts a dockerd on a FRESH data-root. Nothing keeps test state from one Engine to the next, and
 * an Engine killed uncleanly (a session's end) leaves containers and network sandboxes that the
 * next start replays one by one: 4 GB and ~400 stale sandboxes made a start take minutes and
 * failed CI. Only called when no dockerd of this root is alive, so no test is using the data.
 */
function startDockerd(dockerd: string, p: ReturnType<typeof paths>, exit: DockerdExit): void {
  unmountLeftovers(p.root);
  rmSync(p.data, { recursive: true, force: true });
  rmSync(p.exec, { recursive: true, force: true });
  // An empty config file: a host /etc/docker/daemon.json (hosts, data-root...) must not apply.
  writeFileSync(p.config, '{}\n');
  const log = openSync(p.log, 'w');
  const child = spawn(
    dockerd,
    [
      `--config-file=${p.config}`,
      `--data-root=${p.data}`,
      `--exec-root=${p.exec}`,
      `--pidfile=${p.pidfile}`,
      `--host=unix://${p.socket}`,
      // No bridge, no iptables: nothing here needs container networking, and sandboxes often lack netfilter.
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  child.on('exit', (code) => (exit.code = code));
  child.on('error', () => (exit.code = -1));
  child.unref();
}

/**
 * dockerd bind-mounts its data-root onto itself and mounts network namespaces under its exec-root;
 * a dockerd that was killed leaves those mounts behind, and a mounted directory cannot be removed.
 * Deepest first, lazily (nothing uses them: no dockerd of this root is alive).
 */
function unmountLeftovers(root: string): void {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) {
    try {
      execFileSync('umount', ['-l', point], { stdio: 'ignore' });
    } catch {
      // Already gone, or not ours to unmount: rmSync below reports what is left.
    }
  }
}

interface DockerdExit {
  code?: number | null;
}

/** Waits for the Engine's socket to answer while a dockerd of this root is alive (or starting). */
async function waitForEngine(p: ReturnType<typeof paths>, exit: DockerdExit): Promise<{ socket: string } | { skip: string }> {
  // A loaded machine can take well over a minute to bring a swarm manager up; a dead dockerd ends the wait early.
  const deadline = Date.now() + 240_000;
  const graceUntil = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await ping(p.socket)) return { socket: p.socket };
    if (Date.now() > graceUntil && !alive(p.pidfile) && !lockHeld(p.lock)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const tail = existsSync(p.log) ? readFileSync(p.log, 'utf8').split('\n').filter(Boolean).slice(-8).join('\n  ') : '(no log)';
  return { skip: `dockerd did not start (exit ${exit.code ?? 'none'}); ${p.log} ends with:\n  ${tail}` };
}

/** One test worker starts the Engine; the others wait for its socket. A lock older than 5 minutes is stale. */
function takeStartLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch {
    if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 300_000) {
      rmSync(lock, { recursive: true, force: true });
      return takeStartLock(lock);
    }
    return false;
  }
}

function releaseStartLock(lock: string): void {
  rmSync(lock, { recursive: true, force: true });
}

function lockHeld(lock: string): boolean {
  return existsSync(lock);
}

/** Stops a private Engine this helper started (by the pid in its pidfile). */
export async function stopPrivateEngine(name: string): Promise<void> {
  const p = paths(name);
  const pid = alive(p.pidfile);
  if (!pid) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && alive(p.pidfile)) await new Promise((r) => setTimeout(r, 200));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function ensureSwarm(engine: DockerEngine): Promise<void> {
  const info = await engine.call<any>('GET', '/info');
  if (info.Swarm?.LocalNodeState === 'active' && info.Swarm?.ControlAvailable) return;
  if (info.Swarm?.LocalNodeState !== 'active') {
    // = docker swarm init --advertise-addr 127.0.0.1 (on a free port: a real swarm may use 2377).
    const port = await freePort();
    await engine.call('POST', '/swarm/init', { ListenAddr: `127.0.0.1:${port}`, AdvertiseAddr: `127.0.0.1:${port}` }).catch((err: any) => {
      if (!/already part of a swarm/i.test(err?.dockerMessage ?? '')) throw err;
    });
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const now = await engine.call<any>('GET', '/info');
    if (now.Swarm?.ControlAvailable) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('the swarm did not become ready (no manager control) within 30s');
}

function wrap(host: string, engine: DockerEngine): TestDocker {
  const q = (filters: object) => encodeURIComponent(JSON.stringify(filters));
  const d: TestDocker = {
    host,
    env: { DOCKER_HOST: host },
    engine,
    async createSecret(name, value, labels = {}) {
      const r = await engine.call<{ ID: string }>('POST', '/secrets/create', {
        Name: name,
        Labels: labels,
        Data: Buffer.from(value, 'utf8').toString('base64'),
      });
      return r.ID;
    },
    async createService(name, mounts, opts = {}) {
      const secrets = [];
      for (const m of mounts) {
        const s = await d.secret(m.secret);
        if (!s) throw new Error(`test setup: secret ${m.secret} does not exist`);
        secrets.push({
          File: { Name: m.target, UID: m.uid ?? '0', GID: m.gid ?? '0', Mode: m.mode ?? 0o444 },
          SecretID: s.ID,
          SecretName: m.secret,
        });
      }
      const r = await engine.call<{ ID: string }>('POST', '/services/create', {
        Name: name,
        Labels: { 'keyrot-test': 'true', ...opts.labels },
        TaskTemplate: {
          ContainerSpec: {
            Image: opts.image ?? ABSENT_IMAGE,
            ...(opts.args ? { Command: opts.args.slice(0, 1), Args: opts.args.slice(1) } : {}),
            Secrets: secrets,
            StopGracePeriod: 100_000_000,
          },
          RestartPolicy: { Condition: 'on-failure', MaxAttempts: 0, ...(opts.restartDelay !== undefined ? { Delay: opts.restartDelay } : {}) },
        },
        Mode: { Replicated: { Replicas: opts.replicas ?? 0 } },
        ...(opts.updateConfig ? { UpdateConfig: opts.updateConfig } : {}),
      });
      return r.ID;
    },
    service: (name) => engine.call('GET', `/services/${encodeURIComponent(name)}`),
    async secret(idOrName) {
      const byName = await engine.call<any[]>('GET', `/secrets?filters=${q({ names: [idOrName] })}`);
      if (byName?.length) return byName[0];
      return engine.call('GET', `/secrets/${encodeURIComponent(idOrName)}`).catch((err: any) => {
        if (err?.status === 404) return null;
        throw err;
      });
    },
    async secrets(prefix) {
      const all = (await engine.call<any[]>('GET', `/secrets?filters=${q({ name: [prefix] })}`)) ?? [];
      return all.sort((a, b) => (a.Spec.Name < b.Spec.Name ? -1 : 1));
    },
    async removeService(name) {
      await engine.call('DELETE', `/services/${encodeURIComponent(name)}`).catch((err: any) => {
        if (err?.status !== 404) throw err;
      });
    },
    async cleanup(prefix) {
      const services = (await engine.call<any[]>('GET', `/services?filters=${q({ name: [prefix] })}`)) ?? [];
      for (const s of services) await d.removeService(s.ID);
      // Secrets are released once the services' tasks are gone.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const left = await d.secrets(prefix);
        let blocked = false;
        for (const s of left) {
          await engine.call('DELETE', `/secrets/${s.ID}`).catch((err: any) => {
            if (err?.status === 400) blocked = true;
            else if (err?.status !== 404) throw err;
          });
        }
        if (!blocked || Date.now() > deadline) return;
        await new Promise((r) => setTimeout(r, 500));
      }
    },
    close: () => engine.close(),
  };
  return d;
}

// --- Running real tasks (the live tests) -----------------------------------------------------------

export const MINI_IMAGE = 'keyrot-test/busybox:1';

/**
 * A tiny local image that really runs: Debian's static busybox as its /bin, imported through the
 * API (emulators/docker/busybox-image.ts): nothing is pulled.
 */
export async function ensureMiniImage(docker: TestDocker): Promise<void> {
  await ensureBusyboxImage(docker.engine, MINI_IMAGE);
}

/** The container of a running task of `service` (desired state running), or null. */
export async function runningContainer(docker: TestDocker, service: string): Promise<{ id: string; secretIds: string[] } | null> {
  const filters = encodeURIComponent(JSON.stringify({ service: [service], 'desired-state': ['running'] }));
  const tasks = (await docker.engine.call<any[]>('GET', `/tasks?filters=${filters}`)) ?? [];
  const t = tasks.find((x) => x.Status?.State === 'running' && x.Status?.ContainerStatus?.ContainerID);
  if (!t) return null;
  return {
    id: t.Status.ContainerStatus.ContainerID,
    secretIds: (t.Spec?.ContainerSpec?.Secrets ?? []).map((s: any) => s.SecretID),
  };
}

/** Runs `cat path` inside the container (exec with a TTY: the raw stream is the file). */
export async function catInContainer(docker: TestDocker, containerId: string, path: string): Promise<string> {
  const exec = await docker.engine.call<{ Id: string }>('POST', `/containers/${containerId}/exec`, {
    Cmd: ['/bin/cat', path],
    AttachStdout: true,
    AttachStderr: true,
    Tty: true,
  });
  const { apiVersion } = await docker.engine.info();
  const res = await docker.engine.raw({
    method: 'POST',
    path: `/v${apiVersion}/exec/${exec.Id}/start`,
    body: JSON.stringify({ Detach: false, Tty: true }),
    timeoutMs: 20_000,
  });
  if (res.status !== 200) throw new Error(`exec failed: ${res.status}`);
  return res.body.toString('utf8');
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createComposeContainer, removeComposeProject, type ComposeContainerSpec } from '../../emulators/docker/compose-project.ts';
import { dockerEngine, ensureMiniImage, MINI_IMAGE, uniqueName, type TestDocker } from './docker-engine.ts';

/**
 * A Compose project on the REAL test Engine (test/helpers/docker-engine.ts), made without the
 * Compose CLI (emulators/docker/compose-project.ts): containers of the tiny busybox image, named
 * and labelled as Compose names and labels them, with files of a temp dir bind-mounted.
 */
export interface ComposeFixture {
  docker: TestDocker;
  project: string;
  dir: string;
  /** Creates and starts a container of `service` (busybox image unless given). */
  container(spec: Omit<ComposeContainerSpec, 'project' | 'image'> & { image?: string }): Promise<string>;
  inspect(id: string): Promise<any>;
  /** The one container of `service` (running or not), by its Compose labels. */
  serviceContainer(service: string): Promise<any>;
  /** The SHA-256 of `path` as the container sees it (busybox sha256sum), or of its variable. */
  hashIn(id: string, what: { file: string } | { env: string }): Promise<string>;
  close(): Promise<void>;
}

/** The test Engine with the busybox image, or why not (a throw under CI, from dockerEngine()). */
export async function composeDocker(): Promise<TestDocker | { skip: string }> {
  const d = await dockerEngine();
  if ('skip' in d) return d;
  try {
    await ensureMiniImage(d);
  } catch (err) {
    const why = `cannot build the local busybox image: ${(err as Error).message}`;
    if (process.env.CI === 'true') throw new Error(`${why} (CI=true: install busybox-static)`);
    return { skip: why };
  }
  return d;
}

export async function composeFixture(d: TestDocker): Promise<ComposeFixture> {
  const project = uniqueName('krcp');
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-compose-'));
  const q = (o: object) => encodeURIComponent(JSON.stringify(o));
  const fx: ComposeFixture = {
    docker: d,
    project,
    dir,
    container: (spec) => createComposeContainer(d.engine, { image: MINI_IMAGE, ...spec, project, owner: project }),
    inspect: (id) => d.engine.call('GET', `/containers/${id}/json`),
    async serviceContainer(service) {
      const list = await d.engine.call<any[]>('GET', `/containers/json?all=1&filters=${q({ label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${service}`] })}`);
      if (list?.length !== 1) throw new Error(`expected one container of ${service}, found ${list?.length ?? 0}`);
      return fx.inspect(list[0].Id);
    },
    async hashIn(id, what) {
      const cmd = 'file' in what ? ['sha256sum', what.file] : ['sh', '-c', `printf '%s' "$${what.env}" | sha256sum`];
      const exec = await d.engine.call<{ Id: string }>('POST', `/containers/${id}/exec`, { Cmd: cmd, AttachStdout: true, AttachStderr: true, Tty: true });
      const raw = await d.engine.callRaw('POST', `/exec/${exec.Id}/start`, { Detach: false, Tty: true }, undefined, { timeoutMs: 30_000 });
      return raw.toString('utf8').split(/\s/)[0]!;
    },
    async close() {
      await removeComposeProject(d.engine, project);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

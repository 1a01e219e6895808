import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DemoSetup } from '../demo-types.ts';
import { DockerEngine, parseDockerHost } from '../../src/targets/docker-engine.ts';
import { ensureBusyboxImage, staticBusybox } from '../docker/busybox-image.ts';
import { createComposeContainer, removeComposeProject } from '../docker/compose-project.ts';

/** The demo's image: Debian's static busybox, imported locally (nothing is pulled). */
const DEMO_IMAGE = 'keyrot-demo/busybox:1';

/**
 * `keyrot demo` for Docker Compose. Like docker-secret, no emulator: the real Engine at
 * DOCKER_HOST (or /var/run/docker.sock), any Engine (no swarm needed), when this machine has a
 * static busybox to build a tiny image from; otherwise it is skipped with the reason. It makes
 * one container of project keyrot-demo-<random>, service `app`, that bind-mounts a key file of
 * the demo's temp directory as Compose mounts a `secrets:` file, rotates it with `verify: exec`
 * (the container computes the SHA-256 of what it sees), and removes the container when it stops.
 */
export const demo: DemoSetup = async ({ oldKey, workDir }) => {
  let engine: DockerEngine;
  try {
    engine = new DockerEngine(parseDockerHost(process.env.DOCKER_HOST, process.env), { timeoutMs: 5000 });
  } catch (err) {
    return { skip: (err as Error).message };
  }
  const where = engine.host.display;
  const busybox = staticBusybox();
  if ('missing' in busybox) {
    engine.close();
    return { skip: busybox.missing };
  }
  try {
    await engine.info();
    await ensureBusyboxImage(engine, DEMO_IMAGE);
  } catch (err) {
    engine.close();
    const code = ((err as { cause?: { code?: unknown } }).cause?.code ?? (err as { code?: unknown }).code) as string | undefined;
    return { skip: code === 'ENOENT' || code === 'ECONNREFUSED' ? `no Docker Engine at ${where} (start dockerd or set DOCKER_HOST)` : (err as Error).message };
  }

  const project = `keyrot-demo-${randomBytes(3).toString('hex')}`;
  const dir = join(workDir, 'compose');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'openai_api_key');
  await writeFile(file, oldKey + '\n', { mode: 0o600 });
  try {
    await createComposeContainer(engine, {
      project,
      service: 'app',
      image: DEMO_IMAGE,
      cmd: ['sh', '-c', 'exec sleep 3600'],
      binds: [{ source: file, target: '/run/secrets/openai_api_key' }],
    });
  } catch (err) {
    await removeComposeProject(engine, project).catch(() => undefined);
    engine.close();
    return { skip: `the Docker Engine at ${where} cannot run the demo container: ${(err as Error).message}` };
  }

  return {
    targets: [{ type: 'docker-compose', name: 'compose', file, project, services: ['app'], verify: 'exec', endpoint: where }],
    env: {},
    description: `the real Docker Engine at ${where}: container ${project}-app-1 (Compose project ${project}) mounting ${file}`,
    async stop() {
      try {
        await removeComposeProject(engine, project);
      } finally {
        engine.close();
      }
    },
  };
};

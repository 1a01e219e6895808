import { randomBytes } from 'node:crypto';
import type { DemoSetup } from '../demo-types.ts';
import { DockerEngine, parseDockerHost } from '../../src/targets/docker-engine.ts';

/**
 * `keyrot demo` for Docker secrets. There is no Docker emulator: a fake swarm would prove
 * nothing about the real Engine's quirks. The demo uses a REAL Engine when one is reachable
 * (DOCKER_HOST or /var/run/docker.sock) and is a swarm manager, and only with the user's consent
 * (`keyrot demo --docker`, or a yes at a prompt); otherwise it is skipped with the reason. It creates one secret and one service with 0 replicas (an image that is never pulled,
 * so nothing runs), both named keyrot_demo_<random>, and removes them and every secret the
 * rotation created in that family when it stops. Nothing else on the Engine is touched.
 */
export const demo: DemoSetup = async ({ oldKey, consent }) => {
  const raw = process.env.DOCKER_HOST;
  let engine: DockerEngine;
  try {
    engine = new DockerEngine(parseDockerHost(raw, process.env), { timeoutMs: 5000 });
  } catch (err) {
    // parseDockerHost's messages are one sentence naming DOCKER_HOST and what it accepts.
    return { skip: (err as Error).message };
  }
  const where = engine.host.display;
  try {
    await engine.info();
    const info = await engine.call<{ Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }>('GET', '/info');
    if (info.Swarm?.LocalNodeState !== 'active' || !info.Swarm.ControlAvailable) {
      engine.close();
      return { skip: `the Docker Engine at ${where} is not a swarm manager (docker swarm init would make it one; the demo does not do that for you)` };
    }
  } catch (err) {
    engine.close();
    return { skip: skipReason(err, where) };
  }

  const id = randomBytes(3).toString('hex');
  const secret = `keyrot_demo_${id}`;
  const service = `keyrot-demo-${id}`;
  // The user's own swarm: used only when they say so, knowing what is created there.
  const what = `The Docker Engine at ${where} is a swarm manager. The demo can rotate a real Docker secret there: it creates secret ${secret} and service ${service} (0 replicas: nothing runs, nothing is pulled) and removes both, and every secret the rotation made, when it ends`;
  if (!(await consent?.(what))) {
    engine.close();
    return { skip: `not used without your consent: \`keyrot demo --docker\` includes the swarm at ${where} (one secret and one 0-replica service, removed afterwards)` };
  }
  const labels = { 'keyrot-demo': 'true' };
  const created = await engine.call<{ ID: string }>('POST', '/secrets/create', {
    Name: secret,
    Labels: labels,
    Data: Buffer.from(oldKey, 'utf8').toString('base64'),
  });
  await engine.call('POST', '/services/create', {
    Name: service,
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        // Never pulled: with 0 replicas the Engine schedules no task (API >= 1.30 does not resolve images).
        Image: 'keyrot-demo/app:never-pulled',
        Secrets: [{ File: { Name: 'openai_api_key', UID: '0', GID: '0', Mode: 0o400 }, SecretID: created.ID, SecretName: secret }],
      },
    },
    Mode: { Replicated: { Replicas: 0 } },
  });

  return {
    targets: [{ type: 'docker-secret', name: 'docker', secret, services: [service], endpoint: where }],
    env: {},
    description: `the real Docker Engine at ${where}: secret ${secret} mounted by service ${service} (0 replicas)`,
    async stop() {
      try {
        await engine.call('DELETE', `/services/${service}`).catch(() => undefined);
        const filters = encodeURIComponent(JSON.stringify({ name: [secret] }));
        const left = (await engine.call<Array<{ ID: string; Spec: { Name: string } }> | null>('GET', `/secrets?filters=${filters}`)) ?? [];
        for (const s of left) {
          if (s.Spec.Name === secret || /^_\d+$/.test(s.Spec.Name.slice(secret.length))) {
            await engine.call('DELETE', `/secrets/${s.ID}`).catch(() => undefined);
          }
        }
      } finally {
        engine.close();
      }
    },
  };
};

/**
 * One sentence for the skip line. Nothing listening (no socket, connection refused) gets the short
 * product sentence; any other Engine error (permission, timeout, API too old) is already one
 * sentence naming the host, so it is shown as is rather than wrapped in a second "no Engine" clause.
 */
function skipReason(err: unknown, where: string): string {
  const code = ((err as { cause?: { code?: unknown } }).cause?.code ?? (err as { code?: unknown }).code) as string | undefined;
  if (code === 'ENOENT' || code === 'ECONNREFUSED') {
    return `no Docker Engine at ${where} (start dockerd or set DOCKER_HOST to a swarm manager)`;
  }
  return (err as Error).message;
}

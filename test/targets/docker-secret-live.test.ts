import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { dockerSecret } from '../../src/targets/docker-secret/index.ts';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { fakeClock, systemClock } from '../../src/runtime/clock.ts';
import { checkTasks, localNodeId, runningTasks } from '../../src/targets/docker-secret/exec-check.ts';
import { sha256Hex } from '../../src/targets/docker-exec.ts';
import type { Target, TargetContext } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';
import type { DockerSecretReceipt } from '../../src/targets/docker-secret/index.ts';
import {
  catInContainer,
  dockerEngine,
  ensureMiniImage,
  MINI_IMAGE,
  runningContainer,
  uniqueName,
  type TestDocker,
} from '../helpers/docker-engine.ts';

/**
 * Running tasks: a service with one replica of a tiny image built locally from this machine's
 * /bin/sh, sleep and cat (nothing pulled). Its entrypoint refuses a secret starting with `bad-`,
 * so the Engine's rolling update can be made to fail for real. Shows what the Engine reports
 * (UpdateStatus updating → completed, or paused) and that the container reads the new file.
 */
const docker = await dockerEngine();
let skip = 'skip' in docker ? docker.skip : undefined;
const d = docker as TestDocker;

const ENTRY = [
  '/bin/sh',
  '-c',
  'read v < /run/secrets/openai_api_key; case "$v" in bad-*) echo refusing >&2; exit 1;; esac; exec /bin/sleep 3600',
];

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let p = '';
let base = '';
let service = '';
const oldKey = testKey();

if (!skip) {
  try {
    await ensureMiniImage(d);
  } catch (err) {
    skip = `cannot build the local test image: ${(err as Error).message}`;
    if (process.env.CI === 'true') throw new Error(`${skip} (CI=true: install busybox-static)`);
  }
}

describe.skipIf(skip !== undefined)('docker-secret with running tasks (real Docker Engine)', () => {
  let target: Target<DockerSecretReceipt>;
  const make = (ctx: Partial<TargetContext> = {}, timeout = '60s') =>
    dockerSecret.create({ secret: base, services: [service], timeout }, { ...testContext({ env: d.env, name: 'docker-live' }), ...ctx });

  beforeAll(async () => {
    p = uniqueName('krl');
    base = `${p}_openai`;
    service = `${p}-app`;
    await d.createSecret(base, oldKey);
    await d.createService(service, [{ secret: base, target: 'openai_api_key', uid: '0', gid: '0', mode: 0o400 }], {
      replicas: 1,
      image: MINI_IMAGE,
      args: ENTRY,
      // Monitor 1s instead of 5s keeps the test short; pause on failure is the Engine default.
      updateConfig: { Parallelism: 1, Monitor: 1_000_000_000, FailureAction: 'pause', Order: 'stop-first' },
    });
    const c = await until('the first task to run', () => runningContainer(d, service), 60_000).catch((err: Error) => {
      throw new Error(`containers cannot run on this Engine (${err.message}); see docker service ps ${service}`);
    });
    expect(await catInContainer(d, c.id, '/run/secrets/openai_api_key')).toBe(oldKey);
    target = await make();
  }, 120_000);

  afterAll(async () => {
    await target?.close?.();
    if (p) await d.cleanup(p);
    d.close();
  }, 60_000);

  it('write returns once the rolling update completed: the running container reads the new key from the same file', async () => {
    const key = testKey();
    const o = { rotationId: 'rot_live_1', fingerprint: new Secret(key).fingerprint };
    const r = await target.write(new Secret(key), o);
    const svc = await d.service(service);
    expect(svc.UpdateStatus?.State).toBe('completed');
    const c = await until('a running task', () => runningContainer(d, service));
    expect(c.secretIds).toEqual([r.newSecretId]);
    expect(await catInContainer(d, c.id, '/run/secrets/openai_api_key')).toBe(key);
    expect((await target.verify(new Secret(key), o, r)).detail).toContain(`${service}: update completed`);

    await target.restore(new Secret(oldKey), o, r);
    expect((await d.service(service)).UpdateStatus?.State).toBe('completed');
    const back = await until('a running task', () => runningContainer(d, service));
    expect(back.secretIds).toEqual([(await d.secret(base)).ID]);
    expect(await catInContainer(d, back.id, '/run/secrets/openai_api_key')).toBe(oldKey);
    expect(await d.secret(`${base}_2`)).toBeNull();
  }, 90_000);

  it('verify: exec: the running task\'s container computes the SHA-256 of the new secret file and keyrot compares it', async () => {
    const t = await dockerSecret.create({ secret: base, services: [service], timeout: '60s', verify: 'exec' }, testContext({ env: d.env, name: 'docker-live' }));
    try {
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.notes).toContain(`verify: exec works in 1 running container(s) of ${service}`);
      const key = testKey();
      const o = { rotationId: 'rot_live_exec', fingerprint: new Secret(key).fingerprint };
      const r = await t.write(new Secret(key), o);
      expect((await t.verify(new Secret(key), o, r)).detail).toContain(`1 container(s) of ${service} see key ${o.fingerprint} (SHA-256 computed in the container)`);
      // The check itself, against another value's hash: what the container sees is not it, a mismatch with no key in it.
      const svc = await d.service(service);
      const { here } = await runningTasks(d.engine, svc, await localNodeId(d.engine));
      const err = await checkTasks(d.engine, service, here, r.newSecretId, sha256Hex(testKey()), { deadlineMs: 30_000, clock: systemClock }).catch((e: TargetError) => e);
      expect((err as TargetError).kind).toBe('mismatch');
      expect((err as TargetError).message).toMatch(/does not see the new key at \/run\/secrets\/openai_api_key \(SHA-256 computed in the container\)/);
      expect((err as TargetError).message).not.toContain(key);
      await t.restore(new Secret(oldKey), o, r);
    } finally {
      await t.close?.();
    }
  }, 90_000);

  it('an update whose new tasks fail is reported (paused, with the Engine’s message); restore brings the old secret back', async () => {
    const bad = `bad-${testKey()}`;
    const o = { rotationId: 'rot_live_bad', fingerprint: new Secret(bad).fingerprint };
    const err = await target.write(new Secret(bad), o).then(
      () => null,
      (e: unknown) => e as TargetError,
    );
    expect(err).toBeInstanceOf(TargetError);
    expect(err!.kind).toBe('unavailable');
    expect(err!.retryable).toBe(false);
    expect(err!.message).toContain(`the rolling update of service ${service} is paused`);
    expect(err!.message).toMatch(/update paused due to failure or early termination of task/);
    expect(err!.message).not.toContain(bad);

    await target.restore(new Secret(oldKey), o, undefined);
    const svc = await d.service(service);
    expect(svc.Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName).toBe(base);
    expect(svc.UpdateStatus?.State).toBe('completed');
    const c = await until('the old task to run again', () => runningContainer(d, service));
    expect(await catInContainer(d, c.id, '/run/secrets/openai_api_key')).toBe(oldKey);
    expect((await d.secrets(base)).map((s) => s.Spec.Name)).toEqual([base]);
  }, 90_000);

  it('a crash-looping service waiting out its restart delay is not mistaken for one with nothing to update', async () => {
    // Its only task fails on the current (bad) secret; the replacement waits 60s (desired state
    // `ready`), so no task is desired `running` when keyrot swaps in a good secret.
    const loopBase = `${p}_loop`;
    const loop = `${p}-loop`;
    await d.createSecret(loopBase, `bad-${testKey()}`);
    await d.createService(loop, [{ secret: loopBase, target: 'openai_api_key' }], {
      replicas: 1,
      image: MINI_IMAGE,
      args: ENTRY,
      restartDelay: 60_000_000_000,
      updateConfig: { Parallelism: 1, Monitor: 1_000_000_000, FailureAction: 'pause' },
    });
    const filters = encodeURIComponent(JSON.stringify({ service: [loop] }));
    await until('a task waiting out its restart delay', async () => {
      const tasks = await d.engine.call<any[]>('GET', `/tasks?filters=${filters}`);
      return tasks.some((t) => t.DesiredState === 'ready') && !tasks.some((t) => t.DesiredState === 'running');
    });
    const t = await dockerSecret.create({ secret: loopBase, services: [loop], timeout: '60s' }, testContext({ env: d.env, name: 'docker-loop' }));
    try {
      const key = testKey();
      const r = await t.write(new Secret(key), { rotationId: 'rot_live_loop', fingerprint: new Secret(key).fingerprint });
      expect((await d.service(loop)).UpdateStatus?.State).toBe('completed');
      const c = await until('a running task', () => runningContainer(d, loop));
      expect(c.secretIds).toEqual([r.newSecretId]);
      expect(await catInContainer(d, c.id, '/run/secrets/openai_api_key')).toBe(key);
    } finally {
      await t.close?.();
    }
  }, 90_000);

  it('an update that does not finish within timeout: is a timeout error (fake clock) naming the service and its state', async () => {
    // Delay between tasks: with 2 replicas and a 1h delay, the update stays `updating` after the first task.
    const svc = await d.service(service);
    const spec = structuredClone(svc.Spec);
    spec.Mode.Replicated.Replicas = 2;
    spec.UpdateConfig = { ...spec.UpdateConfig, Delay: 3_600_000_000_000 };
    await d.engine.call('POST', `/services/${svc.ID}/update?version=${svc.Version.Index}`, spec);
    await until('two running tasks', async () => {
      const tasks = await d.engine.call<any[]>(
        'GET',
        `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [service], 'desired-state': ['running'] }))}`,
      );
      return tasks.filter((t) => t.Status.State === 'running').length === 2;
    });
    const clock = fakeClock();
    const slow = await make({ clock }, '5m');
    const key = testKey();
    const o = { rotationId: 'rot_live_slow', fingerprint: new Secret(key).fingerprint };
    const err = await slow.write(new Secret(key), o).then(
      () => null,
      (e: unknown) => e as TargetError,
    );
    await slow.close?.();
    expect(err).toBeInstanceOf(TargetError);
    expect(err!.kind).toBe('timeout');
    expect(err!.retryable).toBe(false);
    expect(err!.message).toContain(`service ${service} is still updating after 5m (updating`);
    expect(clock.slept.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(300_000);
    const now = await d.service(service);
    expect(now.UpdateStatus?.State).toBe('updating');
    // The Engine would keep that update going for an hour: back to 1 replica without delay, then restore.
    const reset = structuredClone(now.Spec);
    reset.Mode.Replicated.Replicas = 1;
    reset.UpdateConfig = { ...reset.UpdateConfig, Delay: 0 };
    await d.engine.call('POST', `/services/${now.ID}/update?version=${now.Version.Index}`, reset);
    await target.restore(new Secret(oldKey), o, undefined);
    expect((await d.service(service)).Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName).toBe(base);
  }, 120_000);
});

if (skip) {
  describe('docker-secret with running tasks', () => {
    it.skip(`skipped: ${skip}`, () => {});
  });
}

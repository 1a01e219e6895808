import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { ANNOTATIONS, MAX_CONFLICT_TRIES } from '../../src/targets/kubernetes/adapter.ts';
import { kubernetes } from '../../src/targets/kubernetes/index.ts';
import { RESTARTED_AT, rolloutStatus } from '../../src/targets/kubernetes/rollout.ts';
import { testKey } from '../helpers/keys.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';
import { KEY, NS, SECRET, k8sFixture, type K8sFixture } from '../helpers/kubernetes-fixture.ts';

const op = (rotationId = 'rot_k8s_1', value?: Secret) => ({ rotationId, fingerprint: value?.fingerprint ?? 'none' });
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

async function rejection(p: Promise<unknown>): Promise<TargetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TargetError);
  return err as TargetError;
}

describe('kubernetes target', () => {
  let fx: K8sFixture;
  let oldKey: string;
  let newKey: string;

  beforeEach(async () => {
    fx = await k8sFixture();
    oldKey = testKey();
    newKey = testKey();
    fx.emu.seedSecret(NS, SECRET, { [KEY]: oldKey, 'database-url': 'postgres://app@db:5432/app', 'multi-line': 'a\nb\n' }, {
      labels: { app: 'api' },
      annotations: { team: 'platform' },
    });
    fx.emu.seedWorkload('deployment', NS, 'api', { replicas: 3 });
  });
  afterEach(async () => {
    await fx.close();
  });

  it('preflight reads the current key, checks access and announces the restart', async () => {
    const t = await fx.make();
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind === 'value' && pf.current.value.equals(new Secret(oldKey))).toBe(true);
    expect(pf.willCreate).toBe(false);
    expect(pf.notes?.join('\n')).toContain('restarts deployment/api after the write and waits up to 5m');
    // Patch permission was asked for the secret and the workload, read-only.
    const reviews = fx.calls('POST', 'selfsubjectaccessreviews').map((r) => JSON.parse(r.rawBody).spec.resourceAttributes);
    expect(reviews).toEqual([
      { namespace: NS, verb: 'patch', group: '', resource: 'secrets', name: SECRET },
      { namespace: NS, verb: 'patch', group: 'apps', resource: 'deployments', name: 'api' },
    ]);
    expect(fx.emu.server.requests.filter((r) => r.method === 'PATCH' || r.method === 'PUT')).toHaveLength(0);
    expect(kubernetes.capabilities).toEqual({ readBack: 'always', versioned: false });
    expect(t.redeploy).toBeTypeOf('function');
    expect(t.finalize).toBeUndefined();
    expect(t.location).toBe(`${NS}/${SECRET}[${KEY}]`);
  });

  it('writes only its key: other keys, labels and type stay byte-identical', async () => {
    const before = fx.emu.getSecret(NS, SECRET)!;
    const t = await fx.make();
    const value = new Secret(newKey);
    const receipt = await t.write(value, op('rot_only', value));
    const after = fx.emu.getSecret(NS, SECRET)!;
    expect(after.data[KEY]).toBe(newKey);
    expect(after.rawData[KEY]).toBe(b64(newKey));
    for (const k of Object.keys(before.rawData).filter((k) => k !== KEY)) expect(after.rawData[k]).toBe(before.rawData[k]);
    expect(Object.keys(after.rawData).sort()).toEqual(Object.keys(before.rawData).sort());
    expect(after.labels).toEqual(before.labels);
    expect(after.object.type).toBe('Opaque');
    // The ownership record: which rotation wrote which key, and when.
    expect(after.annotations).toMatchObject({
      team: 'platform',
      [ANNOTATIONS.rotation]: 'rot_only',
      [ANNOTATIONS.fingerprint]: value.fingerprint,
      [ANNOTATIONS.writtenAt]: new Date(fx.clock.now()).toISOString(),
    });
    // One merge patch carrying only our key, conditioned on the resourceVersion read.
    const patches = fx.calls('PATCH', `/secrets/${SECRET}`);
    expect(patches).toHaveLength(1);
    expect(patches[0]!.headers['content-type']).toBe('application/merge-patch+json');
    const body = JSON.parse(patches[0]!.rawBody);
    expect(Object.keys(body.data)).toEqual([KEY]);
    expect(body.metadata.resourceVersion).toBe(before.resourceVersion);
    expect(receipt).toEqual({ context: 'keyrot-emulator', namespace: NS, secret: SECRET, key: KEY, resourceVersion: after.resourceVersion, changed: true });
    expect(JSON.stringify(receipt)).not.toContain(newKey);
    // verify reads it back.
    expect((await t.verify(value, op('rot_only', value), receipt)).method).toBe('read-back');
    await expect(t.verify(new Secret(testKey()), op(), receipt)).rejects.toMatchObject({ kind: 'mismatch' });
  });

  it('a second identical write changes nothing', async () => {
    const t = await fx.make();
    const value = new Secret(newKey);
    await t.write(value, op('rot_idem', value));
    const rv = fx.emu.getSecret(NS, SECRET)!.resourceVersion;
    const writes = fx.emu.writes.secrets;
    const receipt = await t.write(value, op('rot_idem', value));
    expect(receipt.changed).toBe(false);
    expect(fx.emu.writes.secrets).toBe(writes);
    expect(fx.emu.getSecret(NS, SECRET)!.resourceVersion).toBe(rv);
    expect(fx.calls('PATCH', '/secrets/')).toHaveLength(1);
  });

  it('conflict retried: a 409 on resourceVersion re-reads and keeps the other writer\'s change', async () => {
    const t = await fx.make();
    fx.emu.conflictNext({
      mutate: (o) => {
        o.data['database-url'] = b64('postgres://app@db2:5432/app');
      },
    });
    const value = new Secret(newKey);
    await t.write(value, op('rot_conflict', value));
    const patches = fx.calls('PATCH', `/secrets/${SECRET}`);
    expect(patches.map((p) => p.status)).toEqual([409, 200]);
    expect(JSON.parse(patches[0]!.rawBody).metadata.resourceVersion).not.toBe(JSON.parse(patches[1]!.rawBody).metadata.resourceVersion);
    const s = fx.emu.getSecret(NS, SECRET)!;
    expect(s.data[KEY]).toBe(newKey);
    expect(s.data['database-url']).toBe('postgres://app@db2:5432/app');
  });

  it('conflict retries are bounded', async () => {
    const t = await fx.make();
    fx.emu.conflictNext({ times: 50 });
    const value = new Secret(newKey);
    const err = await rejection(t.write(value, op('rot_fight', value)));
    expect(err.kind).toBe('conflict');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`changed under keyrot ${MAX_CONFLICT_TRIES} times in a row`);
    expect(fx.calls('PATCH', `/secrets/${SECRET}`)).toHaveLength(MAX_CONFLICT_TRIES);
    expect(fx.emu.getSecret(NS, SECRET)!.data[KEY]).toBe(oldKey);
  });

  it('restart seen: redeploy patches restartedAt like kubectl and waits for the rollout', async () => {
    const t = await fx.make();
    const value = new Secret(newKey);
    const o = op('rot_restart', value);
    const receipt = await t.write(value, o);
    const writtenAt = Date.parse(fx.emu.getSecret(NS, SECRET)!.annotations[ANNOTATIONS.writtenAt]!);
    const start = fx.clock.now();
    const res = await t.redeploy!(o, receipt);
    expect(res).toEqual({ method: 'redeploy', detail: 'deployment/api rolled out' });

    const patches = fx.calls('PATCH', '/deployments/api');
    expect(patches).toHaveLength(1);
    expect(patches[0]!.headers['content-type']).toBe('application/strategic-merge-patch+json');
    const body = JSON.parse(patches[0]!.rawBody);
    const stamp: string = body.spec.template.metadata.annotations[RESTARTED_AT];
    expect(body).toEqual({ spec: { template: { metadata: { annotations: { [RESTARTED_AT]: stamp } } } } });
    expect(Date.parse(stamp)).toBeGreaterThan(writtenAt);

    const dep = fx.emu.getWorkload('deployment', NS, 'api')!;
    expect(dep.spec.template.metadata.annotations[RESTARTED_AT]).toBe(stamp);
    expect(dep.metadata.generation).toBe(2);
    expect(rolloutStatus('deployment', dep)).toMatchObject({ done: true });
    // It polled until the emulated controller finished (3 s of fake time), not just once.
    expect(fx.calls('GET', '/deployments/api').length).toBeGreaterThan(2);
    expect(fx.clock.now() - start).toBeGreaterThanOrEqual(3000);

    // Asked again (the engine retries), nothing is restarted twice for the same write.
    await t.redeploy!(o, receipt);
    expect(fx.calls('PATCH', '/deployments/api')).toHaveLength(1);
  });

  it('restarts statefulsets and daemonsets and waits by their own rules', async () => {
    fx.emu.seedWorkload('statefulset', NS, 'db', { replicas: 2 });
    fx.emu.seedWorkload('daemonset', NS, 'agent', { nodes: 3 });
    const t = await fx.make({ restart: ['sts/db', 'daemonset/agent'] });
    expect((await t.preflight()).status).toBe('ready');
    const value = new Secret(newKey);
    const o = op('rot_sts', value);
    const res = await t.redeploy!(o, await t.write(value, o));
    expect(res.detail).toBe('statefulset/db, daemonset/agent rolled out');
    for (const [kind, name] of [['statefulset', 'db'], ['daemonset', 'agent']] as const) {
      const w = fx.emu.getWorkload(kind, NS, name)!;
      expect(w.spec.template.metadata.annotations[RESTARTED_AT]).toBeTruthy();
      expect(w.metadata.generation).toBe(2);
      expect(rolloutStatus(kind, w).done).toBe(true);
    }
    expect(fx.emu.getWorkload('statefulset', NS, 'db')!.status.currentRevision).toBe(fx.emu.getWorkload('statefulset', NS, 'db')!.status.updateRevision);
  });

  it('a rollout timeout fails the target; restore puts back the old value and restarts again', async () => {
    fx.emu.setRolloutBehaviour('deployment/api', { mode: 'stuck' });
    const t = await fx.make({ timeout: '30s' });
    const value = new Secret(newKey);
    const o = op('rot_timeout', value);
    const receipt = await t.write(value, o);
    const start = fx.clock.now();
    const err = await rejection(t.redeploy!(o, receipt));
    expect(err.kind).toBe('timeout');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('Kubernetes deployment/api in namespace default did not finish its rollout within 30s');
    expect(err.message).toContain('Waiting for deployment "api" rollout to finish: 1 out of 3 new replicas have been updated');
    expect(fx.clock.now() - start).toBeGreaterThanOrEqual(30_000);
    expect(fx.clock.now() - start).toBeLessThan(40_000);
    const firstStamp = fx.emu.getWorkload('deployment', NS, 'api')!.spec.template.metadata.annotations[RESTARTED_AT];

    // The cluster recovers; the engine restores.
    fx.emu.setRolloutBehaviour('deployment/api', { mode: 'progress', delayMs: 2000 });
    await t.restore(new Secret(oldKey), o, receipt);
    const s = fx.emu.getSecret(NS, SECRET)!;
    expect(s.data[KEY]).toBe(oldKey);
    expect(s.annotations[ANNOTATIONS.fingerprint]).toBe(new Secret(oldKey).fingerprint);
    const dep = fx.emu.getWorkload('deployment', NS, 'api')!;
    expect(dep.spec.template.metadata.annotations[RESTARTED_AT]).not.toBe(firstStamp);
    expect(Date.parse(dep.spec.template.metadata.annotations[RESTARTED_AT])).toBeGreaterThan(Date.parse(s.annotations[ANNOTATIONS.writtenAt]!));
    expect(dep.metadata.generation).toBe(3);
    expect(rolloutStatus('deployment', dep).done).toBe(true);

    // Restore again (resume): nothing to write, nothing to restart.
    const patchesBefore = fx.emu.server.requests.filter((r) => r.method === 'PATCH').length;
    await t.restore(new Secret(oldKey), o, receipt);
    expect(fx.emu.server.requests.filter((r) => r.method === 'PATCH').length).toBe(patchesBefore);
    expect(err.message).not.toContain(newKey);
  });

  it('a deployment past its progress deadline fails at once, not at the timeout', async () => {
    fx.emu.setRolloutBehaviour('deployment/api', { mode: 'deadline', delayMs: 10_000 });
    const t = await fx.make();
    const value = new Secret(newKey);
    const o = op('rot_deadline', value);
    const receipt = await t.write(value, o);
    const start = fx.clock.now();
    const err = await rejection(t.redeploy!(o, receipt));
    expect(err.kind).toBe('timeout');
    expect(err.message).toContain('deployment "api" exceeded its progress deadline');
    expect(fx.clock.now() - start).toBeLessThan(60_000);
  });

  it('restore of a key that did not exist removes it and keeps the others', async () => {
    fx.emu.seedSecret(NS, SECRET, { other: 'kept' });
    const t = await fx.make({ restart: [] });
    const pf = await t.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.willCreate).toBe(true);
    expect(pf.notes?.join('\n')).toContain(`key ${KEY} is not in secret ${SECRET} yet: it will be added`);
    const value = new Secret(newKey);
    const receipt = await t.write(value, op('rot_new', value));
    expect(fx.emu.getSecret(NS, SECRET)!.data).toEqual({ other: 'kept', [KEY]: newKey });
    await restoreAndRedeploy(t, null, op('rot_new', value), receipt);
    const s = fx.emu.getSecret(NS, SECRET)!;
    expect(s.data).toEqual({ other: 'kept' });
    expect(s.annotations[ANNOTATIONS.fingerprint]).toBeUndefined();
    expect(await t.read()).toEqual({ kind: 'absent' });
  });

  it('restore when this rotation never wrote the key writes and restarts nothing', async () => {
    const t = await fx.make();
    await t.restore(new Secret(oldKey), op('rot_never'), undefined);
    expect(fx.emu.server.requests.filter((r) => r.method === 'PATCH')).toHaveLength(0);
  });

  it('permission error: a 403 is a permission problem naming the verb and the resource', async () => {
    fx.emu.deny('patch', 'secrets');
    const t = await fx.make();
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain(`Kubernetes denied patch on secrets/${SECRET} in namespace ${NS}`);
    const value = new Secret(newKey);
    const err = await rejection(t.write(value, op('rot_403', value)));
    expect(err.kind).toBe('permission');
    expect(err.message).toContain(`Kubernetes denied patch on secrets/${SECRET} in namespace ${NS} to ${fx.emu.user}`);
    expect(err.message).not.toContain(newKey);

    fx.emu.allowAll();
    fx.emu.deny('get', 'secrets');
    expect((await t.preflight()).reason).toContain(`Kubernetes denied get on secrets/${SECRET} in namespace ${NS}`);

    fx.emu.allowAll();
    fx.emu.deny('patch', 'deployments', { name: 'api' });
    expect((await t.preflight()).reason).toContain(`Kubernetes denied patch on deployments/api in namespace ${NS}`);
    const o = op('rot_403b', value);
    const receipt = await t.write(value, o);
    const err2 = await rejection(t.redeploy!(o, receipt));
    expect(err2.kind).toBe('permission');
    expect(err2.message).toContain(`Kubernetes denied patch on deployments/api in namespace ${NS}`);
  });

  it('401 message: rejected credentials are an auth error naming the context', async () => {
    const t = await fx.make();
    fx.emu.revokeToken();
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain('Kubernetes rejected the credentials of kubeconfig context "keyrot-emulator" (401 Unauthorized)');
    const err = await rejection(t.write(new Secret(newKey), op()));
    expect(err.kind).toBe('auth');
    expect(err.status).toBe(401);
    expect(err.message).not.toContain(fx.emu.token);
  });

  it('says exactly what is missing: namespace, secret or workload', async () => {
    expect((await (await fx.make({ namespace: 'nope' })).preflight()).reason).toBe('Kubernetes namespace nope does not exist (context "keyrot-emulator")');
    expect((await (await fx.make({ secret: 'nope' })).preflight()).reason).toContain(`Kubernetes secret nope does not exist in namespace ${NS}`);
    const pf = await (await fx.make({ restart: ['deployment/api', 'deploy/nope'] })).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toBe(`Kubernetes deployment/nope (listed in restart:) does not exist in namespace ${NS}`);
    const err = await rejection((await fx.make({ secret: 'nope' })).write(new Secret(newKey), op()));
    expect(err.kind).toBe('not-found');
    expect(err.message).toBe(`Kubernetes secret nope not found in namespace ${NS} (context "keyrot-emulator")`);
  });

  it('refuses immutable and controller-owned secrets and paused or OnDelete workloads', async () => {
    fx.emu.seedSecret(NS, 'frozen', { [KEY]: oldKey }, { immutable: true });
    fx.emu.seedSecret(NS, 'synced', { [KEY]: oldKey }, { ownerReferences: [{ apiVersion: 'external-secrets.io/v1', kind: 'ExternalSecret', name: 'openai', uid: 'u1', controller: true }] });
    fx.emu.seedWorkload('deployment', NS, 'held', { paused: true });
    fx.emu.seedWorkload('statefulset', NS, 'manual', { updateStrategy: 'OnDelete' });
    expect((await (await fx.make({ secret: 'frozen' })).preflight()).reason).toContain('the secret is immutable');
    expect((await (await fx.make({ secret: 'synced' })).preflight()).reason).toContain('managed by ExternalSecret openai');
    expect((await (await fx.make({ restart: ['deployment/held'] })).preflight()).reason).toContain('run kubectl -n default rollout resume deployment/held first');
    expect((await (await fx.make({ restart: ['statefulset/manual'] })).preflight()).reason).toContain('uses the OnDelete update strategy');
    // The API server itself refuses a change to an immutable secret (422), and keyrot says why first.
    const err = await rejection((await fx.make({ secret: 'frozen' })).write(new Secret(newKey), op()));
    expect(err.kind).toBe('invalid');
    expect(err.message).toContain('immutable');
  });

  it('a 429 is retried by the engine policy after the server\'s Retry-After', async () => {
    const t = await fx.make();
    fx.emu.failNextWithRateLimit({ retryAfterSeconds: 3 });
    let attempts = 0;
    const value = new Secret(newKey);
    await withRetry(
      async () => {
        attempts++;
        return t.write(value, op('rot_429', value));
      },
      { clock: fx.clock, random: () => 0 },
    );
    expect(attempts).toBe(2);
    expect(fx.clock.slept).toContain(3000);
    expect(fx.emu.getSecret(NS, SECRET)!.data[KEY]).toBe(newKey);
  });

  it('key never in errors: no failure message carries the key or its base64', async () => {
    const key = testKey();
    const value = new Secret(key);
    const o = op('rot_leak', value);
    const errors: TargetError[] = [];
    const t = await fx.make({ timeout: '10s' });
    fx.emu.deny('patch', 'secrets');
    errors.push(await rejection(t.write(value, o)));
    fx.emu.allowAll();
    fx.emu.conflictNext({ times: MAX_CONFLICT_TRIES });
    errors.push(await rejection(t.write(value, o)));
    fx.emu.setRolloutBehaviour('*', { mode: 'stuck' });
    const receipt = await t.write(value, o);
    errors.push(await rejection(t.redeploy!(o, receipt)));
    fx.emu.seedSecret(NS, 'frozen', { [KEY]: oldKey }, { immutable: true });
    errors.push(await rejection((await fx.make({ secret: 'frozen' })).write(value, o)));
    fx.emu.revokeToken();
    errors.push(await rejection(t.write(value, o)));
    errors.push(await rejection(t.restore(new Secret(oldKey), o, receipt)));
    expect(errors.map((e) => e.kind)).toEqual(['permission', 'conflict', 'timeout', 'invalid', 'auth', 'auth']);
    for (const e of errors) {
      for (const text of [e.message, JSON.stringify(e), String(e.stack)]) {
        expect(text).not.toContain(key);
        expect(text).not.toContain(b64(key));
      }
    }
  });

  it('transient API errors while waiting for the rollout keep it polling', async () => {
    const t = await fx.make();
    const value = new Secret(newKey);
    const o = op('rot_503', value);
    const receipt = await t.write(value, o);
    fx.emu.server.failNext({
      method: 'GET',
      path: `/apis/apps/v1/namespaces/${NS}/deployments/api`,
      status: 503,
      body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'etcdserver: leader changed', reason: 'ServiceUnavailable', code: 503 },
      times: 3,
    });
    // The first read (before the restart) fails: that is an error of the call itself, retryable.
    const first = await rejection(t.redeploy!(o, receipt));
    expect(first.kind).toBe('unavailable');
    expect(first.retryable).toBe(true);
    expect(first.message).toContain('failed on get deployment/api in namespace default (503 ServiceUnavailable)');
    // Once restarted, failures of the status reads are ridden out until the deadline: the first
    // poll sleep arms two 503s for the next reads.
    fx.emu.server.clearFaults();
    let armed = false;
    const clock = {
      ...fx.clock,
      sleep: async (ms: number) => {
        if (!armed) {
          armed = true;
          fx.emu.server.failNext({ method: 'GET', path: `/apis/apps/v1/namespaces/${NS}/deployments/api`, status: 503, times: 2 });
        }
        await fx.clock.sleep(ms);
      },
    };
    const polling = await kubernetes.create({ namespace: NS, secret: SECRET, key: KEY, restart: ['deployment/api'] }, { ...fx.ctx, clock });
    const res = await polling.redeploy!(o, receipt);
    expect(res.detail).toBe('deployment/api rolled out');
    expect(fx.emu.server.requests.filter((r) => r.status === 503)).toHaveLength(3);
    expect(rolloutStatus('deployment', fx.emu.getWorkload('deployment', NS, 'api')!).done).toBe(true);
  });

  it('an unreachable API server is named with its context', async () => {
    const t = await fx.make();
    await fx.emu.stop();
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toBe(`cannot reach the Kubernetes API server ${fx.emu.url} of context "keyrot-emulator" (ECONNREFUSED)`);
  });

  it('without restart: the instance does not redeploy', async () => {
    const t = await fx.make({ restart: undefined });
    expect(t.redeploy).toBeUndefined();
    expect((await t.preflight()).notes ?? []).not.toContain(expect.stringContaining('restarts'));
  });

  it('the data key defaults to the target variable name', async () => {
    fx.emu.seedSecret(NS, SECRET, { OPENAI_API_KEY: oldKey });
    const t = await fx.make({ key: undefined, restart: [] });
    expect(t.location).toBe(`${NS}/${SECRET}[OPENAI_API_KEY]`);
    const pf = await t.preflight();
    expect(pf.current.kind === 'value' && pf.current.value.equals(new Secret(oldKey))).toBe(true);
  });
});

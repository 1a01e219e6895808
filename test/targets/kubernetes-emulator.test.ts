import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as k8s from '@kubernetes/client-node';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { rolloutStatus } from '../../src/targets/kubernetes/rollout.ts';

/**
 * The emulator spoken to by the real client-node 2.x, as a later issue's Lease lock and the
 * kubernetes target will: Status error bodies, resourceVersion preconditions, patch content types,
 * generations and rollout progress, access reviews, discovery.
 */
describe('kubernetes emulator (through @kubernetes/client-node)', () => {
  const clock = fakeClock();
  const emu = new KubernetesEmulator({ now: clock.now, rolloutDelayMs: 2000 });
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let leases: k8s.CoordinationV1Api;
  let authz: k8s.AuthorizationV1Api;

  /** The ApiException a call ends with, its body parsed (client-node hands it over as text). */
  async function failure(p: Promise<unknown>): Promise<{ code: number; body: Record<string, any> }> {
    const err = (await p.then(
      () => {
        throw new Error('expected the call to fail');
      },
      (e: unknown) => e,
    )) as k8s.ApiException<unknown>;
    expect(err).toBeInstanceOf(k8s.ApiException);
    const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
    return { code: err.code, body: body as Record<string, any> };
  }

  beforeAll(async () => {
    await emu.start();
    kc = new k8s.KubeConfig();
    kc.loadFromString(emu.kubeconfig());
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    leases = kc.makeApiClient(k8s.CoordinationV1Api);
    authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    emu.seedNamespace('keyrot');
  });
  afterAll(() => emu.stop());

  it('leases: create, AlreadyExists, read, replace with resourceVersion, stale 409, missing 422', async () => {
    const now = new k8s.V1MicroTime(clock.now());
    const body: k8s.V1Lease = {
      metadata: { name: 'keyrot-production' },
      spec: { holderIdentity: 'host-a', leaseDurationSeconds: 60, acquireTime: now, renewTime: now, leaseTransitions: 0 },
    };
    const created = await leases.createNamespacedLease({ namespace: 'keyrot', body });
    expect(created.metadata?.resourceVersion).toBeTruthy();
    // MicroTime travels with microseconds (metav1.MicroTime, RFC3339Micro).
    const sent = JSON.parse(emu.server.calls('POST', '/apis/coordination.k8s.io/v1/namespaces/keyrot/leases').at(-1)!.rawBody);
    expect(sent.spec.renewTime).toMatch(/\.\d{6}Z$/);

    const again = await failure(leases.createNamespacedLease({ namespace: 'keyrot', body }));
    expect(again).toEqual({
      code: 409,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'leases.coordination.k8s.io "keyrot-production" already exists',
        reason: 'AlreadyExists',
        details: { name: 'keyrot-production', group: 'coordination.k8s.io', kind: 'leases' },
        code: 409,
      },
    });

    const read = await leases.readNamespacedLease({ name: 'keyrot-production', namespace: 'keyrot' });
    expect(read.spec?.holderIdentity).toBe('host-a');
    const renewed = await leases.replaceNamespacedLease({
      name: 'keyrot-production',
      namespace: 'keyrot',
      body: { ...read, spec: { ...read.spec, renewTime: new k8s.V1MicroTime(clock.now() + 1000) } },
    });
    expect(renewed.metadata?.resourceVersion).not.toBe(read.metadata?.resourceVersion);

    // A second holder working from the old read loses.
    const stale = await failure(
      leases.replaceNamespacedLease({ name: 'keyrot-production', namespace: 'keyrot', body: { ...read, spec: { ...read.spec, holderIdentity: 'host-b' } } }),
    );
    expect(stale.code).toBe(409);
    expect(stale.body.reason).toBe('Conflict');
    expect(stale.body.message).toBe(
      'Operation cannot be fulfilled on leases.coordination.k8s.io "keyrot-production": the object has been modified; please apply your changes to the latest version and try again',
    );

    const unconditional = await failure(
      leases.replaceNamespacedLease({ name: 'keyrot-production', namespace: 'keyrot', body: { metadata: { name: 'keyrot-production' }, spec: { holderIdentity: 'host-b' } } }),
    );
    expect(unconditional.code).toBe(422);
    expect(unconditional.body.reason).toBe('Invalid');

    // A plain Date serializes with milliseconds, which the API server cannot parse as MicroTime.
    const badTime = await failure(
      leases.replaceNamespacedLease({
        name: 'keyrot-production',
        namespace: 'keyrot',
        body: { ...renewed, spec: { ...renewed.spec, renewTime: new Date(clock.now()) as k8s.V1MicroTime } },
      }),
    );
    expect(badTime.code).toBe(400);

    const list = await leases.listNamespacedLease({ namespace: 'keyrot' });
    expect(list.items.map((l) => l.metadata?.name)).toEqual(['keyrot-production']);
    await leases.deleteNamespacedLease({ name: 'keyrot-production', namespace: 'keyrot' });
    expect((await failure(leases.readNamespacedLease({ name: 'keyrot-production', namespace: 'keyrot' }))).code).toBe(404);
  });

  it('secrets: Status bodies for 404 and 403, json-patch by default, test op 422, merge patch precondition 409', async () => {
    emu.seedSecret('keyrot', 's1', { a: 'one', b: 'two' });
    const missing = await failure(core.readNamespacedSecret({ name: 'nope', namespace: 'keyrot' }));
    expect(missing.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'secrets "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', kind: 'secrets' },
      code: 404,
    });

    // client-node's default PATCH Content-Type is json-patch (kubernetes README "Provider facts").
    const s = await core.readNamespacedSecret({ name: 's1', namespace: 'keyrot' });
    await core.patchNamespacedSecret({
      name: 's1',
      namespace: 'keyrot',
      body: [
        { op: 'test', path: '/metadata/resourceVersion', value: s.metadata!.resourceVersion },
        { op: 'replace', path: '/data/a', value: Buffer.from('uno').toString('base64') },
      ],
    });
    expect(emu.server.calls('PATCH', '/api/v1/namespaces/keyrot/secrets/s1').at(-1)!.headers['content-type']).toBe('application/json-patch+json');
    expect(emu.getSecret('keyrot', 's1')!.data).toEqual({ a: 'uno', b: 'two' });

    // A failing test op is 422 Invalid, not 409 (kubernetes README "Provider facts").
    const testFailed = await failure(
      core.patchNamespacedSecret({ name: 's1', namespace: 'keyrot', body: [{ op: 'test', path: '/metadata/resourceVersion', value: s.metadata!.resourceVersion }] }),
    );
    expect(testFailed.code).toBe(422);
    expect(testFailed.body.reason).toBe('Invalid');

    // A stale resourceVersion inside a merge patch is 409 Conflict.
    const stale = await failure(
      core.patchNamespacedSecret(
        { name: 's1', namespace: 'keyrot', body: { metadata: { resourceVersion: s.metadata!.resourceVersion }, data: { b: null } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
    );
    expect(stale.code).toBe(409);
    expect(emu.getSecret('keyrot', 's1')!.data.b).toBe('two');

    // stringData is merged into data and never stored or returned.
    const put = await core.replaceNamespacedSecret({ name: 's1', namespace: 'keyrot', body: { metadata: { name: 's1' }, stringData: { c: 'three' } } });
    expect(put.stringData).toBeUndefined();
    expect(emu.getSecret('keyrot', 's1')!.data).toEqual({ c: 'three' });

    const badKey = await failure(
      core.patchNamespacedSecret({ name: 's1', namespace: 'keyrot', body: { data: { 'bad key': 'eA==' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)),
    );
    expect(badKey.code).toBe(422);

    emu.deny('update', 'secrets', { name: 's1' });
    const forbidden = await failure(core.replaceNamespacedSecret({ name: 's1', namespace: 'keyrot', body: { metadata: { name: 's1' } } }));
    expect(forbidden.code).toBe(403);
    expect(forbidden.body.reason).toBe('Forbidden');
    expect(forbidden.body.message).toBe(`secrets "s1" is forbidden: User "${emu.user}" cannot update resource "secrets" in API group "" in the namespace "keyrot"`);
    emu.allowAll();
  });

  it('access reviews answer from the injected denials', async () => {
    const review = (verb: string) =>
      authz.createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { namespace: 'keyrot', verb, resource: 'secrets', name: 's1' } } },
      });
    expect((await review('patch')).status?.allowed).toBe(true);
    emu.deny('patch', 'secrets', { namespace: 'keyrot' });
    expect((await review('patch')).status?.allowed).toBe(false);
    expect((await review('get')).status?.allowed).toBe(true);
    emu.allowAll();
  });

  it('deployments: a template change bumps the generation and the rollout catches up over time', async () => {
    emu.seedWorkload('deployment', 'keyrot', 'web', { replicas: 2 });
    const before = await apps.readNamespacedDeployment({ name: 'web', namespace: 'keyrot' });
    expect(rolloutStatus('deployment', before).done).toBe(true);
    // A spec change outside the template: new generation, no rollout.
    const scaled = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: 'keyrot', body: { spec: { replicas: 3 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(scaled.metadata?.generation).toBe(2);
    expect(rolloutStatus('deployment', scaled).done).toBe(true);

    const patched = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: 'keyrot', body: { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z' } } } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    expect(patched.metadata?.generation).toBe(3);
    expect(patched.spec?.template.spec?.containers.map((c) => c.name)).toEqual(['app']);
    expect(rolloutStatus('deployment', patched).message).toBe('Waiting for deployment spec update to be observed...');
    await clock.sleep(500);
    const rolling = await apps.readNamespacedDeployment({ name: 'web', namespace: 'keyrot' });
    expect(rolloutStatus('deployment', rolling).message).toBe('Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...');
    await clock.sleep(2000);
    expect(rolloutStatus('deployment', await apps.readNamespacedDeployment({ name: 'web', namespace: 'keyrot' }))).toEqual({
      done: true,
      message: 'deployment "web" successfully rolled out',
    });
    // A patch that changes nothing is not a write and starts nothing.
    const rv = (await apps.readNamespacedDeployment({ name: 'web', namespace: 'keyrot' })).metadata?.resourceVersion;
    const same = await apps.patchNamespacedDeployment(
      { name: 'web', namespace: 'keyrot', body: { spec: { replicas: 3 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(same.metadata?.resourceVersion).toBe(rv);
    expect(same.metadata?.generation).toBe(3);
  });

  it('discovery, 401, unknown routes and 429', async () => {
    const resources = await core.getAPIResources();
    expect(resources.resources.map((r) => r.name)).toContain('secrets');
    const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    expect(groups.groups.map((g) => g.name)).toEqual(expect.arrayContaining(['apps', 'coordination.k8s.io', 'authorization.k8s.io']));

    const res = await fetch(`${emu.url}/api/v1/namespaces/keyrot/secrets/s1`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });

    const unknown = await fetch(`${emu.url}/api/v1/namespaces/keyrot/pods/x`, { headers: { authorization: `Bearer ${emu.token}` } });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { message: string }).message).toContain('no route for GET /api/v1/namespaces/keyrot/pods/x');

    emu.failNextWithRateLimit({ retryAfterSeconds: 2 });
    const throttled = await failure(core.readNamespacedSecret({ name: 's1', namespace: 'keyrot' }));
    expect(throttled.code).toBe(429);
    expect(throttled.body.reason).toBe('TooManyRequests');
    expect(emu.server.requests.at(-1)!.status).toBe(429);
  });
});

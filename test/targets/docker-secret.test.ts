import { readFileSync } from 'node:fs';
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { dockerSecret } from '../../src/targets/docker-secret/index.ts';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import type { Target } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';
import { dockerEngine, stopPrivateEngine, uniqueName, type TestDocker } from '../helpers/docker-engine.ts';
import { startEngineProxy } from '../helpers/docker-secret-proxy.ts';
import { demo } from '../../emulators/docker/demo.ts';
import type { DockerSecretReceipt } from '../../src/targets/docker-secret/index.ts';

/**
 * docker-secret against a REAL Docker Engine in swarm mode (test/helpers/docker-engine.ts starts
 * a private dockerd when needed). Services run 0 replicas of an image that is never pulled: the
 * swap, the labels and the Engine's update bookkeeping are real; running tasks are covered by
 * docker-secret-live.test.ts.
 */
const docker = await dockerEngine();
const skip = 'skip' in docker ? docker.skip : undefined;
if (skip) console.warn(`[docker-secret] skipped: ${skip}`);

interface Fixture {
  p: string;
  base: string;
  api: string;
  worker: string;
  bystander: string;
  oldKey: string;
  target: Target<DockerSecretReceipt>;
  make(overrides?: Record<string, unknown>, env?: NodeJS.ProcessEnv): Promise<Target<DockerSecretReceipt>>;
}

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e as TargetError,
  );

afterAll(() => {
  if (!('skip' in docker)) docker.close();
});

const op = (rotationId: string, value: string, signal?: AbortSignal) => ({ rotationId, fingerprint: new Secret(value).fingerprint, signal });

describe.skipIf(skip !== undefined)('docker-secret target (real Docker Engine)', () => {
  const d = docker as TestDocker;
  const targets: Target<DockerSecretReceipt>[] = [];
  const prefixes: string[] = [];

  async function fixture(): Promise<Fixture> {
    const p = uniqueName('krt');
    prefixes.push(p);
    const base = `${p}_openai`;
    const oldKey = testKey();
    await d.createSecret(base, oldKey);
    // Same name prefix as the family but not a version of it, and an unrelated secret: both must stay untouched.
    await d.createSecret(`${base}_backup`, testKey());
    await d.createSecret(`${p}_db`, 'db-password-not-a-key');
    const api = `${p}-api`;
    const worker = `${p}-worker`;
    const bystander = `${p}-bystander`;
    await d.createService(api, [
      { secret: base, target: 'openai_api_key', uid: '1000', gid: '1001', mode: 0o400 },
      { secret: `${p}_db`, target: 'db_password' },
    ]);
    await d.createService(worker, [{ secret: base, target: 'OPENAI_KEY', uid: '33', gid: '33', mode: 0o440 }]);
    await d.createService(bystander, [{ secret: `${base}_backup`, target: 'openai_api_key' }]);
    const make = async (overrides: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = d.env) => {
      const t = await dockerSecret.create(
        { secret: base, services: [api, worker], ...overrides } as never,
        testContext({ env, name: 'docker' }),
      );
      targets.push(t);
      return t;
    };
    return { p, base, api, worker, bystander, oldKey, target: await make(), make };
  }

  const refs = async (service: string) => (await d.service(service)).Spec.TaskTemplate.ContainerSpec.Secrets as any[];

  afterEach(async () => {
    for (const t of targets.splice(0)) await t.close?.();
  });
  afterAll(async () => {
    for (const p of prefixes) await d.cleanup(p);
  });

  it('preflight is ready: the value is unreadable, the notes name the Engine and the current secret', async () => {
    const fx = await fixture();
    const pf = await fx.target.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind).toBe('unreadable');
    const { apiVersion, version } = await d.engine.info();
    expect(pf.notes!.join('\n')).toContain(`Docker Engine ${version} (API ${apiVersion})`);
    expect(pf.notes!.join('\n')).toContain(`current secret ${fx.base} (created outside keyrot: no fingerprint label)`);
    expect(pf.notes!.join('\n')).toContain(`/run/secrets/openai_api_key (uid 1000, gid 1001, mode 0400)`);
    expect(pf.notes!.join('\n')).toContain(`write creates ${fx.base}_2`);
    expect(await fx.target.read()).toMatchObject({ kind: 'unreadable' });
    expect(dockerSecret.capabilities).toEqual({ readBack: 'never', versioned: true });
    expect(fx.target.redeploy).toBeUndefined(); // swapping the secret IS the rolling restart, waited for by write
    expect(fx.target.finalize).toBeTypeOf('function');
  });

  it('write creates <secret>_2 with the labels and swaps the reference keeping file name, uid, gid and mode; nothing else changes', async () => {
    const fx = await fixture();
    const before = {
      api: await refs(fx.api),
      worker: await refs(fx.worker),
      bystander: await d.service(fx.bystander),
      db: await d.secret(`${fx.p}_db`),
      backup: await d.secret(`${fx.base}_backup`),
      old: await d.secret(fx.base),
    };
    const newKey = testKey();
    const o = op('rot_write_1', newKey);
    const receipt = await fx.target.write(new Secret(newKey), o);

    const created = await d.secret(`${fx.base}_2`);
    expect(created).not.toBeNull();
    expect(created.Spec.Labels).toMatchObject({
      'managed-by': 'keyrot',
      'keyrot.fingerprint': new Secret(newKey).fingerprint,
      'keyrot.rotation': 'rot_write_1',
      'keyrot.previous': fx.base,
      'keyrot.previous-id': before.old.ID,
      [`keyrot.previous.${fx.api}`]: before.old.ID,
      [`keyrot.previous.${fx.worker}`]: before.old.ID,
    });
    expect(receipt).toEqual({
      newSecret: `${fx.base}_2`,
      newSecretId: created.ID,
      oldSecret: fx.base,
      oldSecretId: before.old.ID,
      services: [fx.api, fx.worker],
    });
    expect(JSON.stringify(receipt)).not.toContain(newKey);

    const api = await refs(fx.api);
    expect(api).toHaveLength(2);
    const [apiKeyBefore, dbBefore] = before.api;
    const apiKey = api.find((r) => r.File.Name === 'openai_api_key');
    expect(apiKey).toEqual({ ...apiKeyBefore, SecretID: created.ID, SecretName: `${fx.base}_2` });
    expect(apiKey.File).toEqual({ Name: 'openai_api_key', UID: '1000', GID: '1001', Mode: 0o400 });
    expect(api.find((r) => r.File.Name === 'db_password')).toEqual(dbBefore);
    expect((await refs(fx.worker))[0]).toEqual({ ...before.worker[0], SecretID: created.ID, SecretName: `${fx.base}_2` });
    expect((await refs(fx.worker))[0].File).toEqual({ Name: 'OPENAI_KEY', UID: '33', GID: '33', Mode: 0o440 });

    // Untouched: the bystander service (same version: never updated), the other secrets, the old secret.
    expect(await d.service(fx.bystander)).toEqual(before.bystander);
    expect(await d.secret(`${fx.p}_db`)).toEqual(before.db);
    expect(await d.secret(`${fx.base}_backup`)).toEqual(before.backup);
    expect(await d.secret(fx.base)).toEqual(before.old);
    expect((await d.secrets(fx.p)).map((s) => s.Spec.Name)).toEqual([`${fx.p}_db`, fx.base, `${fx.base}_2`, `${fx.base}_backup`]);

    // A second write of the same rotation and value: no new secret, no service update.
    const versions = [(await d.service(fx.api)).Version.Index, (await d.service(fx.worker)).Version.Index];
    expect(await fx.target.write(new Secret(newKey), o)).toEqual(receipt);
    expect((await d.secrets(fx.base)).length).toBe(3);
    expect([(await d.service(fx.api)).Version.Index, (await d.service(fx.worker)).Version.Index]).toEqual(versions);
  });

  it('verify proves the write by the services’ references and the fingerprint label, and refuses anything else', async () => {
    const fx = await fixture();
    const newKey = testKey();
    const o = op('rot_verify', newKey);
    const receipt = await fx.target.write(new Secret(newKey), o);
    const v = await fx.target.verify(new Secret(newKey), o, receipt);
    expect(v.method).toBe('metadata');
    expect(v.detail).toContain(`${fx.api}, ${fx.worker} mount ${fx.base}_2`);
    // Replicas 0: the Engine never sets UpdateStatus (checked on Engine 20.10): done = no task to replace.
    expect(v.detail).toContain('no running tasks to update');
    // Without the receipt (crash before the journal recorded it): found by its labels.
    expect((await fx.target.verify(new Secret(newKey), o, undefined)).detail).toContain(`${fx.base}_2`);

    const other = testKey();
    const wrong = await errorOf(fx.target.verify(new Secret(other), o, receipt));
    expect(wrong).toBeInstanceOf(TargetError);
    expect(wrong!.kind).toBe('mismatch');
    expect(wrong!.message).toContain(`labelled keyrot.fingerprint ${new Secret(newKey).fingerprint}`);
    expect(wrong!.message).not.toContain(other);

    // A service pointed elsewhere behind keyrot's back is a mismatch naming it.
    const svc = await d.service(fx.worker);
    const spec = structuredClone(svc.Spec);
    const old = await d.secret(fx.base);
    spec.TaskTemplate.ContainerSpec.Secrets[0] = { ...spec.TaskTemplate.ContainerSpec.Secrets[0], SecretID: old.ID, SecretName: fx.base };
    await d.engine.call('POST', `/services/${svc.ID}/update?version=${svc.Version.Index}`, spec);
    const moved = await errorOf(fx.target.verify(new Secret(newKey), o, receipt));
    expect(moved!.kind).toBe('mismatch');
    expect(moved!.message).toContain(`service ${fx.worker} mounts ${fx.base}, not ${fx.base}_2`);
  });

  it('restore swaps every service back to the old secret exactly and removes the new one; idempotent, with or without receipt', async () => {
    const fx = await fixture();
    const before = { api: await refs(fx.api), worker: await refs(fx.worker) };
    const newKey = testKey();
    const o = op('rot_restore', newKey);
    const receipt = await fx.target.write(new Secret(newKey), o);
    await fx.target.restore(new Secret(fx.oldKey), o, receipt);
    expect(await refs(fx.api)).toEqual(before.api);
    expect(await refs(fx.worker)).toEqual(before.worker);
    expect(await d.secret(`${fx.base}_2`)).toBeNull();
    expect(await d.secret(fx.base)).not.toBeNull();
    await fx.target.restore(new Secret(fx.oldKey), o, receipt);
    expect(await refs(fx.api)).toEqual(before.api);

    // Crash between write and journal: restore finds the rotation's secret by its labels.
    const k3 = testKey();
    const o3 = op('rot_restore_3', k3);
    await fx.target.write(new Secret(k3), o3);
    expect((await refs(fx.api))[0].SecretName).toMatch(new RegExp(`^${fx.base}_\\d+$`));
    await fx.target.restore(null, o3, undefined);
    expect(await refs(fx.api)).toEqual(before.api);
    expect(await refs(fx.worker)).toEqual(before.worker);
    expect((await d.secrets(fx.base)).filter((s) => s.Spec.Labels['keyrot.rotation'] === 'rot_restore_3')).toEqual([]);
  });

  it('finalize removes the old secret (idempotent) and the next rotation continues from the new one', async () => {
    const fx = await fixture();
    const k1 = testKey();
    const o1 = op('rot_fin_1', k1);
    const r1 = await fx.target.write(new Secret(k1), o1);
    await fx.target.finalize!(o1, r1);
    expect(await d.secret(fx.base)).toBeNull();
    await fx.target.finalize!(o1, r1);
    await fx.target.finalize!(o1, undefined);
    expect(await d.secret(`${fx.base}_2`)).not.toBeNull();
    expect(await d.secret(`${fx.base}_backup`)).not.toBeNull();

    const pf = await fx.target.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.notes!.join('\n')).toContain(`current secret ${fx.base}_2 (keyrot.fingerprint ${new Secret(k1).fingerprint}, rotation rot_fin_1)`);

    const k2 = testKey();
    const o2 = op('rot_fin_2', k2);
    const r2 = await fx.target.write(new Secret(k2), o2);
    expect(r2).toMatchObject({ newSecret: `${fx.base}_3`, oldSecret: `${fx.base}_2` });
    await fx.target.finalize!(o2, undefined);
    expect((await d.secrets(fx.base)).map((s) => s.Spec.Name)).toEqual([`${fx.base}_3`, `${fx.base}_backup`]);
  });

  it('finalize leaves an old secret that another service still mounts, and says which', async () => {
    const fx = await fixture();
    const straggler = `${fx.p}-straggler`;
    await d.createService(straggler, [{ secret: fx.base, target: 'openai_api_key' }]);
    const k = testKey();
    const o = op('rot_fin_conflict', k);
    const r = await fx.target.write(new Secret(k), o);
    const err = await errorOf(fx.target.finalize!(o, r));
    expect(err).toBeInstanceOf(TargetError);
    expect(err!.kind).toBe('conflict');
    expect(err!.message).toContain(`old secret ${fx.base} is still mounted by ${straggler}`);
    expect(err!.message).toContain(`keyrot left ${fx.base} in place`);
    expect(await d.secret(fx.base)).not.toBeNull();
  });

  it('restore re-creates the old value when the old secret is already gone', async () => {
    const fx = await fixture();
    const k = testKey();
    const o = op('rot_recreate', k);
    const r = await fx.target.write(new Secret(k), o);
    await fx.target.finalize!(o, r);
    await fx.target.restore(new Secret(fx.oldKey), o, r);
    const back = (await refs(fx.api)).find((x) => x.File.Name === 'openai_api_key');
    const s = await d.secret(back.SecretID);
    expect(s.Spec.Name).toBe(`${fx.base}_3`);
    expect(s.Spec.Labels).toMatchObject({ 'keyrot.restored': 'true', 'keyrot.fingerprint': new Secret(fx.oldKey).fingerprint });
    expect((await refs(fx.worker))[0].SecretID).toBe(s.ID);
    expect(await d.secret(`${fx.base}_2`)).toBeNull();
    // Without the old value there is nothing to swap back to: said plainly.
    const k2 = testKey();
    const o2 = op('rot_recreate_2', k2);
    const r2 = await fx.target.write(new Secret(k2), o2);
    await fx.target.finalize!(o2, r2);
    const err = await errorOf(fx.target.restore(null, o2, r2));
    expect(err!.kind).toBe('not-found');
    expect(err!.message).toContain('no longer exists and no previous value is known');
  });

  it('preflight reports a missing secret, a missing service and a service that does not mount the secret', async () => {
    const fx = await fixture();
    const missingSecret = await fx.make({ secret: `${fx.p}_nothere` });
    const pf1 = await missingSecret.preflight();
    expect(pf1.status).toBe('blocked');
    expect(pf1.reason).toContain(`Docker secret ${fx.p}_nothere not found (nor any ${fx.p}_nothere_<n>)`);
    expect(pf1.reason).toContain(`docker secret create ${fx.p}_nothere -`);

    const missingService = await fx.make({ services: [fx.api, `${fx.p}-ghost`] });
    const pf2 = await missingService.preflight();
    expect(pf2.status).toBe('blocked');
    expect(pf2.reason).toContain(`Docker service ${fx.p}-ghost not found in the swarm`);

    const notMounting = await fx.make({ services: [fx.api, fx.bystander] });
    const pf3 = await notMounting.preflight();
    expect(pf3.status).toBe('blocked');
    expect(pf3.reason).toContain(`service ${fx.bystander} does not mount secret ${fx.base}`);
    expect(pf3.reason).toContain(`--secret-add source=${fx.base},target=${fx.base} ${fx.bystander}`);
    // The write refuses the same way, before creating anything.
    const key = testKey();
    const err = await errorOf(notMounting.write(new Secret(key), op('rot_nm', key)));
    expect(err!.kind).toBe('not-found');
    expect(err!.message).not.toContain(key);
    expect(JSON.stringify(err)).not.toContain(key);
    expect((await d.secrets(fx.base)).map((s) => s.Spec.Name)).toEqual([fx.base, `${fx.base}_backup`]);
    const err2 = await errorOf(missingService.write(new Secret(key), op('rot_ms', key)));
    expect(err2!.kind).toBe('not-found');
    expect(err2!.message).not.toContain(key);
  });

  it('a node outside swarm mode: preflight says how to fix it, write fails without showing the key', async (t) => {
    // A second private Engine, never swarm-initialised (in CI its absence fails inside dockerEngine).
    const plain = await dockerEngine({ swarm: false });
    if ('skip' in plain) return t.skip(plain.skip);
    try {
      const target = await dockerSecret.create({ secret: 'openai_api_key', services: ['api'] }, testContext({ env: plain.env, name: 'docker' }));
      targets.push(target);
      const pf = await target.preflight();
      expect(pf.status).toBe('blocked');
      expect(pf.reason).toContain(`the Docker Engine at ${plain.host} is not a swarm manager`);
      expect(pf.reason).toContain('docker swarm init');
      const key = testKey();
      const err = await errorOf(target.write(new Secret(key), op('rot_noswarm', key)));
      expect(err).toBeInstanceOf(TargetError);
      expect(err!.kind).toBe('unavailable');
      expect(err!.retryable).toBe(false);
      expect(err!.message).toContain('is not a swarm manager');
      expect(err!.message).not.toContain(key);
    } finally {
      plain.close();
      await stopPrivateEngine('plain');
    }
  }, 90_000);

  it('an unreachable or unsupported DOCKER_HOST is a preflight error in product words', async () => {
    const gone = await dockerSecret.create(
      { secret: 'openai_api_key', services: ['api'] },
      testContext({ env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } }),
    );
    const pf = await gone.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain('cannot reach the Docker Engine at unix:///nonexistent/docker.sock (ENOENT)');
    const ssh = await dockerSecret.create({ secret: 'openai_api_key', services: ['api'] }, testContext({ env: { DOCKER_HOST: 'ssh://ops@manager' } }));
    const pf2 = await ssh.preflight();
    expect(pf2.status).toBe('blocked');
    expect(pf2.reason).toContain('keyrot does not speak ssh');
    expect(pf2.reason).not.toContain('ops@');
  });

  it('over tcp:// (a socket proxy): the key travels only base64 in the body of POST /secrets/create', async () => {
    const fx = await fixture();
    const socket = d.host.replace(/^unix:\/\//, '');
    const proxy = await startEngineProxy(socket);
    try {
      const t = await fx.make({}, { DOCKER_HOST: proxy.host });
      const key = testKey();
      const o = op('rot_proxy', key);
      expect((await t.preflight()).status).toBe('ready');
      const r = await t.write(new Secret(key), o);
      await t.verify(new Secret(key), o, r);
      await t.restore(new Secret(fx.oldKey), o, r);
      const b64 = Buffer.from(key).toString('base64');
      const carrying = proxy.requests.filter((q) => q.body.includes(b64) || q.body.includes(key) || q.path.includes(key));
      expect(carrying.map((q) => `${q.method} ${q.path.replace(/^\/v[\d.]+/, '')}`)).toEqual(['POST /secrets/create']);
      expect(carrying[0]!.body).not.toContain(key);
      // Every call is versioned with what the Engine reported (after the one unversioned GET /version).
      const { apiVersion } = await d.engine.info();
      expect(proxy.requests[0]!.path).toBe('/version');
      expect(proxy.requests.slice(1).every((q) => q.path.startsWith(`/v${apiVersion}/`))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('a stale service version ("update out of sequence") is re-read and retried, keeping the concurrent change', async () => {
    const fx = await fixture();
    const proxy = await startEngineProxy(d.host.replace(/^unix:\/\//, ''));
    try {
      let bumped = 0;
      proxy.hook = async (q) => {
        if (q.method === 'POST' && /\/services\/[^/]+\/update/.test(q.path) && bumped < 2) {
          // Someone else deploys the service between keyrot's read and its write.
          bumped++;
          const id = /\/services\/([^/]+)\/update/.exec(q.path)![1]!;
          const svc = await d.service(id);
          const spec = { ...svc.Spec, Labels: { ...svc.Spec.Labels, [`deployed-${bumped}`]: 'yes' } };
          await d.engine.call('POST', `/services/${id}/update?version=${svc.Version.Index}`, spec);
        }
      };
      const t = await fx.make({}, { DOCKER_HOST: proxy.host });
      const key = testKey();
      await t.write(new Secret(key), op('rot_conflict', key));
      const updates = proxy.requests.filter((q) => q.method === 'POST' && q.path.includes('/update'));
      expect(updates.length).toBe(4); // two refused as out of sequence, then one per service
      const api = await d.service(fx.api);
      const worker = await d.service(fx.worker);
      expect(api.Spec.Labels).toMatchObject({ 'deployed-1': 'yes', 'deployed-2': 'yes' });
      expect(api.Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName).toBe(`${fx.base}_2`);
      expect(worker.Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName).toBe(`${fx.base}_2`);
    } finally {
      await proxy.close();
    }
  });

  it('a transient Engine failure is retried by the engine policy (Docker has no rate limiting)', async () => {
    const fx = await fixture();
    const proxy = await startEngineProxy(d.host.replace(/^unix:\/\//, ''));
    try {
      let failed = 0;
      proxy.hook = (q) => {
        if (q.method === 'POST' && q.path.endsWith('/secrets/create') && failed === 0) {
          failed++;
          // What a manager answers while the swarm has no leader (raft election).
          return {
            respond: {
              status: 503,
              body: { message: "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online." },
            },
          };
        }
      };
      const t = await fx.make({}, { DOCKER_HOST: proxy.host });
      const key = testKey();
      const clock = fakeClock();
      const seen: string[] = [];
      await withRetry(() => t.write(new Secret(key), op('rot_transient', key)), {
        clock,
        random: () => 0.5,
        onRetry: ({ error }) => seen.push(`${error.kind}: ${error.message}`),
      });
      expect(seen).toHaveLength(1);
      expect(seen[0]).toContain('unavailable: the Docker Engine at tcp://127.0.0.1');
      expect(seen[0]).toContain('does not have a leader');
      expect(seen[0]).not.toContain(key);
      expect((await d.secrets(fx.base)).map((s) => s.Spec.Name)).toEqual([fx.base, `${fx.base}_2`, `${fx.base}_backup`]);
    } finally {
      await proxy.close();
    }
  });
});

describe.skipIf(skip !== undefined)('docker-secret demo (keyrot demo on a real Engine)', () => {
  const d = docker as TestDocker;
  const saved = process.env.DOCKER_HOST;
  afterEach(() => {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });

  it('seeds a secret and a 0-replica service, rotates through them, and removes everything it made', async () => {
    process.env.DOCKER_HOST = d.host;
    const oldKey = testKey();
    // The user's yes (`keyrot demo --docker`); without it the swarm is left alone (test/cli/demo-docker.test.ts).
    const asked: string[] = [];
    const setup = await demo({ oldKey, workDir: '/tmp', varName: 'OPENAI_API_KEY', consent: async (what) => (asked.push(what), true) });
    if ('skip' in setup) throw new Error(setup.skip);
    expect(asked.join('\n')).toMatch(/creates secret keyrot_demo_\w+ and service keyrot-demo-\w+/);
    const entry = setup.targets[0]!;
    expect(entry).toMatchObject({ type: 'docker-secret', endpoint: d.host });
    const secret = entry.secret as string;
    const t = await dockerSecret.create(
      { secret, services: entry.services as string[], endpoint: entry.endpoint as string },
      testContext({ env: {}, name: 'docker' }),
    );
    try {
      expect((await t.preflight()).status).toBe('ready');
      const key = testKey();
      const o = op('rot_demo', key);
      const r = await t.write(new Secret(key), o);
      await t.verify(new Secret(key), o, r);
      await t.finalize!(o, r);
    } finally {
      await t.close?.();
      await setup.stop();
    }
    expect(await d.secrets(secret)).toEqual([]);
    expect(await d.engine.call<any[]>('GET', `/services?filters=${encodeURIComponent(JSON.stringify({ name: [(entry.services as string[])[0]] }))}`)).toEqual([]);
  });

  it('is skipped with the reason when no Engine is reachable', async () => {
    process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
    const setup = await demo({ oldKey: testKey(), workDir: '/tmp', varName: 'OPENAI_API_KEY' });
    expect(setup).toEqual({ skip: expect.stringMatching(/^no Docker Engine at unix:\/\/\/nonexistent\/docker.sock \(start dockerd/) });
  });
});

describe('docker-secret never hands a value to a process', () => {
  it('the adapter and its Engine client spawn nothing: values only go in HTTP request bodies', () => {
    for (const f of ['docker-secret/adapter.ts', 'docker-secret/swarm.ts', 'docker-secret/index.ts', 'docker-engine.ts', 'docker-exec.ts']) {
      const src = readFileSync(new URL(`../../src/targets/${f}`, import.meta.url), 'utf8');
      expect(src, f).not.toMatch(/child_process|\bspawn(Sync)?\(|\bexecFile(Sync)?\(|\bexecSync\(|\bfork\(/);
    }
  });
});

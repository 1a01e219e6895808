import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile, mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demo } from '../../emulators/docker-compose/demo.ts';
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { dockerCompose, type DockerComposeReceipt } from '../../src/targets/docker-compose/index.ts';
import { sha256Hex } from '../../src/targets/docker-exec.ts';
import { envWith } from '../../src/targets/docker-compose/redeploy.ts';
import { createReplacement } from '../../src/targets/docker-compose/recreate.ts';
import type { Target } from '../../src/targets/types.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { composeDocker, composeFixture, type ComposeFixture } from '../helpers/compose.ts';
import type { TestDocker } from '../helpers/docker-engine.ts';

/**
 * docker-compose against a REAL Docker Engine with containers that really run (busybox): the
 * file is written on the host, then each service container is restarted or re-created, and what
 * the container sees is checked inside it (sha256sum), never trusted from the host.
 */
const engine = await composeDocker();
const skip = 'skip' in engine ? engine.skip : undefined;
const d = engine as TestDocker;

const SLEEP = ['sh', '-c', 'exec sleep 3600'];
/** Refuses a key file starting with `bad-` (an app that cannot start with the new key). */
const REFUSING = ['sh', '-c', 'read v < /run/secrets/openai_api_key; case "$v" in bad-*) exit 4;; esac; exec sleep 3600'];

describe.skipIf(skip !== undefined)('docker-compose on a real Docker Engine', () => {
  let fx: ComposeFixture;
  let target: Target<DockerComposeReceipt> | undefined;
  const oldKey = testKey();
  const newKey = testKey();
  const op = (fp = new Secret(newKey).fingerprint) => ({ rotationId: `rot_compose_${Math.random().toString(36).slice(2, 8)}`, fingerprint: fp });
  const make = async (config: Record<string, unknown>) =>
    (target = (await dockerCompose.create(
      dockerCompose.schema.parse({ project: fx.project, timeout: '60s', ...config }) as never,
      testContext({ baseDir: fx.dir, env: d.env, name: 'compose' }),
    )) as Target<DockerComposeReceipt>);

  beforeAll(async () => {
    fx = await composeFixture(d);
  }, 120_000);
  afterEach(async () => {
    await target?.close?.();
    target = undefined;
    await fx.close();
    fx = await composeFixture(d);
  }, 60_000);
  afterAll(async () => {
    await fx?.close();
  }, 60_000);

  async function keyFile(name: string, value: string): Promise<string> {
    const p = join(fx.dir, name);
    await writeFile(p, value + '\n', { mode: 0o600 });
    return p;
  }

  it('a single-file bind mount: the running container keeps the old file after the write, and sees the new one after the restart', async () => {
    const path = await keyFile('openai_api_key', oldKey);
    const id = await fx.container({ service: 'api', cmd: SLEEP, binds: [{ source: path, target: '/run/secrets/openai_api_key' }] });
    const t = await make({ file: 'openai_api_key', services: ['api'] });

    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.notes?.join('\n')).toMatch(/mounts openai_api_key itself at \/run\/secrets\/openai_api_key .*restarts the container/);

    const o = op();
    const receipt = await t.write(new Secret(newKey), o);
    expect(await readFile(path, 'utf8')).toBe(newKey + '\n');
    // The atomic rename left the container's bind mount on the old inode: this is why keyrot restarts it.
    expect(await fx.hashIn(id, { file: '/run/secrets/openai_api_key' })).toBe(sha256Hex(oldKey + '\n'));

    const v = await t.redeploy!(o, receipt, 'write');
    expect(v.detail).toBe(`${fx.project}-api-1 restarted, running`);
    expect(await fx.hashIn(id, { file: '/run/secrets/openai_api_key' })).toBe(sha256Hex(newKey + '\n'));
    expect(JSON.stringify(v) + JSON.stringify(receipt)).not.toContain(newKey);
  }, 120_000);

  it('restore without a receipt puts the old file back and restarts the container onto it', async () => {
    const path = await keyFile('openai_api_key', oldKey);
    const id = await fx.container({ service: 'api', cmd: SLEEP, binds: [{ source: path, target: '/run/secrets/openai_api_key' }] });
    const t = await make({ file: 'openai_api_key', services: ['api'] });
    const o = op();
    await t.redeploy!(o, await t.write(new Secret(newKey), o), 'write');

    await t.restore(new Secret(oldKey), o, undefined);
    expect(await readFile(path, 'utf8')).toBe(oldKey + '\n');
    await t.redeploy!(o, undefined, 'restore');
    expect(await fx.hashIn(id, { file: '/run/secrets/openai_api_key' })).toBe(sha256Hex(oldKey + '\n'));
  }, 120_000);

  it('a mounted directory and a symlinked key file: written through the link, the container restarted, verify: exec checks it inside', async () => {
    await mkdir(join(fx.dir, 'secrets'));
    const real = await keyFile('secrets/openai_api_key', oldKey);
    await symlink(real, join(fx.dir, 'key-link'));
    const mode = (await stat(real)).mode & 0o777;
    const id = await fx.container({ service: 'worker', cmd: SLEEP, binds: [{ source: join(fx.dir, 'secrets'), target: '/keys' }] });
    const t = await make({ file: 'key-link', services: ['worker'], verify: 'exec' });

    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.notes?.join('\n')).toMatch(/sees key-link at \/keys\/openai_api_key through a mount of/);
    expect(pf.notes?.join('\n')).toMatch(/verify: exec works in/);

    const o = op();
    const v = await t.redeploy!(o, await t.write(new Secret(newKey), o), 'write');
    expect(v.detail).toContain(`sees key ${new Secret(newKey).fingerprint}`);
    expect(await readFile(real, 'utf8')).toBe(newKey + '\n');
    expect((await stat(real)).mode & 0o777).toBe(mode);
    expect(await fx.hashIn(id, { file: '/keys/openai_api_key' })).toBe(sha256Hex(newKey + '\n'));
  }, 120_000);

  it('env_file: the variable is fixed at create time, so the container is re-created with the new value, keeping name, labels and mounts', async () => {
    await writeFile(join(fx.dir, '.env'), `OTHER=1\nOPENAI_API_KEY=${oldKey}\n`);
    const data = await keyFile('data.txt', 'x');
    const oldId = await fx.container({
      service: 'api',
      cmd: SLEEP,
      env: ['OTHER=1', `OPENAI_API_KEY=${oldKey}`],
      binds: [{ source: data, target: '/data.txt' }],
    });
    const before = await fx.inspect(oldId);
    const t = await make({ env_file: '.env', services: ['api'], verify: 'exec' });

    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.notes?.join('\n')).toMatch(/has OPENAI_API_KEY in its environment.*re-creates it/);

    const o = op();
    const v = await t.redeploy!(o, await t.write(new Secret(newKey), o), 'write');
    expect(v.detail).toMatch(/re-created, running, sees key/);
    const after = await fx.serviceContainer('api');
    expect(after.Id).not.toBe(oldId);
    expect(after.Name).toBe(before.Name);
    expect(after.State.Running).toBe(true);
    expect(after.Config.Labels['com.docker.compose.service']).toBe('api');
    expect(after.Mounts.map((m: any) => m.Destination)).toEqual(['/data.txt']);
    expect(after.Config.Env).toContain('OTHER=1');
    expect(await fx.hashIn(after.Id, { env: 'OPENAI_API_KEY' })).toBe(sha256Hex(newKey));
    // The re-create is idempotent: a second redeploy finds the container on the value already.
    const again = await t.redeploy!(o, undefined, 'write');
    expect(again.detail).toMatch(/already on it/);
    expect((await fx.serviceContainer('api')).Id).toBe(after.Id);

    await t.restore(new Secret(oldKey), o, undefined);
    await t.redeploy!(o, undefined, 'restore');
    const restored = await fx.serviceContainer('api');
    expect(await fx.hashIn(restored.Id, { env: 'OPENAI_API_KEY' })).toBe(sha256Hex(oldKey));
    expect(await readFile(join(fx.dir, '.env'), 'utf8')).toBe(`OTHER=1\nOPENAI_API_KEY=${oldKey}\n`);
  }, 180_000);

  it('a re-create interrupted after the replacement was created is finished by the next run', async () => {
    await writeFile(join(fx.dir, '.env'), `OPENAI_API_KEY=${oldKey}\n`);
    const oldId = await fx.container({ service: 'api', cmd: SLEEP, env: [`OPENAI_API_KEY=${oldKey}`] });
    const t = await make({ env_file: '.env', services: ['api'] });
    const o = op();
    await t.write(new Secret(newKey), o);
    // The step an interrupted run got to: the replacement exists under its temporary name, the old container still runs.
    const old = await fx.inspect(oldId);
    const lifecycle = { engine: d.engine, callMs: 30_000 };
    await createReplacement(old, envWith(old.Config.Env, 'OPENAI_API_KEY', new Secret(newKey)), o.rotationId, lifecycle);

    const v = await t.redeploy!(o, undefined, 'write');
    expect(v.detail).toMatch(/already on it, running/);
    const now = await fx.serviceContainer('api');
    expect(now.Id).not.toBe(oldId);
    expect(now.Name).toBe(old.Name);
    expect(now.State.Running).toBe(true);
    expect(await fx.hashIn(now.Id, { env: 'OPENAI_API_KEY' })).toBe(sha256Hex(newKey));
  }, 120_000);

  it('a container that exits on the new key stops the rotation with what the Engine says, and no key in it', async () => {
    const path = await keyFile('openai_api_key', oldKey);
    await fx.container({ service: 'api', cmd: REFUSING, binds: [{ source: path, target: '/run/secrets/openai_api_key' }] });
    const t = await make({ file: 'openai_api_key', services: ['api'] });
    const bad = `bad-${testKey()}`;
    const o = op(new Secret(bad).fingerprint);
    await t.write(new Secret(bad), o);
    const err = await t.redeploy!(o, undefined, 'write').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect((err as TargetError).message).toMatch(/exited with code 4 after keyrot started it: its app may refuse the key; see docker logs/);
    expect((err as TargetError).message).not.toContain(bad);
  }, 120_000);

  it('an unhealthy container after the restart stops the rotation', async () => {
    const path = await keyFile('openai_api_key', oldKey);
    await fx.container({
      service: 'api',
      cmd: SLEEP,
      binds: [{ source: path, target: '/run/secrets/openai_api_key' }],
      healthcheck: { Test: ['CMD-SHELL', 'read v < /run/secrets/openai_api_key; case "$v" in bad-*) exit 1;; esac'], Interval: 300_000_000, Retries: 1, Timeout: 5_000_000_000 },
    });
    const t = await make({ file: 'openai_api_key', services: ['api'] });
    const bad = `bad-${testKey()}`;
    const o = op(new Secret(bad).fingerprint);
    await t.write(new Secret(bad), o);
    const err = await t.redeploy!(o, undefined, 'write').catch((e: unknown) => e);
    expect((err as TargetError).message).toMatch(/is unhealthy after keyrot started it/);
    expect((err as TargetError).message).not.toContain(bad);
  }, 120_000);

  it('preflight blocks, in words that say what to do, when a service has no container or a container does not mount the file', async () => {
    await keyFile('openai_api_key', oldKey);
    const other = await keyFile('other', 'x');
    await fx.container({ service: 'api', cmd: SLEEP, binds: [{ source: other, target: '/run/secrets/other' }] });
    const t = await make({ file: 'openai_api_key', services: ['api', 'ghost'] });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/service ghost of Compose project krcp\w+ has no containers .*docker compose -p krcp\w+ up -d ghost/);
    expect(pf.reason).toMatch(/does not mount openai_api_key .*remove api from services:/);
  }, 60_000);

  it('verify: exec blocks at preflight when the image has no sha256sum', async () => {
    const path = await keyFile('openai_api_key', oldKey);
    // The busybox image without the sha256sum link: an image that cannot run the check.
    const id = await fx.container({ service: 'api', cmd: ['sh', '-c', 'rm /bin/sha256sum; exec sleep 3600'], binds: [{ source: path, target: '/run/secrets/openai_api_key' }] });
    await waitFor(async () => !(await fx.inspect(id)).State.Running || (await pathGone(fx, id)));
    const t = await make({ file: 'openai_api_key', services: ['api'], verify: 'exec' });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/its image has none .*remove `verify: exec` from this target/);
  }, 60_000);

  it('an unreachable Engine is a blocked preflight that names the socket and what to set', async () => {
    await keyFile('openai_api_key', oldKey);
    const t = await dockerCompose.create(
      dockerCompose.schema.parse({ project: fx.project, file: 'openai_api_key', services: ['api'] }) as never,
      testContext({ baseDir: fx.dir, env: { DOCKER_HOST: `unix://${join(fx.dir, 'no.sock')}` }, name: 'compose' }),
    );
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/cannot reach the Docker Engine at .*no\.sock \(ENOENT\).*the host that runs the Compose project|that host's socket/);
  }, 30_000);
});

async function pathGone(fx: ComposeFixture, id: string): Promise<boolean> {
  const hash = await fx.hashIn(id, { file: '/bin/sha256sum' }).catch(() => '');
  return !/^[0-9a-f]{64}$/.test(hash);
}

async function waitFor(fn: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not reached');
}

describe.skipIf(skip !== undefined)('docker-compose demo (keyrot demo on a real Engine)', () => {
  const saved = process.env.DOCKER_HOST;
  afterEach(() => {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });

  it('makes a running container mounting the key file, rotates it with verify: exec, and removes the container', async () => {
    process.env.DOCKER_HOST = d.host;
    const workDir = await mkdtemp(join(tmpdir(), 'keyrot-compose-demo-'));
    const oldKey = testKey();
    const setup = await demo({ oldKey, workDir, varName: 'OPENAI_API_KEY' });
    if ('skip' in setup) throw new Error(setup.skip);
    const { type, name, ...entry } = setup.targets[0]!;
    expect({ type, name }).toEqual({ type: 'docker-compose', name: 'compose' });
    const t = await dockerCompose.create({ ...dockerCompose.schema.parse(entry), endpoint: entry.endpoint as string } as never, testContext({ baseDir: workDir, env: {}, name: 'compose' }));
    const project = entry.project as string;
    try {
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      const key = testKey();
      const o = { rotationId: 'rot_demo', fingerprint: new Secret(key).fingerprint };
      const v = await t.redeploy!(o, await t.write(new Secret(key), o), 'write');
      expect(v.detail).toContain(`${project}-app-1 restarted, running, sees key ${o.fingerprint}`);
    } finally {
      await t.close?.();
      await setup.stop();
      await rm(workDir, { recursive: true, force: true });
    }
    const left = await d.engine.call<any[]>('GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }))}`);
    expect(left).toEqual([]);
  }, 120_000);

  it('is skipped with the reason when no Engine is reachable', async () => {
    process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
    const setup = await demo({ oldKey: testKey(), workDir: tmpdir(), varName: 'OPENAI_API_KEY' });
    expect(setup).toEqual({ skip: expect.stringMatching(/^no Docker Engine at unix:\/\/\/nonexistent\/docker.sock \(start dockerd/) });
  });
});

describe('docker-compose never hands a value to a process', () => {
  it('the target spawns nothing: values go in files, and in Engine request bodies (a re-create)', () => {
    const dir = new URL('../../src/targets/docker-compose/', import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      expect(readFileSync(new URL(f, dir), 'utf8'), f).not.toMatch(/child_process|\bspawn(Sync)?\(|\bexecFile(Sync)?\(|\bexecSync\(|\bfork\(/);
    }
  });
});

import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, afterEach } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { DockerComposeConfig, dockerCompose } from '../../src/targets/docker-compose/index.ts';
import { envWith } from '../../src/targets/docker-compose/redeploy.ts';
import { deliveriesOf, envValueOf, type ContainerInspect } from '../../src/targets/docker-compose/containers.ts';
import { discoverCompose, projectNameOf } from '../../src/targets/docker-compose/discover.ts';
import { settled } from '../../src/targets/docker-compose/wait.ts';
import { demux } from '../../src/targets/docker-exec.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';

const container = (over: Partial<ContainerInspect> & { state?: Partial<ContainerInspect['State']> } = {}): ContainerInspect => ({
  Id: 'a'.repeat(64),
  Name: '/proj-api-1',
  Image: 'sha256:1',
  Config: { Image: 'app', Env: [] },
  HostConfig: {},
  Mounts: [],
  ...over,
  State: { Status: 'running', Running: true, Paused: false, Restarting: false, ...over.state },
});

describe('docker-compose config', () => {
  it('takes exactly one of file: and env_file:, a Compose project name and services', () => {
    expect(DockerComposeConfig.safeParse({ file: 'k', project: 'shop', services: ['api'] }).success).toBe(true);
    expect(DockerComposeConfig.safeParse({ env_file: '.env', project: 'shop', services: ['api'], verify: 'exec' }).success).toBe(true);
    const both = DockerComposeConfig.safeParse({ file: 'k', env_file: '.env', project: 'shop', services: ['api'] });
    expect(both.error?.issues[0]?.message).toMatch(/exactly one of file:/);
    expect(DockerComposeConfig.safeParse({ file: 'k', project: 'Shop', services: ['api'] }).success).toBe(false);
    expect(DockerComposeConfig.safeParse({ file: 'k', project: 'shop', services: [] }).success).toBe(false);
    expect(dockerCompose.describe({ file: 'k', project: 'shop', services: ['api'] })).toBe('k@shop');
  });
});

describe('how a container sees the file', () => {
  it('a bind of the file itself, of a directory above it, and the variable in its environment', async () => {
    const file = { path: '/srv/app/secrets/key', real: '/srv/app/secrets/key' };
    const c = container({
      Mounts: [
        { Type: 'bind', Source: '/srv/app/secrets/key', Destination: '/run/secrets/key' },
        { Type: 'bind', Source: '/srv/app', Destination: '/app' },
        { Type: 'bind', Source: '/srv/other', Destination: '/other' },
      ],
      Config: { Image: 'app', Env: ['OPENAI_API_KEY=x'] },
    });
    expect(await deliveriesOf(c, file, 'OPENAI_API_KEY')).toEqual([
      { kind: 'bind-file', path: '/run/secrets/key' },
      { kind: 'bind-dir', path: '/app/secrets/key', source: '/srv/app' },
      { kind: 'env' },
    ]);
    // A sibling directory whose name starts the same is not "above" the file.
    expect(await deliveriesOf(container({ Mounts: [{ Type: 'bind', Source: '/srv/app/secrets-old', Destination: '/x' }] }), file, undefined)).toEqual([]);
  });

  it('the environment: the last entry wins when read; a new value replaces the first, others go', () => {
    const k = new Secret(testKey());
    expect(envValueOf(['A=1', 'K=x', 'K=y'], 'K')).toBe('y');
    expect(envWith(['A=1', 'K=x', 'KK=2', 'K=y'], 'K', k)).toEqual(['A=1', `K=${k.reveal()}`, 'KK=2']);
    expect(envWith(['A=1'], 'K', k)).toEqual(['A=1', `K=${k.reveal()}`]);
    expect(envWith(['A=1', 'K=x'], 'K', null)).toEqual(['A=1']);
  });
});

describe('waiting for a container', () => {
  it('running, healthy, still starting, or a failure in words that point at the logs', () => {
    expect(settled(container(), 0)).toBe('running');
    expect(settled(container({ state: { Health: { Status: 'healthy' } } }), 0)).toBe('running, healthy');
    expect(settled(container({ state: { Health: { Status: 'starting' } } }), 0)).toBeUndefined();
    expect(settled(container({ state: { Status: 'restarting', Running: true, Restarting: true } }), 0)).toBeUndefined();
    expect(() => settled(container({ state: { Status: 'exited', Running: false, ExitCode: 3 } }), 0)).toThrow(/exited with code 3 .*docker logs proj-api-1/);
    expect(() => settled(container({ RestartCount: 2 }), 0)).toThrow(/restarted 2 time\(s\) by its restart policy/);
  });

  it('an unhealthy container: its last check output, with any key in it redacted', () => {
    const k = testKey();
    const c = container({ state: { Health: { Status: 'unhealthy', Log: [{ ExitCode: 1, Output: `auth failed for ${k}` }] } } });
    const err = (() => {
      try {
        settled(c, 0);
      } catch (e) {
        return e as TargetError;
      }
    })();
    expect(err?.message).toMatch(/is unhealthy after keyrot started it \(last check: auth failed for /);
    expect(err?.message).not.toContain(k);
  });
});

describe('exec output', () => {
  it('splits the multiplexed stream (8-byte frame headers) into stdout and stderr', () => {
    const frame = (type: number, s: string) => Buffer.concat([Buffer.from([type, 0, 0, 0]), u32(Buffer.byteLength(s)), Buffer.from(s)]);
    expect(demux(Buffer.concat([frame(1, 'abc  /f\n'), frame(2, 'warn\n'), frame(1, 'more')]))).toEqual({ stdout: 'abc  /f\nmore', stderr: 'warn\n' });
    expect(demux(Buffer.from('raw tty output'))).toEqual({ stdout: 'raw tty output', stderr: '' });
  });
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

describe('discover: Compose files of the working tree', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds env files, the project .env passed through, and secret files named like the variable, each with a ready target', async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyrot-compose-discover-'));
    const app = join(dir, 'My App');
    await mkdir(join(app, 'secrets'), { recursive: true });
    const k1 = testKey();
    const k2 = testKey();
    await writeFile(join(app, 'compose.yaml'), [
      'services:',
      '  api:',
      '    image: app',
      '    env_file: [api.env]',
      '  worker:',
      '    image: app',
      '    environment:',
      '      OPENAI_API_KEY: ${OPENAI_API_KEY}',
      '  web:',
      '    image: app',
      '    secrets: [openai_api_key]',
      '  other:',
      '    image: app',
      '    env_file: missing.env',
      'secrets:',
      '  openai_api_key:',
      '    file: ./secrets/openai.txt',
      '',
    ].join('\n'));
    await writeFile(join(app, 'api.env'), `OPENAI_API_KEY=${k1}\n`);
    await writeFile(join(app, '.env'), `OPENAI_API_KEY=${k2}\n`);
    await writeFile(join(app, 'secrets', 'openai.txt'), `${k1}\n`);
    await mkdir(join(dir, 'node_modules', 'x'), { recursive: true });
    await writeFile(join(dir, 'node_modules', 'x', 'compose.yaml'), 'services: {a: {env_file: a.env}}\n');

    const r = await discoverCompose({ ...testContext({ baseDir: dir }), varNames: ['OPENAI_API_KEY'], configs: [] });
    expect(r.count).toBe(1);
    const byLoc = Object.fromEntries(r.places.map((p) => [p.location, p]));
    expect(Object.keys(byLoc).sort()).toEqual([
      'My App/.env (Compose project myapp: worker)',
      'My App/api.env (Compose project myapp: api)',
      'My App/secrets/openai.txt (Compose project myapp: web)',
    ]);
    expect(byLoc['My App/api.env (Compose project myapp: api)']!.target).toEqual({ type: 'docker-compose', env_file: 'My App/api.env', project: 'myapp', services: ['api'] });
    expect(byLoc['My App/secrets/openai.txt (Compose project myapp: web)']!.target).toEqual({ type: 'docker-compose', file: 'My App/secrets/openai.txt', project: 'myapp', services: ['web'] });
    const held = byLoc['My App/.env (Compose project myapp: worker)']!.holds;
    expect(held.kind === 'value' && held.value.fingerprint).toBe(new Secret(k2).fingerprint);
    expect(JSON.stringify(r)).not.toContain(k1);
  });

  it("names the project as Compose does from the directory when there is no name:", () => {
    expect(projectNameOf('/x/My App.v2')).toBe('myappv2');
    expect(projectNameOf('/x/_svc-1')).toBe('svc-1');
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { EmulatorServer } from '../../emulators/server.ts';
import { dockerCompose } from '../../src/targets/docker-compose/index.ts';
import { testContext } from '../helpers/context.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { Pacer } from '../../src/runtime/pacer.ts';
import { pacingOf } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';

/**
 * docker-compose behind a socket proxy that refuses or fails, on a loopback tcp:// "Engine"
 * answering `GET /version` like one (what a proxy forwards): the words of a 403 name what the
 * proxy must allow for this target, a 5xx is retryable (the engine's policy retries it), and the
 * key is in no error. The real-Engine behaviour is in docker-compose.test.ts.
 */
let engineApi: EmulatorServer;
let dir = '';
const oldKey = testKey();

beforeAll(async () => {
  engineApi = new EmulatorServer({ name: 'docker' });
  engineApi.route('GET', '/version', () => ({ status: 200, body: { Version: '27.0.0', ApiVersion: '1.46', MinAPIVersion: '1.24' } }));
  engineApi.route('GET', '/v1.46/containers/json', () => ({ status: 200, body: [] }));
  await engineApi.start();
  dir = await mkdtemp(join(tmpdir(), 'keyrot-compose-engine-'));
  await writeFile(join(dir, 'openai_api_key'), oldKey + '\n', { mode: 0o600 });
});
afterAll(async () => {
  await engineApi.stop();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => engineApi.clearFaults());

const target = () =>
  dockerCompose.create(
    { project: 'shop', file: 'openai_api_key', services: ['api'], endpoint: `tcp://${new URL(engineApi.url).host}` },
    testContext({ baseDir: dir, env: {}, name: 'compose' }),
  );

describe('docker-compose behind a socket proxy', () => {
  it('every Engine exchange goes through the Docker host lane: a proxy’s 429 cuts the lane all the host’s Compose targets share', async () => {
    const endpoint = `tcp://${new URL(engineApi.url).host}`;
    const pacer = new Pacer(fakeClock());
    const ctx = { ...testContext({ baseDir: dir, env: {}, name: 'compose' }), lane: (key: string) => pacer.lane(key, pacingOf(dockerCompose)) };
    const t = await dockerCompose.create({ project: 'shop', file: 'openai_api_key', services: ['api'], endpoint }, ctx);
    expect(t.rateLimitKey).toBe(`docker-compose:${endpoint}`);
    engineApi.failNext({ path: '/v1.46/containers/json', status: 429, body: { message: 'too many requests' } });
    const err = await targetErrorOf(t.preflight());
    expect(err.retryable).toBe(true);
    const [lane, ...others] = pacer.lanes;
    expect(others).toEqual([]);
    expect(lane!.key).toBe(`docker-compose:${endpoint}`);
    expect(lane!.stats.cuts).toBe(1);
  });

  it('403 on the container list: blocked, naming what the proxy must allow for Compose', async () => {
    engineApi.failNext({ path: '/v1.46/containers/json', status: 403, body: { message: 'forbidden by proxy' } });
    const pf = await (await target()).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/refused GET \/containers\/json.*\(403: forbidden by proxy\): if a socket proxy sits in front of the Engine, allow CONTAINERS, IMAGES, NETWORKS, EXEC and POST/);
    expect(pf.reason).not.toContain(oldKey);
  });

  it('a 5xx is thrown as retryable for the engine to retry; the next look is ready or blocked on its own merits', async () => {
    engineApi.failNext({ path: '/v1.46/containers/json', status: 500, body: { message: 'boom' } });
    const t = await target();
    const err = await targetErrorOf(t.preflight());
    expect(err.retryable).toBe(true);
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/service api of Compose project shop has no containers on the Docker Engine at tcp:\/\/127\.0\.0\.1:\d+: start it \(docker compose -p shop up -d api\)/);
  });

  it('a redeploy with no container to bring onto the key is a not-found error saying what to start', async () => {
    const t = await target();
    const err = await targetErrorOf(t.redeploy!({ rotationId: 'rot_x', fingerprint: 'none' }, undefined, 'restore'));
    expect(err.kind).toBe('not-found');
    expect(err.message).toMatch(/docker compose -p shop up -d api/);
  });
});

import { TargetError } from '../../src/core/errors.ts';
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { EmulatorServer } from '../../emulators/server.ts';
import { DockerEngine, parseDockerHost } from '../../src/targets/docker-engine.ts';
import { dockerSecret } from '../../src/targets/docker-secret/index.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';

/**
 * The Docker Engine client's deadline and redirect handling, against a loopback HTTP server that
 * answers `GET /version` like an Engine (what a socket proxy on tcp:// forwards) and then
 * misbehaves. The real-Engine behaviour is in docker-secret.test.ts.
 */
let engineApi: EmulatorServer;
let elsewhere: EmulatorServer;

beforeAll(async () => {
  engineApi = new EmulatorServer({ name: 'docker' });
  engineApi.route('GET', '/version', () => ({ status: 200, body: { Version: '27.0.0', ApiVersion: '1.46', MinAPIVersion: '1.24' } }));
  engineApi.route('GET', '/v1.46/secrets', () => ({ status: 200, body: [] }));
  await engineApi.start();
  elsewhere = new EmulatorServer({ name: 'elsewhere' });
  await elsewhere.start();
});
afterAll(async () => {
  await engineApi.stop();
  await elsewhere.stop();
});
beforeEach(() => engineApi.clearFaults());

const host = () => `tcp://${new URL(engineApi.url).host}`;


describe('docker-secret: the Engine client under a silent or redirecting Engine', () => {
  it('a call accepted and never answered is a retryable timeout at the deadline', async () => {
    const engine = new DockerEngine(parseDockerHost(host(), {}), { timeoutMs: 300 });
    engineApi.failNext({ path: '/v1.46/secrets', hang: 'headers' });
    const t0 = Date.now();
    const err = await targetErrorOf(engine.call('GET', '/secrets'));
    expect(err).toMatchObject({ kind: 'timeout', retryable: true });
    expect(err.message).toContain('did not answer GET /v1.46/secrets within 300ms');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(2000);
    engine.close();
  });

  it('headers then a stalled body: a timeout too', async () => {
    const engine = new DockerEngine(parseDockerHost(host(), {}), { timeoutMs: 300 });
    engineApi.failNext({ path: '/v1.46/secrets', hang: 'body' });
    const t0 = Date.now();
    expect(await targetErrorOf(engine.call('GET', '/secrets'))).toMatchObject({ kind: 'timeout', retryable: true });
    expect(Date.now() - t0).toBeLessThan(2000);
    engine.close();
  });

  it('a 307 on the secret create (its body holds the key) is not followed and names the Location', async () => {
    const key = testKey();
    const engine = new DockerEngine(parseDockerHost(host(), {}));
    engineApi.failNext({ method: 'POST', status: 307, headers: { location: `${elsewhere.url}/v1.46/secrets/create?token=stolen` } });
    const err = await targetErrorOf(engine.call('POST', '/secrets/create', { Name: 'k', Data: Buffer.from(key).toString('base64') }));
    expect(elsewhere.requests).toEqual([]);
    expect(err).toMatchObject({ kind: 'invalid', retryable: false, status: 307 });
    expect(err.message).toContain(`a redirect to ${new URL(elsewhere.url).host}/v1.46/secrets/create`);
    expect(err.message).toContain('DOCKER_HOST');
    expect(err.message).not.toContain('stolen');
    expect(err.message).not.toContain(key);
    engine.close();
  });

  it('the target takes `requestTimeout:` for every Engine call', async () => {
    const target = await dockerSecret.create(
      { ...dockerSecret.schema.parse({ secret: 'openai_key', services: ['api'] }), endpoint: host(), requestTimeout: '300ms' },
      testContext({ name: 'docker-secret' }),
    );
    engineApi.failNext({ path: /^\/v1\.46\//, hang: 'headers', times: 100 });
    const t0 = Date.now();
    // A deadline is a transient failure: preflight throws it for the engine to retry, bounded.
    const err = (await target.preflight().then(() => undefined, (e: unknown) => e)) as TargetError;
    expect(err).toBeInstanceOf(TargetError);
    expect(err.kind).toBe('timeout');
    expect(err.message).toContain('within 300ms');
    expect(Date.now() - t0).toBeLessThan(3000);
    await target.close?.();
  });
});

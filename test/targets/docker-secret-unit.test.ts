import { describe, it, expect } from 'vitest';
import { DockerSecretConfig, dockerSecret } from '../../src/targets/docker-secret/index.ts';
import { compareApiVersions, parseDockerHost } from '../../src/targets/docker-secret/engine.ts';
import { familyVersion, nextSecretName, settledWithoutUpdateStatus, type ServiceObject, type TaskObject } from '../../src/targets/docker-secret/adapter.ts';
import { TargetError } from '../../src/core/errors.ts';

/** The parts that need no Engine: where the Engine is, how secrets are named, the config schema. */
describe('docker-secret: DOCKER_HOST', () => {
  it('defaults to the local socket and accepts unix:// and tcp://', () => {
    expect(parseDockerHost(undefined, {})).toEqual({ kind: 'unix', socketPath: '/var/run/docker.sock', display: 'unix:///var/run/docker.sock' });
    expect(parseDockerHost('  ', {})).toMatchObject({ kind: 'unix', socketPath: '/var/run/docker.sock' });
    expect(parseDockerHost('unix:///run/user/1000/docker.sock', {})).toMatchObject({ socketPath: '/run/user/1000/docker.sock' });
    expect(parseDockerHost('tcp://127.0.0.1:2375', {})).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 2375, display: 'tcp://127.0.0.1:2375' });
    expect(parseDockerHost('tcp://socket-proxy', {})).toMatchObject({ host: 'socket-proxy', port: 2375 });
    expect(parseDockerHost('tcp://[::1]:2375', {})).toMatchObject({ host: '::1', port: 2375 });
  });

  it('refuses what it cannot do faithfully, saying what to do instead', () => {
    const err = (raw: string, env: NodeJS.ProcessEnv = {}) => {
      try {
        parseDockerHost(raw, env);
        return null;
      } catch (e) {
        return e as TargetError;
      }
    };
    expect(err('ssh://deploy@manager')!.kind).toBe('unsupported');
    expect(err('ssh://deploy@manager')!.message).toContain('ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock');
    expect(err('ssh://deploy@manager')!.message).not.toContain('deploy@');
    expect(err('tcp://10.0.0.5:2376', { DOCKER_TLS_VERIFY: '1' })!.message).toContain('TLS');
    expect(err('https://10.0.0.5:2376')!.kind).toBe('unsupported');
    expect(err('npipe:////./pipe/docker_engine')!.kind).toBe('unsupported');
    expect(err('unix://relative.sock')!.kind).toBe('invalid');
    expect(err('docker.example.com')!.kind).toBe('invalid');
  });

  it('compares API versions numerically', () => {
    expect(compareApiVersions('1.41', '1.30')).toBeGreaterThan(0);
    expect(compareApiVersions('1.9', '1.30')).toBeLessThan(0);
    expect(compareApiVersions('1.52', '1.52')).toBe(0);
  });
});

describe('docker-secret: secret names', () => {
  it('the family is the base name and <base>_<n>; nothing else', () => {
    expect(familyVersion('openai_key', 'openai_key')).toBe(1);
    expect(familyVersion('openai_key', 'openai_key_7')).toBe(7);
    expect(familyVersion('openai_key', 'openai_key_backup')).toBeNull();
    expect(familyVersion('openai_key', 'openai_key_07')).toBeNull();
    expect(familyVersion('openai_key', 'openai_key_2_3')).toBeNull();
    expect(familyVersion('openai_key', 'openai_keys')).toBeNull();
  });

  it('the next name is one above the highest existing version, starting at _2', () => {
    expect(nextSecretName('k', ['k'])).toBe('k_2');
    expect(nextSecretName('k', ['k', 'k_2', 'k_10', 'k_backup'])).toBe('k_11');
    expect(nextSecretName('k', ['k_3'])).toBe('k_4');
    expect(nextSecretName('k', [])).toBe('k_2');
  });
});

describe('docker-secret: config', () => {
  it('accepts the README example and durations', () => {
    expect(DockerSecretConfig.parse({ secret: 'openai_api_key', services: ['backend'] })).toEqual({ secret: 'openai_api_key', services: ['backend'] });
    expect(DockerSecretConfig.safeParse({ secret: 'openai_api_key', services: ['backend', 'worker'], timeout: '10m' }).success).toBe(true);
    expect(DockerSecretConfig.safeParse({ secret: 'k', services: ['a'], timeout: 90 }).success).toBe(true);
    expect(dockerSecret.describe({ secret: 'openai_api_key', services: ['backend', 'worker'] })).toBe('openai_api_key@backend,worker');
  });

  it('rejects names Docker would refuse, empty or repeated services, bad durations', () => {
    const bad = (c: object) => DockerSecretConfig.safeParse(c).success;
    expect(bad({ secret: '_key', services: ['a'] })).toBe(false);
    expect(bad({ secret: 'key/../x', services: ['a'] })).toBe(false);
    expect(bad({ secret: 'k'.repeat(57), services: ['a'] })).toBe(false);
    expect(bad({ secret: 'k', services: [] })).toBe(false);
    expect(bad({ secret: 'k', services: ['a', 'a'] })).toBe(false);
    expect(bad({ secret: 'k', services: ['a'], timeout: 'soon' })).toBe(false);
  });
});

describe('docker-secret: an update with no UpdateStatus (what Engine 20.10 reports)', () => {
  const svc = (mode: object): ServiceObject => ({ ID: 's1', Version: { Index: 9 }, Spec: { Name: 'api', Mode: mode } });
  const task = (desired: string, state: string, secretId: string): TaskObject => ({
    ID: `t-${desired}-${state}-${secretId}`,
    DesiredState: desired,
    Status: { State: state },
    Spec: { ContainerSpec: { Secrets: [{ File: { Name: 'openai_api_key' }, SecretID: secretId, SecretName: 'k' }] } },
  });

  it('a service scaled to 0 has nothing to update: done at once', () => {
    expect(settledWithoutUpdateStatus(svc({ Replicated: { Replicas: 0 } }), [task('shutdown', 'shutdown', 'old')], 'new')).toEqual({
      done: true,
      detail: 'no running tasks to update',
    });
  });

  it('before the updater starts, the old tasks still mount the old secret: not done', () => {
    const r = settledWithoutUpdateStatus(svc({ Replicated: { Replicas: 2 } }), [task('running', 'running', 'old'), task('running', 'running', 'old')], 'new');
    expect(r).toEqual({ done: false, detail: '0 of 2 task(s) running with it' });
  });

  it('a crash-looping task waiting out its restart delay (desired ready) is not "nothing to update"', () => {
    // The shape seen on Engine 20.10: the failed task is desired shutdown, its replacement ready/ready.
    const tasks = [task('shutdown', 'failed', 'old'), task('ready', 'ready', 'old')];
    expect(settledWithoutUpdateStatus(svc({ Replicated: { Replicas: 1 } }), tasks, 'new').done).toBe(false);
    expect(settledWithoutUpdateStatus(svc({ Global: {} }), tasks, 'new').done).toBe(false);
  });

  it('done when every replica runs with the new secret and nothing else is live', () => {
    const tasks = [task('shutdown', 'shutdown', 'old'), task('running', 'running', 'new'), task('running', 'running', 'new')];
    expect(settledWithoutUpdateStatus(svc({ Replicated: { Replicas: 2 } }), tasks, 'new')).toEqual({ done: true, detail: '2 task(s) running with it' });
    // Start-first overlap or a task still starting: not yet.
    expect(settledWithoutUpdateStatus(svc({ Replicated: { Replicas: 2 } }), [...tasks, task('running', 'running', 'old')], 'new').done).toBe(false);
    expect(settledWithoutUpdateStatus(svc({ Replicated: { Replicas: 2 } }), [task('running', 'running', 'new'), task('running', 'starting', 'new')], 'new').done).toBe(false);
    // Global: no count to compare, every live task (none on a swarm without eligible nodes).
    expect(settledWithoutUpdateStatus(svc({ Global: {} }), [task('running', 'running', 'new')], 'new').done).toBe(true);
    expect(settledWithoutUpdateStatus(svc({ Global: {} }), [], 'new').done).toBe(true);
  });
});

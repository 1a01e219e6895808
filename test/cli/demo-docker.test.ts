import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { runCliOnPty } from '../helpers/pty.ts';
import { dockerEngine, type TestDocker } from '../helpers/docker-engine.ts';

/**
 * The demo never changes the user's Docker swarm without asking: with DOCKER_HOST at a real swarm
 * manager (the test Engine), `keyrot demo` without a terminal skips it and says how to include it;
 * on a terminal it asks first, saying what it would create; `keyrot demo --docker` uses it, says
 * what it creates, and removes it afterwards.
 */
let docker: TestDocker | undefined;
let skip: string | undefined;
let dir: string;

beforeAll(async () => {
  const e = await dockerEngine();
  if ('skip' in e) skip = e.skip;
  else docker = e;
  dir = await mkdtemp(join(tmpdir(), 'keyrot-demo-docker-'));
}, 120_000);

afterAll(async () => {
  docker?.close();
  await rm(dir, { recursive: true, force: true });
});

const demo = (args: string[]) => runCli(['demo', '--json', ...args], { cwd: dir, env: { DOCKER_HOST: docker!.host, TMPDIR: dir } });

describe('demo and the Docker swarm', () => {
  it('without --docker (and no terminal to ask on): the swarm is left alone, and the demo says how to include it', async (t) => {
    if (skip) return t.skip(skip);
    const r = await demo([]);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.skipped.join('\n')).toMatch(/docker-secret: not used without your consent: `keyrot demo --docker` includes the swarm/);
    expect(r.stderr).not.toMatch(/secret keyrot_demo_\w+ mounted by service/);
  }, 240_000);

  it('on a terminal: it asks, saying what it would create; a no leaves the swarm alone', async (t) => {
    if (skip) return t.skip(skip);
    const s = runCliOnPty(['demo'], { cwd: dir, env: { DOCKER_HOST: docker!.host, TMPDIR: dir } });
    await s.waitFor('Use it for the demo?', { timeoutMs: 120_000 });
    expect(s.output()).toMatch(/creates secret keyrot_demo_\w+ and service keyrot-demo-\w+ \(0 replicas/);
    s.type('n\r');
    const exit = await s.exited;
    expect(exit.code, s.output().slice(-2000)).toBe(0);
    expect(s.output()).toMatch(/docker-secret: skipped — not used without your consent/);
    expect(s.output()).not.toMatch(/mounted by service/);
  }, 240_000);

  it('with --docker: one secret and one service, named, rotated, and removed when the demo ends', async (t) => {
    if (skip) return t.skip(skip);
    const r = await demo(['--docker']);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const m = /secret (keyrot_demo_\w+) mounted by service (keyrot-demo-\w+)/.exec(r.stderr);
    expect(m, r.stderr.slice(0, 3000)).not.toBeNull();
    expect(JSON.parse(r.stdout).skipped.join('\n')).not.toMatch(/docker-secret/);
    expect(await docker!.secrets(m![1]!)).toEqual([]);
    await expect(docker!.service(m![2]!)).rejects.toThrow();
  }, 240_000);
});

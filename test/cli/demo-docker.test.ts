import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { dockerEngine, type TestDocker } from '../helpers/docker-engine.ts';

/**
 * The demo never changes the user's Docker swarm without asking: with DOCKER_HOST at a real swarm
 * manager (the test Engine), `keyrot demo` without a terminal skips it and says how to include it;
 * `keyrot demo --docker` uses it, says what it creates, and removes it afterwards.
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

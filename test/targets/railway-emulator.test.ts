import { afterEach, describe, expect, it, vi } from 'vitest';
import { RailwayEmulator } from '../../emulators/railway/server.ts';
import { demo } from '../../emulators/railway/demo.ts';
import { railway } from '../../src/targets/railway/index.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';

/** The emulator itself behaves like the GraphQL API where the adapter relies on it (raw fetch). */
let emu: RailwayEmulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

async function gql(query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = { authorization: 'Bearer acct' }) {
  const res = await fetch(emu!.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

function seed() {
  emu!.addAccountToken('acct');
  return emu!.seedProject({
    name: 'p',
    environments: [{ name: 'production' }],
    services: [{ name: 'api' }],
    variables: { production: { api: { OPEN: 'visible', SEALED: { value: 'hidden-value', sealed: true } } } },
  });
}

describe('railway emulator', () => {
  it('answers GraphQL errors in a 200 for bad tokens, and 400 for unknown fields or bad syntax', async () => {
    emu = await RailwayEmulator.start();
    const s = seed();
    const denied = await gql('query { project(id: "x") { id } }', {}, { authorization: 'Bearer wrong' });
    expect(denied.status).toBe(200);
    expect(denied.body.data).toBeNull();
    expect(denied.body.errors[0]).toMatchObject({ message: 'Not Authorized', path: ['project'] });
    const project = await gql('query { project(id: "nope") { id } }');
    expect(project.body.errors[0].message).toBe('Project not found');
    const unknown = await gql(`query { project(id: "${s.id}") { id secrets } }`);
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors[0].message).toBe('Cannot query field "secrets" on type "Project".');
    const syntax = await gql('query { project(id: ');
    expect(syntax.status).toBe(400);
    const missingVar = await gql('query Q($id: String!) { project(id: $id) { id } }');
    expect(missingVar.body.errors[0].message).toMatch(/Variable "\$id" of required type "String!" was not provided/);
    expect(missingVar.headers.get('x-ratelimit-remaining')).not.toBeNull();
  });

  it('returns sealed variables as null and only the selected fields', async () => {
    emu = await RailwayEmulator.start();
    const s = seed();
    const env = s.environments.production!;
    const r = await gql('query($p: String!, $e: String!, $s: String) { variables(projectId: $p, environmentId: $e, serviceId: $s) }', { p: s.id, e: env, s: s.services.api });
    expect(r.body.data.variables).toEqual({ OPEN: 'visible', SEALED: null });
    const aliased = await gql(`query { p: project(id: "${s.id}") { name services { edges { node { name } } } } }`);
    expect(aliased.body.data).toEqual({ p: { name: 'p', services: { edges: [{ node: { name: 'api' } }] } } });
  });

  it('an upsert without skipDeploys deploys the service; with skipDeploys it does not', async () => {
    emu = await RailwayEmulator.start({ phaseMs: 10 });
    const s = seed();
    const input = { projectId: s.id, environmentId: s.environments.production, serviceId: s.services.api, name: 'X', value: '1' };
    const m = 'mutation($i: VariableUpsertInput!) { variableUpsert(input: $i) }';
    await gql(m, { i: { ...input, skipDeploys: true } });
    expect(emu.deployments(s.services.api!)).toHaveLength(1);
    await gql(m, { i: input });
    const deps = emu.deployments(s.services.api!);
    expect(deps).toHaveLength(2);
    expect(deps[0]!.snapshot.X).toBe('1');
    expect(deps[0]!.snapshot.SEALED).toBe('hidden-value');
  });

  it('a redeploy goes INITIALIZING → BUILDING → DEPLOYING → SUCCESS, or SLEEPING once App Sleeping puts it to sleep', async () => {
    // Only Date is faked: the emulator derives a deployment's status from its age, and the test
    // moves time itself instead of polling against a loaded machine's scheduler.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      emu = await RailwayEmulator.start({ phaseMs: 150 });
      const s = seed();
      const env = s.environments.production!;
      const svc = s.services.api!;
      const redeploy = 'mutation($e: String!, $s: String!) { serviceInstanceRedeploy(environmentId: $e, serviceId: $s) }';
      const status = async () => (await gql('query($i: DeploymentListInput!) { deployments(input: $i, first: 1) { edges { node { id status } } } }', { i: { serviceId: svc, environmentId: env } })).body.data.deployments.edges[0].node.status as string;
      expect((await gql(redeploy, { e: env, s: svc })).body.data.serviceInstanceRedeploy).toBe(true);
      const seen = [await status()];
      for (let phase = 1; phase <= 3; phase++) {
        vi.setSystemTime(Date.now() + 150);
        seen.push(await status());
      }
      expect(seen).toEqual(['INITIALIZING', 'BUILDING', 'DEPLOYING', 'SUCCESS']);
      emu.sleepNextDeploy();
      await gql(redeploy, { e: env, s: svc });
      vi.setSystemTime(Date.now() + 3 * 150 + 1);
      expect(await status()).toBe('SLEEPING');
      expect(emu.deployments(svc, env)[1]!.status).toBe('REMOVED');
    } finally {
      vi.useRealTimers();
    }
  });

  it('429 carries Retry-After and the X-RateLimit headers', async () => {
    emu = await RailwayEmulator.start({ rateLimit: { limit: 1, windowMs: 60_000 } });
    seed();
    expect((await gql('query { me { id } }')).status).toBe(200);
    const limited = await gql('query { me { id } }');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
  });

  it('the demo entry is a working target', async () => {
    const d = await demo({ oldKey: testKey(), workDir: '/tmp', varName: 'OPENAI_API_KEY' });
    if ('skip' in d) throw new Error(d.skip);
    try {
      const { type, token, ...rest } = d.targets[0]!;
      expect(type).toBe('railway');
      const config = railway.schema.parse(rest);
      const target = await railway.create({ ...config, endpoint: rest.endpoint as string, token: parseCredentialRef(token as string)! }, testContext({ env: d.env, name: 'railway-demo' }));
      const pf = await target.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.current.kind).toBe('value');
    } finally {
      await d.stop();
    }
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock, systemClock } from '../../src/runtime/clock.ts';
import { RailwayConfig } from '../../src/targets/railway/index.ts';
import { testKey } from '../helpers/keys.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';
import { railwayFixture, type RailwayFixture } from '../helpers/railway-setup.ts';

const VAR = 'OPENAI_API_KEY';
let fx: RailwayFixture | undefined;
afterEach(async () => {
  await fx?.emu.stop();
  fx = undefined;
});

function op(key: string, rotationId = 'rot_railway_1') {
  return { rotationId, fingerprint: new Secret(key).fingerprint };
}

async function rejection(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TargetError);
  return e as TargetError;
}

/** Every variable store of the fixture project, to prove what did not change. */
function everything(f: RailwayFixture): string {
  const { project, environment, staging, service, other } = f.ids;
  return JSON.stringify({
    api: f.emu.getVariables(project, environment, service),
    worker: f.emu.getVariables(project, environment, other),
    shared: f.emu.getVariables(project, environment, ''),
    staging: f.emu.getVariables(project, staging, service),
  });
}

function upserts(f: RailwayFixture): Array<Record<string, unknown>> {
  return f.emu.server
    .calls('POST', '/graphql/v2')
    .map((r) => JSON.parse(r.rawBody) as { query: string; variables: { input?: Record<string, unknown> } })
    .filter((b) => b.query.includes('variableUpsert'))
    .map((b) => b.variables.input!);
}

describe('railway config', () => {
  it('needs project, environment and service ids', () => {
    expect(RailwayConfig.safeParse({ project: 'p', environment: 'e', service: 's', timeout: '5m', tokenType: 'project' }).success).toBe(true);
    expect(RailwayConfig.safeParse({ project: 'p', environment: 'e' }).success).toBe(false);
    expect(RailwayConfig.safeParse({ project: 'p', environment: 'e', service: 's', tokenType: 'team' }).success).toBe(false);
  });
});

describe('railway target', () => {
  it('preflight reads the current value and says what will happen, without writing', async () => {
    const old = testKey();
    fx = await railwayFixture({ vars: { [VAR]: old } });
    const deploys = fx.emu.deployments(fx.ids.service).length;
    const pf = await fx.target.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind).toBe('value');
    if (pf.current.kind === 'value') expect(pf.current.value.reveal()).toBe(old);
    expect(pf.willCreate).toBe(false);
    const notes = pf.notes!.join('\n');
    expect(notes).toMatch(/upserts OPENAI_API_KEY on service api in nomora\/production with skipDeploys/);
    expect(notes).toMatch(/redeploys the service once/);
    expect(notes).toMatch(/reading the value back/);
    expect(fx.emu.mutations).toBe(0);
    expect(fx.emu.deployments(fx.ids.service)).toHaveLength(deploys);
  });

  it('changes only the one variable, with skipDeploys, and reads it back', async () => {
    const old = testKey();
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: old } });
    const before = JSON.parse(everything(fx));
    const deploys = fx.emu.deployments(fx.ids.service).length;
    const receipt = await fx.target.write(new Secret(next), op(next));
    expect(receipt).toMatchObject({ upserted: true, created: false, sealed: false });
    expect(JSON.stringify(receipt)).not.toContain(next);
    const after = JSON.parse(everything(fx));
    expect(after.api[VAR].value).toBe(next);
    before.api[VAR].value = next;
    expect(after).toEqual(before);
    expect(upserts(fx)).toEqual([{ projectId: fx.ids.project, environmentId: fx.ids.environment, serviceId: fx.ids.service, name: VAR, value: next, skipDeploys: true }]);
    // skipDeploys: the upsert deployed nothing.
    expect(fx.emu.deployments(fx.ids.service)).toHaveLength(deploys);
    const v = await fx.target.verify(new Secret(next), op(next), receipt);
    expect(v.method).toBe('read-back');
  });

  it('the same value already there: no upsert at all', async () => {
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: testKey() } });
    await fx.target.write(new Secret(next), op(next));
    const count = fx.emu.mutations;
    const r = await fx.target.write(new Secret(next), op(next));
    expect(r.upserted).toBe(false);
    expect(fx.emu.mutations).toBe(count);
    expect(upserts(fx)).toHaveLength(1);
  });

  it('one redeploy, watched to SUCCESS: the deployment snapshot holds the new key', async () => {
    const old = testKey();
    const next = testKey();
    // Phases long enough to be polled more than once even when the machine is loaded.
    fx = await railwayFixture({ vars: { [VAR]: old }, emulator: { phaseMs: 400 } });
    const receipt = await fx.target.write(new Secret(next), op(next));
    const r = await fx.target.redeploy!(op(next), receipt);
    expect(r.method).toBe('redeploy');
    const deps = fx.emu.deployments(fx.ids.service, fx.ids.environment);
    expect(deps).toHaveLength(2);
    expect(deps[0]!.status).toBe('SUCCESS');
    expect(deps[0]!.snapshot[VAR]).toBe(next);
    expect(deps[0]!.snapshot.SHARED_FLAG).toBe('on');
    expect(deps[1]!.status).toBe('REMOVED');
    expect(deps[1]!.snapshot[VAR]).toBe(old);
    // Watched through the lifecycle, not assumed.
    const polled = fx.emu.server.calls('POST', '/graphql/v2').filter((c) => c.rawBody.includes('KeyrotDeployment('));
    expect(polled.length).toBeGreaterThanOrEqual(2);
    // The other service and environment were not redeployed; a repeated call deploys nothing more.
    expect(fx.emu.deployments(fx.ids.other, fx.ids.environment)).toHaveLength(1);
    await fx.target.redeploy!(op(next), receipt);
    expect(fx.emu.deployments(fx.ids.service, fx.ids.environment)).toHaveLength(2);
    // A new process (resume) sees the deployment made after the write and does not deploy again.
    const resumed = await fx.make();
    await resumed.redeploy!(op(next), receipt);
    expect(fx.emu.deployments(fx.ids.service, fx.ids.environment)).toHaveLength(2);
  });

  it('a deployment that goes live and then SLEEPING (App Sleeping) counts as live, not as still deploying', async () => {
    // SLEEPING is a settled, deployed status for the Railway CLI (service_summary.rs is_stable_status);
    // before, keyrot kept polling it until the timeout.
    const old = testKey();
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: old } });
    const receipt = await fx.target.write(new Secret(next), op(next));
    fx.emu.sleepNextDeploy();
    const started = Date.now();
    const r = await fx.target.redeploy!(op(next), receipt);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r.method).toBe('redeploy');
    expect(r.detail).toMatch(/reached SLEEPING/);
    const deps = fx.emu.deployments(fx.ids.service, fx.ids.environment);
    expect(deps[0]!.status).toBe('SLEEPING');
    expect(deps[0]!.snapshot[VAR]).toBe(next);
    // It went live: restore deploys the old key again.
    await restoreAndRedeploy(fx.target, new Secret(old), op(next), receipt);
    expect(fx.emu.deployments(fx.ids.service, fx.ids.environment)).toHaveLength(3);
    expect(fx.emu.deployments(fx.ids.service, fx.ids.environment)[0]!.snapshot[VAR]).toBe(old);
  });

  describe('sealed variables', () => {
    it('cannot be read back; verified by metadata and through the redeploy', async () => {
      const next = testKey();
      fx = await railwayFixture({ vars: { [VAR]: { value: testKey(), sealed: true } } });
      const pf = await fx.target.preflight();
      expect(pf.status).toBe('ready');
      expect(pf.current.kind).toBe('unreadable');
      expect(pf.notes!.join('\n')).toMatch(/sealed: Railway never returns the value; verified by metadata/);
      expect((await fx.target.read()).kind).toBe('unreadable');
      const receipt = await fx.target.write(new Secret(next), op(next));
      expect(receipt.sealed).toBe(true);
      expect(fx.emu.getVariables(fx.ids.project, fx.ids.environment, fx.ids.service)[VAR]).toEqual({ value: next, sealed: true });
      const v = await fx.target.verify(new Secret(next), op(next), receipt);
      expect(v.method).toBe('metadata');
      const r = await fx.target.redeploy!(op(next), receipt);
      expect(r.method).toBe('redeploy');
      expect(fx.emu.deployments(fx.ids.service, fx.ids.environment)[0]!.snapshot[VAR]).toBe(next);
      // A second write in the same rotation does not upsert again.
      await fx.target.write(new Secret(next), op(next));
      expect(upserts(fx)).toHaveLength(1);
    });

    it('a fresh process cannot claim a sealed value it did not write', async () => {
      const next = testKey();
      fx = await railwayFixture({ vars: { [VAR]: { value: testKey(), sealed: true } } });
      const e = await rejection(fx.target.verify(new Secret(next), op(next), undefined));
      expect(e.kind).toBe('mismatch');
    });
  });

  it('a failed build fails the target; restore puts the old value back and deploys nothing', async () => {
    const old = testKey();
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: old } });
    const receipt = await fx.target.write(new Secret(next), op(next));
    fx.emu.failNextDeploy('FAILED');
    const e = await rejection(fx.target.redeploy!(op(next), receipt));
    expect(e.kind).toBe('unavailable');
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/ended FAILED/);
    expect(e.message).not.toContain(next);
    await restoreAndRedeploy(fx.target, new Secret(old), op(next), receipt);
    expect(fx.emu.getVariables(fx.ids.project, fx.ids.environment, fx.ids.service)[VAR]!.value).toBe(old);
    const deps = fx.emu.deployments(fx.ids.service, fx.ids.environment);
    expect(deps).toHaveLength(2);
    expect(deps[1]!.status).toBe('SUCCESS'); // the old deployment keeps serving
  });

  it('a crashed deployment went live: restore deploys again with the old key', async () => {
    const old = testKey();
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: old } });
    const receipt = await fx.target.write(new Secret(next), op(next));
    fx.emu.failNextDeploy('CRASHED');
    const e = await rejection(fx.target.redeploy!(op(next), receipt));
    expect(e.message).toMatch(/ended CRASHED/);
    await restoreAndRedeploy(fx.target, new Secret(old), op(next), receipt);
    const deps = fx.emu.deployments(fx.ids.service, fx.ids.environment);
    expect(deps).toHaveLength(3);
    expect(deps[0]!.status).toBe('SUCCESS');
    expect(deps[0]!.snapshot[VAR]).toBe(old);
  });

  it('restore after a successful redeploy deploys the old key again, once', async () => {
    const old = testKey();
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: old } });
    const receipt = await fx.target.write(new Secret(next), op(next));
    await fx.target.redeploy!(op(next), receipt);
    await restoreAndRedeploy(fx.target, new Secret(old), op(next), receipt);
    await restoreAndRedeploy(fx.target, new Secret(old), op(next), receipt);
    const deps = fx.emu.deployments(fx.ids.service, fx.ids.environment);
    expect(deps).toHaveLength(3);
    expect(deps[0]!.snapshot[VAR]).toBe(old);
    expect(fx.emu.getVariables(fx.ids.project, fx.ids.environment, fx.ids.service)[VAR]!.value).toBe(old);
    expect(upserts(fx)).toHaveLength(2);
  });

  it('creates an absent variable, and restore removes exactly it', async () => {
    const next = testKey();
    fx = await railwayFixture();
    const before = everything(fx);
    const pf = await fx.target.preflight();
    expect(pf.willCreate).toBe(true);
    expect(pf.current.kind).toBe('absent');
    expect(pf.notes!.join('\n')).toMatch(/creates OPENAI_API_KEY/);
    const receipt = await fx.target.write(new Secret(next), op(next));
    expect(receipt.created).toBe(true);
    await restoreAndRedeploy(fx.target, null, op(next), receipt);
    expect(everything(fx)).toBe(before);
  });

  it('a 429 is retried by the engine policy after Retry-After', async () => {
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: testKey() } });
    fx.emu.rateLimitNext(3);
    const clock = fakeClock();
    const errors: TargetError[] = [];
    await withRetry(() => fx!.target.write(new Secret(next), op(next)), { clock, random: () => 0, onRetry: (i) => errors.push(i.error) });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.kind).toBe('rate-limited');
    expect(errors[0]!.message).toMatch(/Railway rate-limited write on Railway service/);
    expect(clock.slept[0]).toBe(3000);
    expect(fx.emu.getVariables(fx.ids.project, fx.ids.environment, fx.ids.service)[VAR]!.value).toBe(next);
  });

  it('waits for the window reset instead of spending requests on 429', async () => {
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: testKey() }, emulator: { rateLimit: { limit: 3, windowMs: 1000 } }, clock: systemClock });
    const receipt = await fx.target.write(new Secret(next), op(next));
    await fx.target.verify(new Secret(next), op(next), receipt);
    expect(fx.emu.server.requests.filter((r) => r.status === 429)).toEqual([]);
  });

  it('a rejected token is an auth error in product words (GraphQL "Not Authorized" in a 200)', async () => {
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: testKey() } });
    fx.emu.revokeToken(fx.token);
    const pf = await fx.target.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/Railway rejected the token from env:RAILWAY_API_TOKEN/);
    const e = await rejection(fx.target.write(new Secret(next), op(next)));
    expect(e.kind).toBe('auth');
    expect(e.message).toMatch(/account or workspace token/);
    expect(e.message).not.toContain(fx.token);
    expect(e.message).not.toContain(next);
    expect(fx.emu.server.requests.at(-1)!.status).toBe(200);
  });

  it('a project token (RAILWAY_TOKEN) goes in Project-Access-Token and must match the environment', async () => {
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: testKey() } });
    fx.emu.addProjectToken('ptoken-production-api', fx.ids.project, fx.ids.environment);
    fx.emu.addProjectToken('ptoken-staging', fx.ids.project, fx.ids.staging);
    const t = await fx.make({}, { RAILWAY_TOKEN: 'ptoken-production-api' });
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    await t.write(new Secret(next), op(next));
    const last = fx.emu.server.requests.at(-1)!;
    expect(last.headers['project-access-token']).toBe('ptoken-production-api');
    expect(last.headers.authorization).toBeUndefined();
    const wrong = await fx.make({}, { RAILWAY_TOKEN: 'ptoken-staging' });
    const pf2 = await wrong.preflight();
    expect(pf2.status).toBe('blocked');
    expect(pf2.reason).toMatch(/belongs to project .* environment .*, not/);
    const gone = await fx.make({}, { RAILWAY_TOKEN: 'ptoken-revoked' });
    const e = await rejection(gone.write(new Secret(next), op(next)));
    expect(e.kind).toBe('auth');
    expect(e.message).toMatch(/project token not found/);
    expect(e.message).toMatch(/Project-Access-Token/);
  });

  it('an unknown service is named with the services that exist', async () => {
    fx = await railwayFixture();
    const t = await fx.make({ service: '00000000-0000-0000-0000-000000000000' });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/service 00000000-0000-0000-0000-000000000000 is not in project nomora \(services: api=.*, worker=/);
  });

  it('other GraphQL errors are reported without the key, even when the provider echoes it', async () => {
    const next = testKey();
    fx = await railwayFixture({ vars: { [VAR]: testKey() } });
    await fx.target.read();
    fx.emu.errorNext(`Problem processing request: value ${next} is invalid`);
    const e = await rejection(fx.target.write(new Secret(next), op(next)));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(/Railway refused write on Railway service/);
    expect(e.message).not.toContain(next);
    expect(JSON.stringify(e)).not.toContain(next);
    fx.emu.errorNext('Not Authorized');
    const p = await rejection(fx.target.write(new Secret(next), op(next)));
    expect(p.kind).toBe('auth');
    expect(p.message).toMatch(/or cannot reach project/);
  });

  it('a never-deployed service is written but not redeployed', async () => {
    const next = testKey();
    fx = await railwayFixture({ deployed: false });
    const pf = await fx.target.preflight();
    expect(pf.notes!.join('\n')).toMatch(/never been deployed/);
    const receipt = await fx.target.write(new Secret(next), op(next));
    const r = await fx.target.redeploy!(op(next), receipt);
    expect(r.method).toBe('metadata');
    expect(fx.emu.deployments(fx.ids.service)).toHaveLength(0);
  });
});

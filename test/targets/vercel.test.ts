import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock, systemClock } from '../../src/runtime/clock.ts';
import { VercelConfig } from '../../src/targets/vercel/index.ts';
import type { VercelEnvRecord } from '../../emulators/vercel/server.ts';
import { testKey } from '../helpers/keys.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';
import { vercelFixture, type VercelFixture } from '../helpers/vercel-setup.ts';

const VAR = 'OPENAI_API_KEY';
let fx: VercelFixture | undefined;
afterEach(async () => {
  await fx?.emu.stop();
  fx = undefined;
});

function op(key: string, rotationId = 'rot_vercel_1') {
  return { rotationId, fingerprint: new Secret(key).fingerprint };
}

/** Everything but the listed entries, for byte-identical comparisons. */
function others(envs: VercelEnvRecord[], except: string[]): string {
  return JSON.stringify(envs.filter((e) => !except.includes(e.id)));
}

async function rejection(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TargetError);
  return e as TargetError;
}

describe('vercel config', () => {
  it('accepts the documented fields and rejects unknown targets and bad durations', () => {
    expect(VercelConfig.safeParse({ project: 'p', team: 'team_x', targets: ['production', 'preview'], redeploy: true, timeout: '10m' }).success).toBe(true);
    expect(VercelConfig.safeParse({ project: 'p', targets: ['staging'] }).success).toBe(false);
    expect(VercelConfig.safeParse({ project: 'p', timeout: 'soon' }).success).toBe(false);
    expect(VercelConfig.safeParse({ project: '' }).success).toBe(false);
  });
});

describe('vercel target', () => {
  it('preflight reads the current key and says how it will verify', async () => {
    const old = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: old, target: ['production'] }] });
    const pf = await fx.target.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind).toBe('value');
    if (pf.current.kind === 'value') expect(pf.current.value.reveal()).toBe(old);
    expect(pf.willCreate).toBe(false);
    expect(pf.notes?.join('\n')).toMatch(/reading the decrypted value back/);
    expect(pf.notes?.join('\n')).toMatch(/no redeploy/);
    // Read-only: nothing changed.
    expect(fx.emu.mutations).toBe(0);
  });

  it('changes only the covering entry: other variables and other entries of the key stay byte-identical', async () => {
    const old = testKey();
    const dev = testKey();
    const next = testKey();
    fx = await vercelFixture({
      envs: [
        { key: 'DATABASE_URL', value: 'postgres://db/prod', target: ['production'] },
        { key: VAR, value: old, target: ['production', 'preview'] },
        { key: VAR, value: dev, target: ['development'] },
        { key: VAR, value: testKey(), target: ['preview'], gitBranch: 'feature-x' },
        { key: 'NEXT_PUBLIC_URL', value: 'https://example.test', type: 'plain', target: ['production', 'preview', 'development'] },
        { key: 'STRIPE_KEY', value: 'rk_test_abc', type: 'sensitive', target: ['production'] },
      ],
    });
    const beforeAll = fx.emu.getEnv('nomora-paw');
    const covering = beforeAll.find((e) => e.key === VAR && e.target.includes('production'))!;
    const receipt = await fx.target.write(new Secret(next), op(next));
    expect(receipt.entries).toEqual([covering.id]);
    expect(JSON.stringify(receipt)).not.toContain(next);
    const afterAll = fx.emu.getEnv('nomora-paw');
    expect(others(afterAll, [covering.id])).toBe(others(beforeAll, [covering.id]));
    const updated = afterAll.find((e) => e.id === covering.id)!;
    expect(updated.value).toBe(next);
    expect(updated.target).toEqual(['production', 'preview']);
    expect(updated.type).toBe('encrypted');
    const v = await fx.target.verify(new Secret(next), op(next), receipt);
    expect(v.method).toBe('read-back');
  });

  it('with several targets, updates every covering entry and nothing else', async () => {
    const prodPreview = testKey();
    const dev = testKey();
    const next = testKey();
    fx = await vercelFixture({
      envs: [
        { key: VAR, value: prodPreview, target: ['production', 'preview'] },
        { key: VAR, value: dev, target: ['development'] },
      ],
      config: { targets: ['preview', 'development'] },
    });
    const pf = await fx.target.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.notes?.join('\n')).toMatch(/also serves production/);
    expect(pf.notes?.join('\n')).toMatch(/disagree/);
    const receipt = await fx.target.write(new Secret(next), op(next));
    expect((receipt.entries as string[]).length).toBe(2);
    expect(fx.emu.getEnv('nomora-paw', VAR).map((e) => e.value)).toEqual([next, next]);
    await fx.target.verify(new Secret(next), op(next), receipt);
    // Restore puts each entry back to its own previous value, not one value everywhere.
    await restoreAndRedeploy(fx.target, new Secret(prodPreview), op(next), receipt);
    const restored = fx.emu.getEnv('nomora-paw', VAR);
    expect(restored.find((e) => e.target.includes('production'))!.value).toBe(prodPreview);
    expect(restored.find((e) => e.target.includes('development'))!.value).toBe(dev);
  });

  it('creates an entry for an uncovered target, leaves the other entry alone, and restore removes it', async () => {
    const dev = testKey();
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: dev, target: ['development'] }] });
    const before = fx.emu.getEnv('nomora-paw');
    const pf = await fx.target.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.willCreate).toBe(true);
    expect(pf.current.kind).toBe('absent');
    expect(pf.notes?.join('\n')).toMatch(/creates a new encrypted OPENAI_API_KEY entry for production/);
    const receipt = await fx.target.write(new Secret(next), op(next));
    expect((receipt.created as string[]).length).toBe(1);
    const after = fx.emu.getEnv('nomora-paw', VAR);
    expect(after).toHaveLength(2);
    const made = after.find((e) => e.target.includes('production'))!;
    expect(made).toMatchObject({ value: next, type: 'encrypted', target: ['production'] });
    expect(JSON.stringify(after.find((e) => e.id === before[0]!.id))).toBe(JSON.stringify(before[0]));
    await restoreAndRedeploy(fx.target, null, op(next), receipt);
    expect(JSON.stringify(fx.emu.getEnv('nomora-paw'))).toBe(JSON.stringify(before));
    // Idempotent.
    await restoreAndRedeploy(fx.target, null, op(next), receipt);
    expect(JSON.stringify(fx.emu.getEnv('nomora-paw'))).toBe(JSON.stringify(before));
  });

  it('a resumed restore without a receipt still finds and removes the entry this rotation created', async () => {
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: 'OTHER', value: 'x', target: ['production'] }] });
    await fx.target.write(new Secret(next), op(next, 'rot_crash'));
    const fresh = await fx.make(); // a new process: no memory
    await fresh.restore(null, op(next, 'rot_crash'), undefined);
    expect(fx.emu.getEnv('nomora-paw', VAR)).toEqual([]);
    expect(fx.emu.getEnv('nomora-paw', 'OTHER')).toHaveLength(1);
  });

  it('a second identical write changes nothing', async () => {
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), target: ['production'] }] });
    await fx.target.write(new Secret(next), op(next));
    const count = fx.emu.mutations;
    const before = JSON.stringify(fx.emu.getEnv('nomora-paw'));
    await fx.target.write(new Secret(next), op(next));
    expect(fx.emu.mutations).toBe(count);
    expect(JSON.stringify(fx.emu.getEnv('nomora-paw'))).toBe(before);
  });

  it('a rotation costs 5 requests: preflight 3 (project, list, the entry), write 1 (PATCH), verify 1 (the entry by id)', async () => {
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), target: ['production'] }] });
    const count = () => fx!.emu.server.requests.length;
    expect((await fx.target.preflight()).status).toBe('ready');
    expect(count()).toBe(3);
    const receipt = await fx.target.write(new Secret(next), op(next));
    expect(count()).toBe(4);
    expect(await fx.target.verify(new Secret(next), op(next), receipt)).toMatchObject({ method: 'read-back' });
    expect(count()).toBe(5);
    expect(fx.emu.server.requests.map((r) => `${r.method} ${r.path.replace(/[^/]{12,}/g, ':id')}`)).toEqual([
      'GET /v9/projects/nomora-paw',
      'GET /v10/projects/:id/env',
      'GET /v1/projects/:id/env/:id',
      'PATCH /v9/projects/:id/env/:id',
      'GET /v1/projects/:id/env/:id',
    ]);
  });

  it('verify with the receipt catches an entry moved off a target, or deleted, after the write', async () => {
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), target: ['production', 'preview'] }], config: { targets: ['production', 'preview'] } });
    const receipt = await fx.target.write(new Secret(next), op(next));
    const [entry] = fx.emu.getEnv('nomora-paw', VAR);
    // Someone edits the entry in the dashboard: it no longer serves preview.
    const url = `${fx.emu.url}/v9/projects/${fx.project.id}/env/${entry!.id}`;
    const headers = { authorization: `Bearer ${fx.token}`, 'content-type': 'application/json' };
    expect((await fetch(url, { method: 'PATCH', headers, body: JSON.stringify({ target: ['production'] }) })).status).toBe(200);
    const moved = await rejection(fx.target.verify(new Secret(next), op(next), receipt));
    expect(moved.kind).toBe('mismatch');
    expect(moved.message).toMatch(/no OPENAI_API_KEY entry serves preview after the write/);
    expect((await fetch(url, { method: 'DELETE', headers })).status).toBe(200);
    const gone = await rejection(fx.target.verify(new Secret(next), op(next), receipt));
    expect(gone.kind).toBe('not-found');
  });

  it('follows pagination.next to find the variable', async () => {
    const old = testKey();
    const envs = Array.from({ length: 7 }, (_, i) => ({ key: `VAR_${i}`, value: `v${i}`, target: ['production' as const] }));
    fx = await vercelFixture({ envs: [{ key: VAR, value: old, target: ['production'] }, ...envs], emulator: { pageSize: 2 } });
    const r = await fx.target.read();
    expect(r.kind).toBe('value');
    if (r.kind === 'value') expect(r.value.reveal()).toBe(old);
    expect(fx.emu.server.calls('GET', /\/v10\/projects\/.*\/env$/).length).toBe(4);
  });

  it('stops following pagination.next when a page brings nothing new (a server that ignores `until`)', async () => {
    // The documented env-list request has no cursor parameter (vercel/sdk filterprojectenvsop.ts);
    // if `until` is ignored the same first page comes back with the same `next`.
    const old = testKey();
    const envs = Array.from({ length: 5 }, (_, i) => ({ key: `VAR_${i}`, value: `v${i}`, target: ['production' as const] }));
    fx = await vercelFixture({ envs: [...envs, { key: VAR, value: old, target: ['production'] }], emulator: { pageSize: 3, envListCursor: false } });
    const r = await fx.target.read();
    expect(r.kind).toBe('value');
    if (r.kind === 'value') expect(r.value.reveal()).toBe(old);
    expect(fx.emu.server.calls('GET', /\/v10\/projects\/.*\/env$/).length).toBe(2);
    // Each entry once: one decrypted read, one PATCH.
    const next = testKey();
    const receipt = await fx.target.write(new Secret(next), op(next));
    expect(receipt.patched).toHaveLength(1);
  });

  describe('sensitive entries', () => {
    it('cannot be read back: read is unreadable, verify proves the write by updatedAt', async () => {
      const next = testKey();
      fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), type: 'sensitive', target: ['production', 'preview'] }] });
      const pf = await fx.target.preflight();
      expect(pf.status).toBe('ready');
      expect(pf.current.kind).toBe('unreadable');
      expect(pf.notes?.join('\n')).toMatch(/verified by metadata only/);
      expect((await fx.target.read()).kind).toBe('unreadable');
      const receipt = await fx.target.write(new Secret(next), op(next));
      expect(fx.emu.getEnv('nomora-paw', VAR)[0]!.value).toBe(next);
      expect(fx.emu.getEnv('nomora-paw', VAR)[0]!.type).toBe('sensitive');
      const v = await fx.target.verify(new Secret(next), op(next), receipt);
      expect(v.method).toBe('metadata');
      expect(v.detail).toMatch(/updatedAt/);
      // A second write in the same rotation is a no-op even though the value cannot be compared.
      const count = fx.emu.mutations;
      await fx.target.write(new Secret(next), op(next));
      expect(fx.emu.mutations).toBe(count);
    });

    it('verify fails when someone edits the entry after keyrot wrote it', async () => {
      const next = testKey();
      fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), type: 'sensitive', target: ['production'] }] });
      const receipt = await fx.target.write(new Secret(next), op(next));
      await new Promise((r) => setTimeout(r, 5));
      const other = await fx.make();
      await other.write(new Secret(testKey()), op(next, 'rot_someone_else'));
      const e = await rejection(fx.target.verify(new Secret(next), op(next), receipt));
      expect(e.kind).toBe('mismatch');
      expect(e.message).toMatch(/changed after keyrot wrote it/);
    });

    it('an uncovered preview target gets a sensitive entry when the key is sensitive elsewhere', async () => {
      const next = testKey();
      fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), type: 'sensitive', target: ['production'] }], config: { targets: ['production', 'preview'] } });
      await fx.target.write(new Secret(next), op(next));
      const entries = fx.emu.getEnv('nomora-paw', VAR);
      expect(entries.map((e) => [e.type, e.target.join()]).sort()).toEqual([
        ['sensitive', 'preview'],
        ['sensitive', 'production'],
      ]);
    });

    it('is verified through the redeploy: the deployment snapshot holds the new key', async () => {
      const old = testKey();
      const next = testKey();
      fx = await vercelFixture({
        envs: [
          { key: VAR, value: old, type: 'sensitive', target: ['production'] },
          { key: 'OTHER', value: 'same', target: ['production'] },
        ],
        config: { redeploy: true },
      });
      expect(fx.target.redeploy).toBeTypeOf('function');
      const pf = await fx.target.preflight();
      expect(pf.notes?.join('\n')).toMatch(/then by the production redeploy/);
      expect(pf.notes?.join('\n')).toMatch(/redeploys the latest production deployment/);
      const receipt = await fx.target.write(new Secret(next), op(next));
      // The write alone deploys nothing.
      expect(fx.emu.deployments('nomora-paw')).toHaveLength(1);
      await fx.target.verify(new Secret(next), op(next), receipt);
      const r = await fx.target.redeploy!(op(next), receipt);
      expect(r.method).toBe('redeploy');
      const deps = fx.emu.deployments('nomora-paw');
      expect(deps).toHaveLength(2);
      expect(deps[0]!.readyState).toBe('READY');
      expect(deps[0]!.snapshot[VAR]).toBe(next);
      expect(deps[0]!.snapshot.OTHER).toBe('same');
      expect(deps[1]!.snapshot[VAR]).toBe(old);
      // The redeploy went through forceNew with the source deployment, as `vercel redeploy` does.
      const post = fx.emu.server.calls('POST', '/v13/deployments')[0]!;
      expect(post.query).toContain('forceNew=1');
      expect(JSON.parse(post.rawBody)).toMatchObject({ deploymentId: deps[1]!.id, target: 'production', name: 'nomora-paw' });
      // Called again (a retry, a resume): no second deployment.
      await fx.target.redeploy!(op(next), receipt);
      expect(fx.emu.deployments('nomora-paw')).toHaveLength(2);
    });
  });

  it('a failed deployment fails the target, and restore puts the old value back without deploying it', async () => {
    const old = testKey();
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: old, target: ['production'] }], config: { redeploy: true } });
    const receipt = await fx.target.write(new Secret(next), op(next));
    fx.emu.failNextDeploy('ERROR');
    const e = await rejection(fx.target.redeploy!(op(next), receipt));
    expect(e.kind).toBe('unavailable');
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/ended ERROR/);
    expect(e.message).not.toContain(next);
    await restoreAndRedeploy(fx.target, new Secret(old), op(next), receipt);
    expect(fx.emu.getEnv('nomora-paw', VAR)[0]!.value).toBe(old);
    // The failed deployment never served: no restore deployment needed.
    expect(fx.emu.deployments('nomora-paw')).toHaveLength(2);
  });

  it('a BLOCKED deployment fails at once (it never builds by itself), and restore deploys nothing', async () => {
    // BLOCKED is a readyState (vercel/sdk getdeploymentresponsebody.ts): before, keyrot polled it until the timeout.
    const old = testKey();
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: old, target: ['production'] }], config: { redeploy: true, timeout: '10m' } });
    const receipt = await fx.target.write(new Secret(next), op(next));
    fx.emu.failNextDeploy('BLOCKED');
    const started = Date.now();
    const e = await rejection(fx.target.redeploy!(op(next), receipt));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(e.kind).toBe('unavailable');
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/is BLOCKED/);
    expect(fx.emu.deployments('nomora-paw')[0]!.readyState).toBe('BLOCKED');
    await restoreAndRedeploy(fx.target, new Secret(old), op(next), receipt);
    expect(fx.emu.getEnv('nomora-paw', VAR)[0]!.value).toBe(old);
    expect(fx.emu.deployments('nomora-paw')).toHaveLength(2);
  });

  it('restore after a successful redeploy deploys again with the old key', async () => {
    const old = testKey();
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: old, type: 'sensitive', target: ['production'] }], config: { redeploy: true } });
    const receipt = await fx.target.write(new Secret(next), op(next));
    await fx.target.redeploy!(op(next), receipt);
    await restoreAndRedeploy(fx.target, new Secret(old), op(next), receipt);
    const deps = fx.emu.deployments('nomora-paw');
    expect(deps).toHaveLength(3);
    expect(deps[0]!.readyState).toBe('READY');
    expect(deps[0]!.snapshot[VAR]).toBe(old);
    expect(fx.emu.getEnv('nomora-paw', VAR)[0]!.value).toBe(old);
    // Idempotent: a second restore neither writes nor deploys.
    const count = fx.emu.mutations;
    await restoreAndRedeploy(fx.target, new Secret(old), op(next), receipt);
    expect(fx.emu.deployments('nomora-paw')).toHaveLength(3);
    expect(fx.emu.mutations).toBe(count);
  });

  it('a 201 with a non-empty failed list is a failure that never shows the key', async () => {
    const next = testKey();
    fx = await vercelFixture({ envs: [] });
    fx.emu.failNextCreate();
    const e = await rejection(fx.target.write(new Secret(next), op(next)));
    expect(e.kind).toBe('invalid');
    expect(e.message).toMatch(/ENV_CREATION_FAILED/);
    expect(e.message).not.toContain(next);
    expect(JSON.stringify(e)).not.toContain(next);
    // The emulator echoed the value in `failed`: it reached the client but not the message.
    expect(fx.emu.server.requests.at(-1)!.status).toBe(201);
    expect(fx.emu.getEnv('nomora-paw', VAR)).toEqual([]);
  });

  it('a 429 is reported with the reset delay and retried by the engine policy', async () => {
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), target: ['production'] }] });
    fx.emu.rateLimitNext({ path: /\/env\/[^/]+$/, method: 'PATCH', resetInSec: 3 });
    const clock = fakeClock();
    const errors: TargetError[] = [];
    await withRetry(() => fx!.target.write(new Secret(next), op(next)), { clock, random: () => 0, onRetry: (i) => errors.push(i.error) });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.kind).toBe('rate-limited');
    expect(errors[0]!.message).toMatch(/Vercel rate-limited write on OPENAI_API_KEY entry \S+ of Vercel project nomora-paw for \d+s/);
    // Paced by X-RateLimit-Reset (epoch seconds, ~2-3 s away), not retried at once.
    expect(clock.slept[0]).toBeGreaterThanOrEqual(1000);
    expect(fx.emu.getEnv('nomora-paw', VAR)[0]!.value).toBe(next);
  });

  it('waits for the reset when an endpoint budget is spent instead of hitting 429', async () => {
    const next = testKey();
    fx = await vercelFixture({
      envs: [
        { key: VAR, value: testKey(), target: ['production'] },
        { key: VAR, value: testKey(), target: ['preview'] },
        { key: VAR, value: testKey(), target: ['development'] },
      ],
      config: { targets: ['production', 'preview', 'development'] },
      emulator: { rateLimit: { limit: 4, windowMs: 1000 } },
      clock: systemClock,
    });
    const receipt = await fx.target.write(new Secret(next), op(next));
    await fx.target.verify(new Secret(next), op(next), receipt);
    expect(fx.emu.server.requests.filter((r) => r.status === 429)).toEqual([]);
    expect(fx.emu.server.calls('GET', /\/v1\/projects\//).length).toBe(6);
  });

  it('rejected credentials: auth error in product words, never the key', async () => {
    const next = testKey();
    fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), target: ['production'] }] });
    fx.emu.revokeToken(fx.token);
    const pf = await fx.target.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/Vercel rejected the token from env:VERCEL_TOKEN/);
    const e = await rejection(fx.target.write(new Secret(next), op(next)));
    expect(e.kind).toBe('auth');
    expect(e.message).toMatch(/vercel\.com\/account\/tokens/);
    expect(e.message).not.toContain(fx.token);
    expect(e.message).not.toContain(next);
    const missing = await fx.make({}, {});
    const m = await rejection(missing.write(new Secret(next), op(next)));
    expect(m.kind).toBe('auth');
    expect(m.message).toMatch(/VERCEL_TOKEN is not set/);
  });

  it('a 403 flagged invalidToken without a message is still an auth error', async () => {
    // Observed live: `{"error":{"code":"forbidden","invalidToken":true}}` (no `message`).
    fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), target: ['production'] }] });
    fx.emu.server.failNext({ status: 403, headers: { 'content-type': 'application/json' }, body: { error: { code: 'forbidden', invalidToken: true } } });
    const e = await rejection(fx.target.read());
    expect(e.kind).toBe('auth');
    expect(e.message).toMatch(/Vercel rejected the token from env:VERCEL_TOKEN/);
  });

  it('a team the token cannot reach is a permission error naming the team', async () => {
    const team = { id: 'team_nomora', slug: 'nomora' };
    fx = await vercelFixture({ envs: [{ key: VAR, value: testKey(), target: ['production'] }], team });
    expect((await fx.target.preflight()).status).toBe('ready');
    const outsider = await fx.make({ team: 'acme' });
    const pf = await outsider.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/denied .* team acme/);
    const e = await rejection(outsider.read());
    expect(e.kind).toBe('permission');
  });

  it('an unknown project is not-found naming it', async () => {
    fx = await vercelFixture({ envs: [] });
    const t = await fx.make({ project: 'no-such-app' });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/Vercel project no-such-app was not found/);
  });

  it('redeploy: true without production is refused at preflight', async () => {
    fx = await vercelFixture({ envs: [], config: { redeploy: true, targets: ['preview'] } });
    const pf = await fx.target.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/redeploy: true redeploys production/);
    expect(fx.target.redeploy).toBeUndefined();
  });
});

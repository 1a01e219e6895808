import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { RenderEmulator, type RenderServiceType } from '../../emulators/render/emulator.ts';
import { render } from '../../src/targets/render/index.ts';
import { Secret } from '../../src/core/secret.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock, type Clock } from '../../src/runtime/clock.ts';
import { testContext } from '../helpers/context.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { testKey } from '../helpers/keys.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';

/** Real time, but every poll sleeps at most 10 ms: the emulator's deploy phases run in real time. */
const quickClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 10))) };

describe('render target', () => {
  let emu: RenderEmulator;
  let token: string;
  let svc: string;
  const oldKey = testKey();
  const newKey = testKey();
  const op = { rotationId: 'rot_render_1', fingerprint: new Secret(newKey).fingerprint };

  async function makeTarget(opts: { env?: NodeJS.ProcessEnv; service?: string; redeploy?: boolean; timeout?: string; clock?: Clock } = {}) {
    const ctx = { ...testContext({ env: opts.env ?? { RENDER_API_KEY: token }, name: 'render-test' }), clock: opts.clock ?? quickClock };
    return render.create({ service: opts.service ?? svc, endpoint: `${emu.url}/v1`, redeploy: opts.redeploy, timeout: opts.timeout }, ctx);
  }
  async function restart(phaseMs: number, type: RenderServiceType = 'web_service') {
    await emu.stop();
    emu = new RenderEmulator({ phaseMs });
    await emu.start();
    token = emu.addToken();
    svc = emu.seedService({ name: 'api', type, env: { DATABASE_URL: 'postgres://db/app', OPENAI_API_KEY: oldKey } });
  }

  beforeEach(async () => {
    emu = new RenderEmulator();
    await emu.start();
    token = emu.addToken();
    svc = emu.seedService({ name: 'api', env: { DATABASE_URL: 'postgres://db/app', OPENAI_API_KEY: oldKey } });
  });
  afterEach(async () => {
    await emu.stop();
  });

  it('preflight reads the current value and says one deploy of the current build follows', async () => {
    const pf = await (await makeTarget()).preflight();
    expect(pf.status).toBe('ready');
    expect(pf.current.kind === 'value' && pf.current.value.equals(new Secret(oldKey))).toBe(true);
    expect(pf.notes!.join('\n')).toMatch(/deploy of the current build \(no new code\), waited for until live/);
    for (const r of emu.server.requests) expect(r.headers.authorization).toBe(`Bearer ${token}`);
  });

  it('writes ONE variable with PUT /env-vars/{key} (never the replace-all PUT); the receipt holds no value', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect(emu.vars(svc)).toEqual({ DATABASE_URL: 'postgres://db/app', OPENAI_API_KEY: newKey });
    expect(emu.server.calls('PUT', `/v1/services/${svc}/env-vars`)).toHaveLength(0);
    const puts = emu.server.calls('PUT', `/v1/services/${svc}/env-vars/OPENAI_API_KEY`);
    expect(JSON.parse(puts[0]!.rawBody)).toEqual({ value: newKey });
    expect(receipt).toEqual({ service: svc, changed: true, created: false });
    expect(JSON.stringify(receipt)).not.toContain(newKey);
    // Idempotent: the same write again sends nothing.
    expect(await t.write(new Secret(newKey), op)).toMatchObject({ changed: false });
    expect(emu.envWriteCount(svc)).toBe(1);
  });

  it('verify reads back; a value changed behind keyrot is a mismatch naming fingerprints only', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe('read-back');
    const intruder = testKey();
    emu.setVar(svc, 'OPENAI_API_KEY', intruder);
    const err = await targetErrorOf(t.verify(new Secret(newKey), op, receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).not.toContain(intruder);
  });

  it('redeploy starts one deploy_only deploy and waits through its phases until live, running the new key', async () => {
    await restart(40);
    const t = await makeTarget();
    await t.preflight();
    const receipt = await t.write(new Secret(newKey), op);
    const res = await t.redeploy!(op, receipt);
    expect(res).toMatchObject({ method: 'redeploy' });
    expect(res.detail).toMatch(/is live with the new key/);
    const posts = emu.server.calls('POST', `/v1/services/${svc}/deploys`);
    expect(posts.map((p) => JSON.parse(p.rawBody))).toEqual([{ deployMode: 'deploy_only' }]);
    expect(emu.runningEnv(svc)!.OPENAI_API_KEY).toBe(newKey);
    // A retried redeploy of the same rotation watches the same deploy instead of starting another.
    await t.redeploy!(op, receipt);
    expect(emu.server.calls('POST', `/v1/services/${svc}/deploys`)).toHaveLength(1);
  });

  it('a static site gets a build (variables are baked in); a busy service queues the deploy (202) and keyrot finds it', async () => {
    // Only Date is faked: the emulator derives a deploy's status from its age, and the clock's
    // sleep moves that time, so the other deploy is still building when keyrot's is triggered.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const dateClock: Clock = { now: () => Date.now(), sleep: async (ms) => void vi.setSystemTime(Date.now() + ms) };
      await restart(200, 'static_site');
      const t = await makeTarget({ clock: dateClock });
      await t.preflight();
      const receipt = await t.write(new Secret(newKey), op);
      // Someone else's deploy is building: Render answers keyrot's 202 with no body and queues it.
      await fetch(`${emu.url}/v1/services/${svc}/deploys`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
      await t.redeploy!(op, receipt);
      const posts = emu.server.calls('POST', `/v1/services/${svc}/deploys`);
      expect(JSON.parse(posts.at(-1)!.rawBody)).toEqual({ clearCache: 'do_not_clear' });
      expect(emu.server.calls('GET', `/v1/services/${svc}/deploys`)).toHaveLength(1);
      expect(emu.runningEnv(svc)!.OPENAI_API_KEY).toBe(newKey);
      expect(emu.deploys(svc).map((d) => [d.status, d.build])).toEqual([['deactivated', true], ['deactivated', true], ['live', true]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a failed deploy fails the target in product words; a deploy that never ends is a timeout (fake clock)', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    emu.failNextDeploy(svc, 'update_failed');
    const failed = await targetErrorOf(t.redeploy!(op, receipt));
    expect(failed.message).toMatch(/ended update_failed: the service still runs its previous deploy/);
    await restart(3_600_000);
    const slow = await makeTarget({ clock: fakeClock(), timeout: '30s' });
    const r2 = await slow.write(new Secret(newKey), op);
    const err = await targetErrorOf(slow.redeploy!(op, r2));
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/still (queued|update_in_progress|build_in_progress) after 30s/);
  });

  it('restore puts the old value back (with or without a receipt) and deploys again onto it', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    await t.redeploy!(op, receipt);
    await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
    expect(emu.vars(svc).OPENAI_API_KEY).toBe(oldKey);
    expect(emu.runningEnv(svc)!.OPENAI_API_KEY).toBe(oldKey);
    const writes = emu.envWriteCount(svc);
    await t.restore(new Secret(oldKey), op, undefined);
    expect(emu.envWriteCount(svc)).toBe(writes);
  });

  it('restore of a variable keyrot created deletes it, and only it', async () => {
    emu.setVar(svc, 'OPENAI_API_KEY', null);
    const t = await makeTarget();
    expect((await t.preflight()).notes!.join('\n')).toMatch(/keyrot will create it/);
    const receipt = await t.write(new Secret(newKey), op);
    expect(receipt.created).toBe(true);
    await t.restore(null, op, receipt);
    expect(emu.vars(svc)).toEqual({ DATABASE_URL: 'postgres://db/app' });
    await t.restore(null, op, receipt);
    expect(emu.server.calls('DELETE', `/v1/services/${svc}/env-vars/OPENAI_API_KEY`)).toHaveLength(1);
  });

  it('redeploy: false has no redeploy; a suspended service blocks a target that redeploys', async () => {
    expect((await makeTarget({ redeploy: false })).redeploy).toBeUndefined();
    const suspended = emu.seedService({ suspended: true, env: { OPENAI_API_KEY: oldKey } });
    const pf = await (await makeTarget({ service: suspended })).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/is suspended, so it cannot be deployed: resume it/);
  });

  it('401, 403, 404 and a missing key are blocked reasons in product words', async () => {
    const bad = await (await makeTarget({ env: { RENDER_API_KEY: 'rnd_notarealkeyatall' } })).preflight();
    expect(bad.reason).toMatch(/^Render rejected the API key \(RENDER_API_KEY\): create an API key/);
    expect(bad.reason).not.toContain('rnd_notarealkeyatall');
    expect((await (await makeTarget({ env: {} })).preflight()).reason).toMatch(/RENDER_API_KEY/);
    const stranger = emu.addToken({ owners: ['tea-someoneelse'] });
    const hidden = await (await makeTarget({ env: { RENDER_API_KEY: stranger } })).preflight();
    expect(hidden.reason).toMatch(new RegExp(`^Render service ${svc} not found: check \`service:\``));
    const t = await makeTarget();
    emu.server.failNext({ method: 'PUT', status: 403, body: { message: 'forbidden' } });
    const denied = await targetErrorOf(t.write(new Secret(newKey), op));
    expect(denied.kind).toBe('permission');
    expect(denied.message).toMatch(/member of the service's workspace/);
  });

  it('429 waits what Ratelimit-Reset asks; 5xx is retryable; the key never shows, even echoed', async () => {
    const t = await makeTarget();
    emu.failNextWithRateLimit();
    expect(await targetErrorOf(t.read())).toMatchObject({ kind: 'rate-limited', retryable: true, retryAfterMs: 4000 });
    emu.failNextWithRateLimit();
    const clock = fakeClock();
    await withRetry(() => t.write(new Secret(newKey), op), { clock, random: () => 0 });
    expect(clock.slept).toEqual([4000]);
    expect(emu.vars(svc).OPENAI_API_KEY).toBe(newKey);
    emu.server.failNext({ method: 'PUT', status: 400, body: { id: 'invalid_request', message: `bad value ${oldKey}` } });
    const refused = await targetErrorOf(t.restore(new Secret(oldKey), op, undefined));
    expect(refused.message).toMatch(/Render refused to change OPENAI_API_KEY on service/);
    expect(refused.message).not.toContain(oldKey);
    emu.server.failNext({ status: 503, body: { message: `down ${newKey}` } });
    const down = await targetErrorOf(t.read());
    expect(down.retryable).toBe(true);
    expect(down.message).not.toContain(newKey);
  });

  it('discover pages through every service (100 a page) and reads each one’s variables', async () => {
    for (let i = 0; i < 104; i++) emu.seedService({ name: `svc-${i}`, env: { OTHER: 'x' } });
    const far = emu.seedService({ name: 'last', env: { OPENAI_API_KEY: newKey } });
    const res = await render.discover!({
      ...testContext({ env: { RENDER_API_KEY: token } }),
      varNames: ['OPENAI_API_KEY'],
      configs: [{ endpoint: `${emu.url}/v1` }],
    });
    expect(res.scope).toBe('106 Render services the API key reaches');
    expect(res.count).toBe(106);
    expect(res.places.map((p) => p.target)).toEqual([
      { type: 'render', service: svc, endpoint: `${emu.url}/v1` },
      { type: 'render', service: far, endpoint: `${emu.url}/v1` },
    ]);
    const held = res.places.map((p) => (p.holds.kind === 'value' ? p.holds.value.fingerprint : null));
    expect(held).toEqual([new Secret(oldKey).fingerprint, new Secret(newKey).fingerprint]);
    expect(emu.server.calls('GET', '/v1/services')).toHaveLength(2);
  });
});

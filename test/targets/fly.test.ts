import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { FlyEmulator, type FlyEmulatorOptions } from '../../emulators/fly/emulator.ts';
import { fly } from '../../src/targets/fly/index.ts';
import { flyAuthorization } from '../../src/targets/fly/client.ts';
import { Secret } from '../../src/core/secret.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock, type Clock } from '../../src/runtime/clock.ts';
import { testContext } from '../helpers/context.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { testKey } from '../helpers/keys.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';

const APP = 'nomora-api';
/** Real time, but every poll sleeps at most 10 ms: machine start phases run in real time in the emulator. */
const quickClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 10))) };

describe('fly target', () => {
  let emu: FlyEmulator;
  let token: string;
  const oldKey = testKey();
  const newKey = testKey();
  const op = { rotationId: 'rot_fly_1', fingerprint: new Secret(newKey).fingerprint };

  async function start(opts: FlyEmulatorOptions = {}, seed: { machines?: number; stopped?: number; secrets?: Record<string, string> } = {}) {
    await emu?.stop();
    emu = new FlyEmulator({ actionBurst: 1000, ...opts });
    await emu.start();
    token = emu.addToken({ apps: [APP] });
    emu.seedApp(APP, { secrets: seed.secrets ?? { DATABASE_URL: 'postgres://db/app', OPENAI_API_KEY: oldKey }, machines: seed.machines ?? 2, stopped: seed.stopped ?? 0 });
  }
  async function makeTarget(opts: { env?: NodeJS.ProcessEnv; app?: string; redeploy?: boolean; timeout?: string; clock?: Clock } = {}) {
    const ctx = { ...testContext({ env: opts.env ?? { FLY_API_TOKEN: token }, name: 'fly-test' }), clock: opts.clock ?? quickClock };
    return fly.create({ app: opts.app ?? APP, endpoint: emu.url, redeploy: opts.redeploy, timeout: opts.timeout }, ctx);
  }

  beforeEach(async () => {
    await start();
  });
  afterEach(async () => {
    await emu.stop();
  });

  it('preflight is ready, sends a deploy token as FlyV1, counts the machines it will update', async () => {
    const pf = await (await makeTarget()).preflight();
    expect(pf).toMatchObject({ status: 'ready', willCreate: false, current: { kind: 'unreadable' } });
    expect(pf.notes!.join('\n')).toMatch(/updates its 2 machines onto that version one at a time/);
    for (const r of emu.server.requests) expect(r.headers.authorization).toBe(token);
    // A token pasted with or without its scheme gets the right one.
    expect(flyAuthorization(token.replace(/^FlyV1 /, ''))).toBe(token);
    expect(flyAuthorization('fo1_notamacaroon')).toBe('Bearer fo1_notamacaroon');
  });

  it('write stages ONE secret (a new secrets version); the receipt holds the version, no value, no digest; a second write sends nothing', async () => {
    const t = await makeTarget();
    const before = emu.secretsVersion(APP);
    const receipt = await t.write(new Secret(newKey), op);
    expect(emu.secret(APP, 'OPENAI_API_KEY')).toBe(newKey);
    expect(emu.secret(APP, 'DATABASE_URL')).toBe('postgres://db/app');
    const posts = emu.server.calls('POST', `/v1/apps/${APP}/secrets`);
    expect(JSON.parse(posts[0]!.rawBody)).toEqual({ values: { OPENAI_API_KEY: newKey } });
    expect(receipt).toMatchObject({ app: APP, changed: true, created: false, version: before + 1, fingerprint: op.fingerprint });
    expect(JSON.stringify(receipt)).not.toMatch(/[0-9a-f]{32}/);
    // Staged only: the machines still run the old value until redeploy.
    expect(emu.machines(APP).every((m) => m.env.OPENAI_API_KEY === oldKey)).toBe(true);
    expect(await t.write(new Secret(newKey), op)).toMatchObject({ changed: false });
    expect(emu.secretWriteCount(APP)).toBe(1);
  });

  it('verify compares the listed digest (also from a fresh process); a value changed behind keyrot is a mismatch', async () => {
    const receipt = await (await makeTarget()).write(new Secret(newKey), op);
    const fresh = await makeTarget();
    expect(await fresh.verify(new Secret(newKey), op, receipt)).toMatchObject({ method: 'metadata' });
    const intruder = testKey();
    emu.setSecret(APP, 'OPENAI_API_KEY', intruder);
    const err = await targetErrorOf(fresh.verify(new Secret(newKey), op, receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).toContain(op.fingerprint);
    expect(err.message).not.toContain(intruder);
    expect(err.message).not.toMatch(/[0-9a-f]{32}/);
  });

  it('with a digest keyrot cannot compute, verify holds through the digest Fly answered, then through updated_at after a restart', async () => {
    await start({ digest: 'opaque' });
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect(await t.verify(new Secret(newKey), op, receipt)).toMatchObject({ method: 'metadata', detail: expect.stringMatching(/digest Fly lists/) });
    const fresh = await makeTarget();
    expect(await fresh.verify(new Secret(newKey), op, receipt)).toMatchObject({ detail: expect.stringMatching(/unchanged since keyrot's write at/) });
    // updated_at proves nothing about another key, nor once the secret changed again.
    const other = new Secret(testKey());
    expect((await targetErrorOf(fresh.verify(other, { ...op, fingerprint: other.fingerprint }, receipt))).kind).toBe('mismatch');
    await new Promise((r) => setTimeout(r, 5));
    emu.setSecret(APP, 'OPENAI_API_KEY', testKey());
    expect((await targetErrorOf(fresh.verify(new Secret(newKey), op, receipt))).message).toMatch(/holds a value keyrot did not write \(changed at /);
  });

  it('redeploy updates every machine with min_secrets_version, waits until each is started, leaves stopped ones stopped', async () => {
    // staleReplicas: a machine updated without min_secrets_version would boot with the old secrets.
    await start({ phaseMs: 30, staleReplicas: true }, { machines: 2, stopped: 1 });
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    const res = await t.redeploy!(op, receipt);
    expect(res.detail).toMatch(/3 machines of Fly app nomora-api updated onto secrets version \d+ with the new key \(2 restarted and started, 1 stopped/);
    const ms = emu.machines(APP);
    expect(ms.map((m) => m.state).sort()).toEqual(['started', 'started', 'stopped']);
    expect(ms.every((m) => m.env.OPENAI_API_KEY === newKey && m.secretsVersion === receipt.version)).toBe(true);
    const updates = emu.server.calls('POST', /^\/v1\/apps\/nomora-api\/machines\/[^/]+$/);
    expect(updates).toHaveLength(3);
    expect(updates.map((u) => JSON.parse(u.rawBody).min_secrets_version)).toEqual([receipt.version, receipt.version, receipt.version]);
    // A retried redeploy of the same step does not restart the machines again.
    await t.redeploy!(op, receipt);
    expect(emu.server.calls('POST', /^\/v1\/apps\/nomora-api\/machines\/[^/]+$/)).toHaveLength(3);
  });

  it('a machine that fails to start fails the target in product words; one that never starts is a timeout (fake clock)', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    emu.failNextStart(APP);
    const err = await targetErrorOf(t.redeploy!(op, receipt));
    expect(err.message).toMatch(/did not start after keyrot updated it onto secrets version \d+ \(it is failed\): see `fly logs -a nomora-api -i /);
    await start({ phaseMs: 3_600_000 });
    const slow = await makeTarget({ clock: fakeClock(), timeout: '30s' });
    const r2 = await slow.write(new Secret(newKey), op);
    const late = await targetErrorOf(slow.redeploy!(op, r2));
    expect(late.kind).toBe('timeout');
    expect(late.message).toMatch(/is still (replacing|starting) after 30s/);
  });

  it('a machine leased by a running `fly deploy` is a retryable 409 naming it', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    emu.leaseMachine(APP, emu.machines(APP)[0]!.id);
    const err = await targetErrorOf(t.redeploy!(op, receipt));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/leased by another deploy \(is `fly deploy` running\?\)/);
  });

  it('restore stages the old value again and redeploy(restore) puts the machines back on it, with or without a receipt', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    await t.redeploy!(op, receipt);
    await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
    expect(emu.secret(APP, 'OPENAI_API_KEY')).toBe(oldKey);
    expect(emu.machines(APP).every((m) => m.env.OPENAI_API_KEY === oldKey)).toBe(true);
    const writes = emu.secretWriteCount(APP);
    const fresh = await makeTarget();
    await fresh.restore(new Secret(oldKey), { ...op, rotationId: 'rot_fly_2' }, undefined);
    expect(emu.secretWriteCount(APP)).toBe(writes);
  });

  it('restore of a secret keyrot created unsets it; the machines are brought back without it', async () => {
    await start({}, { secrets: { DATABASE_URL: 'postgres://db/app' } });
    const t = await makeTarget();
    expect((await t.preflight()).notes!.join('\n')).toMatch(/keyrot will create it \(and unset it again on rollback\)/);
    const receipt = await t.write(new Secret(newKey), op);
    expect(receipt.created).toBe(true);
    await t.redeploy!(op, receipt);
    await restoreAndRedeploy(t, null, op, receipt);
    expect(emu.secret(APP, 'OPENAI_API_KEY')).toBeUndefined();
    expect(JSON.parse(emu.server.calls('POST', `/v1/apps/${APP}/secrets`).at(-1)!.rawBody)).toEqual({ values: { OPENAI_API_KEY: null } });
    expect(emu.machines(APP).every((m) => !('OPENAI_API_KEY' in m.env))).toBe(true);
  });

  it('redeploy: false has no redeploy and says the machines keep the old value', async () => {
    const t = await makeTarget({ redeploy: false });
    expect(t.redeploy).toBeUndefined();
    expect((await t.preflight()).notes!.join('\n')).toMatch(/no machine update \(redeploy: false\)/);
  });

  it('401, 404 and a missing token are blocked reasons in product words, the token never shown', async () => {
    const bad = await (await makeTarget({ env: { FLY_API_TOKEN: 'FlyV1 fm2_notarealtoken' } })).preflight();
    expect(bad.reason).toMatch(/^Fly rejected the API token \(FLY_API_TOKEN\): create one with `fly tokens deploy -a APP`/);
    expect(bad.reason).not.toContain('fm2_notarealtoken');
    expect((await (await makeTarget({ env: {} })).preflight()).reason).toMatch(/FLY_API_TOKEN/);
    emu.seedApp('someone-else');
    const hidden = await (await makeTarget({ app: 'someone-else' })).preflight();
    expect(hidden.reason).toMatch(/^Fly app someone-else not found: check `app:`.*a deploy token reaches only its own app/);
  });

  it('Fly’s per-action limit (3 a second) answers 429: retryable, and withRetry gets through; the key never shows', async () => {
    await start({ actionBurst: 3 });
    const t = await makeTarget();
    for (let i = 0; i < 3; i++) await t.read();
    const limited = await targetErrorOf(t.read());
    expect(limited).toMatchObject({ kind: 'rate-limited', retryable: true });
    emu.failNextWithRateLimit();
    const clock = fakeClock();
    let attempts = 0;
    await withRetry(
      async () => {
        attempts++;
        if (attempts > 1) await new Promise((r) => setTimeout(r, 1_000));
        return t.write(new Secret(newKey), op);
      },
      { clock, random: () => 0 },
    );
    expect(emu.secret(APP, 'OPENAI_API_KEY')).toBe(newKey);
    emu.server.failNext({ method: 'POST', status: 400, body: { error: `bad value ${oldKey}` } });
    const refused = await targetErrorOf(t.restore(new Secret(oldKey), op, undefined));
    expect(refused.message).toMatch(/^Fly refused restore on app nomora-api \(HTTP 400\)/);
    expect(refused.message).not.toContain(oldKey);
  });

  it('discover lists the org’s apps with an org token and matches by digest in memory; a deploy token searches its own app', async () => {
    emu.seedApp('worker', { secrets: { OPENAI_API_KEY: newKey } });
    emu.seedApp('blog', { secrets: { OTHER: 'x' } });
    const orgToken = emu.addToken({ orgs: ['personal'] });
    const res = await fly.discover!({ ...testContext({ env: { FLY_API_TOKEN: orgToken } }), varNames: ['OPENAI_API_KEY'], configs: [{ endpoint: emu.url }] });
    expect(res.scope).toBe('3 Fly apps of org personal');
    expect(res.places.map((p) => p.target)).toEqual([
      { type: 'fly', app: APP, endpoint: emu.url },
      { type: 'fly', app: 'worker', endpoint: emu.url },
    ]);
    expect(res.places.map((p) => p.matches!(new Secret(oldKey)))).toEqual([true, false]);
    expect(res.places.every((p) => p.holds.kind === 'unreadable')).toBe(true);
    const deploy = await fly.discover!({
      ...testContext({ env: { FLY_API_TOKEN: token } }),
      varNames: ['OPENAI_API_KEY'],
      configs: [{ endpoint: emu.url, app: APP }],
    });
    expect(deploy.places.map((p) => p.target.app)).toEqual([APP]);
  });
});

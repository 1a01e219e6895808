import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { NetlifyEmulator, type NetlifyContext } from '../../emulators/netlify/emulator.ts';
import { netlify } from '../../src/targets/netlify/index.ts';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock, type Clock } from '../../src/runtime/clock.ts';
import type { Target } from '../../src/targets/types.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';
import type { NetlifyReceipt } from '../../src/targets/netlify/index.ts';

/** Real time, but every poll sleeps at most 20 ms: deploy lifecycles run in real time in the emulator. */
const quickClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))),
};

const TEAM = 'nomora-team';

async function errorOf(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TargetError);
  return e as TargetError;
}

describe('netlify target', () => {
  let emu: NetlifyEmulator;
  let token: string;
  let siteId: string;
  const oldKey = testKey();
  const previewKey = testKey();
  const newKey = testKey();
  const op = { rotationId: 'rot_netlify_1', fingerprint: new Secret(newKey).fingerprint };

  function seed(opts: { secret?: boolean; key?: Array<{ context: NetlifyContext; value: string; context_parameter?: string }> | null } = {}) {
    const key = opts.key === undefined ? [
      { context: 'production' as const, value: oldKey },
      { context: 'deploy-preview' as const, value: previewKey },
    ] : opts.key;
    const site = emu.seedSite({
      name: 'nomora-web',
      account: TEAM,
      env: [
        { key: 'NODE_VERSION', values: [{ context: 'all', value: '24' }] },
        {
          key: 'PUBLIC_API_URL',
          values: [
            { context: 'production', value: 'https://api.example.com/ünïcode?x=1&y=2' },
            { context: 'deploy-preview', value: 'https://staging.example.com' },
          ],
        },
        { key: 'SIGNING_SECRET', is_secret: true, scopes: ['functions'], values: [{ context: 'production', value: 'shh-do-not-touch' }] },
        ...(key ? [{ key: 'OPENAI_API_KEY', is_secret: opts.secret ?? false, values: key }] : []),
      ],
    });
    emu.seedAccountVar(TEAM, 'OPENAI_API_KEY', [{ context: 'all', value: 'team-level-value' }]);
    siteId = site.id;
    return site;
  }

  async function makeTarget(opts: { env?: NodeJS.ProcessEnv; clock?: Clock; context?: string; redeploy?: boolean; account?: string; site?: string; timeout?: string } = {}): Promise<Target<NetlifyReceipt>> {
    const ctx = { ...testContext({ env: opts.env ?? { NETLIFY_AUTH_TOKEN: token }, name: 'netlify-test' }), clock: opts.clock ?? quickClock };
    return netlify.create(
      {
        site: opts.site ?? siteId,
        account: opts.account,
        context: opts.context ?? 'production',
        redeploy: opts.redeploy ?? false,
        timeout: opts.timeout,
        endpoint: emu.url,
      },
      ctx,
    );
  }

  /** Everything but the rotated var, and the rotated var's other contexts, byte for byte. */
  function untouched(context = 'production') {
    return {
      others: emu.getVars(siteId).filter((v) => v.key !== 'OPENAI_API_KEY'),
      siblings: emu.getVar(siteId, 'OPENAI_API_KEY')?.values.filter((v) => v.context !== context) ?? [],
      team: emu.getAccountVars(TEAM),
    };
  }

  beforeEach(async () => {
    emu = new NetlifyEmulator({ phaseMs: 30, deploysPerMinute: 100 });
    await emu.start();
    token = emu.addToken();
  });
  afterEach(async () => {
    await emu.stop();
  });

  it('preflight finds the team from the site, reads the current value and explains the plan', async () => {
    seed();
    const t = await makeTarget();
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.willCreate).toBe(false);
    expect(pf.current.kind).toBe('value');
    if (pf.current.kind === 'value') expect(pf.current.value.equals(new Secret(oldKey))).toBe(true);
    const notes = pf.notes!.join('\n');
    expect(notes).toMatch(/production value of OPENAI_API_KEY on Netlify site nomora-web .* \(team nomora-team\) with a single-context PATCH/);
    expect(notes).toMatch(/no redeploy \(redeploy: false\)/);
    expect(notes).toMatch(/verified by reading the production value back/);
    // The env API was addressed with the team slug, the single var, and the site id.
    expect(emu.server.calls('GET', `/api/v1/accounts/${TEAM}/env/OPENAI_API_KEY`)[0]!.query).toBe(`?site_id=${siteId}`);
    for (const r of emu.server.requests) expect(r.headers.authorization).toBe(`Bearer ${token}`);
  });

  it('a secret is unreadable: preflight says verification is by metadata (and the deploy)', async () => {
    seed({ secret: true });
    const t = await makeTarget({ redeploy: true });
    const pf = await t.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.current.kind).toBe('unreadable');
    expect((await t.read()).kind).toBe('unreadable'); // a secret: per-value read-back says no
    expect(pf.notes!.join('\n')).toMatch(/secret \(write-only\): verified by metadata .* and by the new deploy reaching ready/);
    expect(pf.notes!.join('\n')).toMatch(/starts a production build and waits until its deploy is ready/);
  });

  it('writes only the one context value (single PATCH) and leaves everything else byte-identical', async () => {
    seed();
    const before = untouched();
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect(untouched()).toStrictEqual(before);
    expect(emu.getVar(siteId, 'OPENAI_API_KEY')!.values.find((v) => v.context === 'production')!.value).toBe(newKey);
    const writes = emu.server.requests.filter((r) => r.method !== 'GET');
    expect(writes).toHaveLength(1);
    expect(writes[0]!.method).toBe('PATCH');
    expect(JSON.parse(writes[0]!.rawBody)).toStrictEqual({ context: 'production', value: newKey });
    expect(receipt).toMatchObject({ site: siteId, account: TEAM, context: 'production', changed: true, createdVar: false, secret: false });
    expect(JSON.stringify(receipt)).not.toContain(newKey);
    expect(await t.verify(new Secret(newKey), op, receipt)).toMatchObject({ method: 'read-back' });
  });

  it('a second identical write changes nothing', async () => {
    seed();
    const t = await makeTarget();
    await t.write(new Secret(newKey), op);
    const n = emu.writeCount(siteId);
    const again = await t.write(new Secret(newKey), op);
    expect(again.changed).toBe(false);
    expect(emu.writeCount(siteId)).toBe(n);
  });

  it('secret: verify by metadata; same-rotation rewrite is a no-op; later changes or a lost receipt are not pretended away', async () => {
    seed({ secret: true });
    const before = untouched();
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect(receipt.secret).toBe(true);
    expect(emu.getVar(siteId, 'OPENAI_API_KEY')!.values.find((v) => v.context === 'production')!.value).toBe(newKey);
    expect(untouched()).toStrictEqual(before);
    expect(await t.read()).toMatchObject({ kind: 'unreadable' });
    const v = await t.verify(new Secret(newKey), op, receipt);
    expect(v.method).toBe('metadata');
    expect(v.detail).toMatch(/production value keyrot wrote .* is unchanged/);

    const n = emu.writeCount(siteId);
    expect(await t.write(new Secret(newKey), op)).toStrictEqual(receipt);
    expect(emu.writeCount(siteId)).toBe(n);

    expect(receipt.fingerprint).toBe(new Secret(newKey).fingerprint);
    const otherKey = testKey();
    const wrong = await errorOf(t.verify(new Secret(otherKey), op, receipt));
    expect(wrong.kind).toBe('mismatch');
    expect(wrong.message).toMatch(/is for key [0-9a-f]{12}, not the new key/);

    const lost = await errorOf(t.verify(new Secret(newKey), op, undefined));
    expect(lost.kind).toBe('mismatch');
    expect(lost.message).toMatch(/no record of its write/);

    emu.setValue(siteId, 'OPENAI_API_KEY', 'deploy-preview', testKey());
    const changed = await errorOf(t.verify(new Secret(newKey), op, receipt));
    expect(changed.kind).toBe('mismatch');
    expect(changed.message).toMatch(/changed at .* after keyrot's write/);
  });

  it('redeploy builds and waits for ready; the deploy snapshot holds the new key', async () => {
    seed({ secret: true });
    const t = await makeTarget({ redeploy: true });
    expect(t.redeploy).toBeTypeOf('function');
    await t.preflight();
    // A deploy started before the write keeps the old value: builds snapshot the environment.
    await fetch(`${emu.url}/api/v1/sites/${siteId}/builds`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const receipt = await t.write(new Secret(newKey), op);
    const res = await t.redeploy!(op, receipt);
    expect(res.method).toBe('redeploy');
    const deploys = emu.deploys(siteId);
    expect(deploys).toHaveLength(2);
    expect(deploys[0]!.env.OPENAI_API_KEY).toBe(oldKey);
    const d = deploys[1]!;
    expect(res.detail).toContain(d.id);
    expect(d.state).toBe('ready');
    expect(d.context).toBe('production');
    expect(d.env).toStrictEqual({ NODE_VERSION: '24', PUBLIC_API_URL: 'https://api.example.com/ünïcode?x=1&y=2', SIGNING_SECRET: 'shh-do-not-touch', OPENAI_API_KEY: newKey });
    // A retried redeploy of the same rotation watches the same build instead of starting another.
    await t.redeploy!(op, receipt);
    expect(emu.deploys(siteId)).toHaveLength(2);
  });

  it('a failed deploy fails the target; restore puts the old value back and rebuilds with it', async () => {
    seed({ secret: true });
    const before = untouched();
    const t = await makeTarget({ redeploy: true });
    const receipt = await t.write(new Secret(newKey), op);
    emu.failNextDeploy(siteId);
    const err = await errorOf(t.redeploy!(op, receipt));
    expect(err.kind).toBe('unavailable');
    expect(err.message).toMatch(/deploy [0-9a-f]+ of site nomora-web .* ended in state error \(Build script returned non-zero exit code: 2\)/);

    await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
    expect(emu.getVar(siteId, 'OPENAI_API_KEY')!.values.find((v) => v.context === 'production')!.value).toBe(oldKey);
    expect(untouched()).toStrictEqual(before);
    const last = emu.deploys(siteId).at(-1)!;
    expect(last.state).toBe('ready');
    expect(last.env.OPENAI_API_KEY).toBe(oldKey);
    // Idempotent: nothing left to change, no new write, no new build.
    const n = emu.writeCount(siteId);
    const builds = emu.deploys(siteId).length;
    await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
    expect(emu.writeCount(siteId)).toBe(n);
    expect(emu.deploys(siteId)).toHaveLength(builds);
  });

  it('a restore whose rebuild failed rebuilds on the next restore', async () => {
    seed({ secret: false });
    const t = await makeTarget({ redeploy: true });
    const receipt = await t.write(new Secret(newKey), op);
    emu.failNextDeploy(siteId);
    await errorOf(restoreAndRedeploy(t, new Secret(oldKey), op, receipt));
    await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
    const last = emu.deploys(siteId).at(-1)!;
    expect(last.state).toBe('ready');
    expect(last.env.OPENAI_API_KEY).toBe(oldKey);
  });

  it('creates a missing variable, and restore deletes it again', async () => {
    seed({ key: null });
    const before = untouched();
    const t = await makeTarget();
    const pf = await t.preflight();
    expect(pf.willCreate).toBe(true);
    expect(pf.current.kind).toBe('absent');
    expect(pf.notes!.join('\n')).toMatch(/does not exist on the site: keyrot will create it/);
    const receipt = await t.write(new Secret(newKey), op);
    expect(receipt.createdVar).toBe(true);
    const post = emu.server.calls('POST', `/api/v1/accounts/${TEAM}/env`);
    expect(JSON.parse(post[0]!.rawBody)).toStrictEqual([{ key: 'OPENAI_API_KEY', values: [{ context: 'production', value: newKey }] }]);
    expect(await t.verify(new Secret(newKey), op, receipt)).toMatchObject({ method: 'read-back' });
    await restoreAndRedeploy(t, null, op, receipt);
    expect(emu.getVar(siteId, 'OPENAI_API_KEY')).toBeUndefined();
    expect(untouched()).toStrictEqual(before);
    await restoreAndRedeploy(t, null, op, receipt);
    expect(emu.getVar(siteId, 'OPENAI_API_KEY')).toBeUndefined();
  });

  it('adds a value for a context that had none, and restore removes only that value', async () => {
    seed({ key: [{ context: 'deploy-preview', value: previewKey }] });
    const before = untouched();
    const t = await makeTarget();
    expect((await t.preflight()).notes!.join('\n')).toMatch(/has no production value yet/);
    const receipt = await t.write(new Secret(newKey), op);
    expect(receipt).toMatchObject({ createdVar: false, addedValue: true });
    await restoreAndRedeploy(t, null, op, receipt);
    expect(emu.getVar(siteId, 'OPENAI_API_KEY')!.values).toStrictEqual(before.siblings);
    expect(emu.server.calls('DELETE', /\/value\//)).toHaveLength(1);
  });

  it('refuses to split a value shared by all contexts, and rotates it with context: all', async () => {
    seed({ key: [{ context: 'all', value: oldKey }] });
    const prod = await makeTarget();
    const pf = await prod.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/one value for all deploy contexts: set `context: all`/);
    expect((await errorOf(prod.write(new Secret(newKey), op))).kind).toBe('invalid');
    expect(emu.writeCount(siteId)).toBe(0);
    const all = await makeTarget({ context: 'all' });
    expect((await all.preflight()).status).toBe('ready');
    await all.write(new Secret(newKey), op);
    expect(emu.getVar(siteId, 'OPENAI_API_KEY')!.values.map((v) => [v.context, v.value])).toStrictEqual([['all', newKey]]);
  });

  it('branch:NAME rotates that branch override and redeploys that branch', async () => {
    seed({ key: [{ context: 'production', value: oldKey }, { context: 'branch', context_parameter: 'staging', value: previewKey }] });
    const before = untouched('branch');
    const t = await makeTarget({ context: 'branch:staging', redeploy: true });
    expect((await t.preflight()).status).toBe('ready');
    await t.write(new Secret(newKey), op);
    const patch = emu.server.calls('PATCH', `/api/v1/accounts/${TEAM}/env/OPENAI_API_KEY`)[0]!;
    expect(JSON.parse(patch.rawBody)).toStrictEqual({ context: 'branch', context_parameter: 'staging', value: newKey });
    expect(untouched('branch')).toStrictEqual(before);
    await t.redeploy!(op, undefined);
    expect(emu.server.calls('POST', `/api/v1/sites/${siteId}/builds`)[0]!.query).toBe('?branch=staging');
    const d = emu.deploys(siteId).at(-1)!;
    expect(d).toMatchObject({ context: 'branch-deploy', branch: 'staging', state: 'ready' });
    expect(d.env.OPENAI_API_KEY).toBe(newKey);
  });

  it('refuses redeploy for contexts keyrot cannot build', async () => {
    seed();
    const pf = await (await makeTarget({ context: 'deploy-preview', redeploy: true })).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/cannot trigger a deploy-preview deploy/);
  });

  it('a deploy that never gets ready is a timeout', async () => {
    await emu.stop();
    emu = new NetlifyEmulator({ phaseMs: 3_600_000 });
    await emu.start();
    token = emu.addToken();
    seed();
    const t = await makeTarget({ redeploy: true, clock: fakeClock(), timeout: '2m' });
    const err = await errorOf(t.redeploy!(op, undefined));
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/is not ready after 2m/);
  });

  it('429 with X-RateLimit-* is retryable until the reset, and withRetry gets through', async () => {
    seed();
    const t = await makeTarget();
    emu.failNextWithRateLimit();
    const err = await errorOf(t.read());
    expect(err.kind).toBe('rate-limited');
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBeGreaterThanOrEqual(0);
    expect(err.retryAfterMs).toBeLessThanOrEqual(2_000);
    emu.failNextWithRateLimit(2);
    let attempts = 0;
    const clock = fakeClock();
    await withRetry(
      () => {
        attempts++;
        return t.write(new Secret(newKey), op);
      },
      { clock, random: () => 0.5 },
    );
    expect(attempts).toBe(3);
    expect(emu.getVar(siteId, 'OPENAI_API_KEY')!.values.find((v) => v.context === 'production')!.value).toBe(newKey);
  });

  it('a rejected token is an auth error in product words', async () => {
    seed();
    const t = await makeTarget({ env: { NETLIFY_AUTH_TOKEN: 'nfp_not-a-real-token-at-all-0000000000000' } });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/^Netlify rejected the access token \(NETLIFY_AUTH_TOKEN\): create a personal access token/);
    expect(pf.reason).toMatch(/\(Netlify said: Access Denied\)$/);
    const err = await errorOf(t.write(new Secret(newKey), op));
    expect(err.kind).toBe('auth');
    expect(err.target).toBe('netlify-test');
    const missing = await (await makeTarget({ env: {} })).preflight();
    expect(missing.reason).toMatch(/NETLIFY_AUTH_TOKEN/);
  });

  it('a reviewer cannot change variables: a permission error that says which role is needed', async () => {
    seed();
    const reviewer = emu.addToken({ role: 'reviewer' });
    const t = await makeTarget({ env: { NETLIFY_AUTH_TOKEN: reviewer } });
    expect((await t.preflight()).status).toBe('ready');
    const err = await errorOf(t.write(new Secret(newKey), op));
    expect(err.kind).toBe('permission');
    expect(err.message).toMatch(/must be an Owner or Developer of the team/);
  });

  it('an unknown site or the wrong team is named', async () => {
    seed();
    const pf = await (await makeTarget({ site: '00000000-0000-0000-0000-000000000000' })).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/^Netlify site 00000000-0000-0000-0000-000000000000 not found/);
    emu.addAccount('other-team');
    const wrong = await (await makeTarget({ account: 'other-team' })).preflight();
    expect(wrong.status).toBe('blocked');
    expect(wrong.reason).toMatch(/belongs to team nomora-team, not other-team/);
  });

  it('the key never appears in an error, even when Netlify echoes it', async () => {
    seed();
    const t = await makeTarget();
    emu.server.failNext({ method: 'PATCH', status: 422, body: { code: 422, message: `value ${newKey} rejected` } });
    const err = await errorOf(t.write(new Secret(newKey), op));
    expect(err.message).toMatch(/Netlify refused to change OPENAI_API_KEY \(production\)/);
    expect(err.message).not.toContain(newKey);
    expect(JSON.stringify(err)).not.toContain(newKey);
    emu.server.failNext({ status: 502, body: { code: 502, message: `upstream saw ${oldKey}` } });
    const err2 = await errorOf(t.restore(new Secret(oldKey), op, undefined));
    expect(err2.retryable).toBe(true);
    expect(err2.message).not.toContain(oldKey);
  });
});

describe('netlify emulator fidelity', () => {
  let emu: NetlifyEmulator;
  let token: string;
  let siteId: string;
  beforeEach(async () => {
    emu = new NetlifyEmulator({ deploysPerMinute: 3 });
    await emu.start();
    token = emu.addToken();
    siteId = emu.seedSite({
      name: 'site-a',
      account: TEAM,
      env: [{ key: 'S', is_secret: true, values: [{ context: 'production', value: 'prod-secret-value' }, { context: 'dev', value: 'dev-value' }] }],
    }).id;
  });
  afterEach(async () => {
    await emu.stop();
  });

  const auth = () => ({ authorization: `Bearer ${token}` });

  it('401 body, rate-limit headers, secret values only readable in dev', async () => {
    const no = await fetch(`${emu.url}/api/v1/sites/${siteId}`);
    expect(no.status).toBe(401);
    expect(await no.json()).toStrictEqual({ code: 401, message: 'Access Denied' });
    const res = await fetch(`${emu.url}/api/v1/accounts/${TEAM}/env/S?site_id=${siteId}`, { headers: auth() });
    expect(res.headers.get('x-ratelimit-limit')).toBe('500');
    expect(Number(res.headers.get('x-ratelimit-remaining'))).toBeLessThan(500);
    expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    const v = (await res.json()) as { values: Array<{ context: string; value?: string }> };
    expect(v.values.find((x) => x.context === 'production')).not.toHaveProperty('value');
    expect(v.values.find((x) => x.context === 'dev')!.value).toBe('dev-value');
    expect(JSON.stringify(v)).not.toContain('prod-secret-value');
  });

  it("serves /api/v1/sites/{id}/env but 404s the JS client's doubled /api/v1/api/v1 path", async () => {
    expect((await fetch(`${emu.url}/api/v1/sites/${siteId}/env`, { headers: auth() })).status).toBe(200);
    const bad = await fetch(`${emu.url}/api/v1/api/v1/sites/${siteId}/env`, { headers: auth() });
    expect(bad.status).toBe(404);
    expect(await bad.json()).toStrictEqual({ code: 404, message: 'Not Found' });
  });

  it('limits deploys to 3 a minute and pages deploy lists with Link', async () => {
    for (let i = 0; i < 3; i++) expect((await fetch(`${emu.url}/api/v1/sites/${siteId}/builds`, { method: 'POST', headers: auth() })).status).toBe(200);
    const limited = await fetch(`${emu.url}/api/v1/sites/${siteId}/builds`, { method: 'POST', headers: auth() });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    const page1 = await fetch(`${emu.url}/api/v1/sites/${siteId}/deploys?per_page=2`, { headers: auth() });
    expect(((await page1.json()) as unknown[]).length).toBe(2);
    const link = page1.headers.get('link')!;
    expect(link).toMatch(/page=2&per_page=2>; rel="next"/);
    const next = /<([^>]+)>; rel="next"/.exec(link)![1]!;
    const page2 = await fetch(next, { headers: auth() });
    expect(((await page2.json()) as unknown[]).length).toBe(1);
    expect(page2.headers.get('link')).not.toMatch(/rel="next"/);
  });
});

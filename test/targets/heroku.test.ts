import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { HerokuEmulator } from '../../emulators/heroku/emulator.ts';
import { heroku } from '../../src/targets/heroku/index.ts';
import { HEROKU_429_RETRY_MS, type HerokuTarget } from '../../src/targets/heroku/adapter.ts';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock, type Clock } from '../../src/runtime/clock.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';

const APP = 'nomora-api';
/** Real time, but every poll sleeps at most 20 ms: release lifecycles run in real time in the emulator. */
const quickClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))),
};

function others(): Record<string, string> {
  // Byte-exact neighbours: unicode, spaces, newlines, JSON, an empty string.
  return {
    DATABASE_URL: 'postgres://app@db.internal:5432/nomora',
    GREETING: 'héllo wörld ✓',
    MULTILINE: 'line one\nline two\n',
    JSON_BLOB: '{"a":[1,2,3],"b":null}',
    EMPTY: '',
    WEB_CONCURRENCY: '2',
  };
}

async function errorOf(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TargetError);
  return e as TargetError;
}

describe('heroku target', () => {
  let emu: HerokuEmulator;
  let token: string;
  const oldKey = testKey();
  const newKey = testKey();
  const op = { rotationId: 'rot_heroku_1', fingerprint: new Secret(newKey).fingerprint };

  async function makeTarget(opts: { env?: NodeJS.ProcessEnv; clock?: Clock; app?: string; timeout?: string; varName?: string } = {}) {
    const ctx = { ...testContext({ env: opts.env ?? { HEROKU_API_KEY: token }, name: 'heroku-test', varName: opts.varName }), clock: opts.clock ?? quickClock };
    return (await heroku.create({ app: opts.app ?? APP, endpoint: emu.url, timeout: opts.timeout }, ctx)) as HerokuTarget;
  }

  beforeEach(async () => {
    emu = new HerokuEmulator({ releaseMs: 1_000 }); // long enough to still be pending after a write on a loaded machine
    await emu.start();
    token = emu.addToken({ scopes: ['read-protected', 'write-protected'] });
    emu.seedApp(APP, { ...others(), OPENAI_API_KEY: oldKey });
  });
  afterEach(async () => {
    await emu.stop();
  });

  it('preflight reads the current key and says a release/restart follows', async () => {
    const t = await makeTarget();
    const pf = await t.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.willCreate).toBe(false);
    expect(pf.current.kind).toBe('value');
    if (pf.current.kind === 'value') expect(pf.current.value.equals(new Secret(oldKey))).toBe(true);
    expect(pf.notes?.join('\n')).toMatch(/new release of Heroku app nomora-api, which restarts its dynos/);
    expect(pf.notes?.join('\n')).toMatch(/reading the config var back/);
    // Every request carried the version-3 Accept header and the bearer token.
    for (const r of emu.server.requests) {
      expect(r.headers.accept).toBe('application/vnd.heroku+json; version=3');
      expect(r.headers.authorization).toBe(`Bearer ${token}`);
    }
  });

  it('preflight says plainly when the variable will be created', async () => {
    emu.setVars(APP, { OPENAI_API_KEY: null });
    const pf = await (await makeTarget()).preflight();
    expect(pf.status).toBe('ready');
    expect(pf.willCreate).toBe(true);
    expect(pf.current.kind).toBe('absent');
    expect(pf.notes?.join('\n')).toMatch(/OPENAI_API_KEY is not set on app nomora-api: keyrot will create it/);
  });

  it('writes only the one variable (single-key PATCH) and leaves every other var byte-identical', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    const vars = emu.getVars(APP);
    expect(vars.OPENAI_API_KEY).toBe(newKey);
    const { OPENAI_API_KEY: _, ...rest } = vars;
    expect(rest).toStrictEqual(others());
    const patches = emu.server.calls('PATCH', `/apps/${APP}/config-vars`);
    expect(patches).toHaveLength(1);
    expect(Object.keys(JSON.parse(patches[0]!.rawBody))).toEqual(['OPENAI_API_KEY']);
    // The receipt names the release the change created and never holds the value.
    const rel = emu.releases(APP).at(-1)!;
    expect(receipt).toMatchObject({ app: APP, changed: true, created: false, releaseId: rel.id, releaseVersion: rel.version });
    expect(JSON.stringify(receipt)).not.toContain(newKey);
    expect(rel.description).toBe('Set OPENAI_API_KEY config vars');
  });

  it('a second identical write makes no PATCH and no new release', async () => {
    const t = await makeTarget();
    await t.write(new Secret(newKey), op);
    const releases = emu.releases(APP).length;
    const receipt = await t.write(new Secret(newKey), op);
    expect(receipt.changed).toBe(false);
    expect(emu.releases(APP)).toHaveLength(releases);
    expect(emu.server.calls('PATCH', `/apps/${APP}/config-vars`)).toHaveLength(1);
  });

  it('verify always reads back, even right after this process wrote: a value changed behind keyrot since the write fails it', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    const reads = emu.server.calls('GET', `/apps/${APP}/config-vars`).length;
    expect(await t.verify(new Secret(newKey), op, receipt)).toMatchObject({ method: 'read-back' });
    expect(emu.server.calls('GET', `/apps/${APP}/config-vars`)).toHaveLength(reads + 1);
    // Someone puts another value in between the write and the verify (the same process, no restart).
    const intruder = testKey();
    emu.setVars(APP, { OPENAI_API_KEY: intruder });
    const err = await errorOf(t.verify(new Secret(newKey), op, receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).toContain(new Secret(intruder).fingerprint);
    expect(err.message).not.toContain(intruder);
    expect(err.message).not.toContain(newKey);
  });

  it('a rotation costs 6 requests per app: preflight 1, write 2 (PATCH, newest release), verify 1 (read-back), redeploy 2 (newest release, its config)', async () => {
    const t = await makeTarget();
    const count = () => emu.server.requests.length;
    expect((await t.preflight()).status).toBe('ready');
    expect(count()).toBe(1);
    const receipt = await t.write(new Secret(newKey), op);
    expect(count()).toBe(3);
    await t.verify(new Secret(newKey), op, receipt);
    expect(count()).toBe(4);
    const before = count();
    await t.redeploy!(op, receipt);
    // One look at the newest release per poll while it is pending (releases take 120 ms here), then its config.
    const polls = emu.server.requests.slice(before).filter((r) => r.path === `/apps/${APP}/releases/${receipt.releaseId}`).length;
    expect(count() - before).toBe(2 + polls);
  });

  it('redeploy watches the release the write created until it succeeds, and its snapshot holds the new key', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect(emu.releases(APP).at(-1)!.status).toBe('pending');
    const res = await t.redeploy!(op, receipt);
    expect(res.method).toBe('redeploy');
    expect(res.detail).toMatch(new RegExp(`release v${receipt.releaseVersion} of ${APP} succeeded`));
    const rel = emu.releases(APP).find((r) => r.id === receipt.releaseId)!;
    expect(rel.status).toBe('succeeded');
    expect(rel.current).toBe(true);
    // The release snapshotted the environment when it started: the new key, neighbours unchanged.
    expect(rel.configVars).toStrictEqual({ ...others(), OPENAI_API_KEY: newKey });
  });

  it('redeploy after a crash (no receipt) finds the newest release with the Range header', async () => {
    const t = await makeTarget();
    await t.write(new Secret(newKey), op);
    const res = await t.redeploy!(op, undefined);
    expect(res.method).toBe('redeploy');
    const listCalls = emu.server.calls('GET', `/apps/${APP}/releases`);
    expect(listCalls.some((c) => c.headers.range === 'version ..; max=1, order=desc')).toBe(true);
  });

  it('redeploy looks at the newest release: a change released after keyrot\'s write is caught', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    // Someone releases another value right after keyrot: the dynos run that release, not keyrot's.
    const other = testKey();
    const ctl = await makeTarget();
    await ctl.write(new Secret(other), { rotationId: 'someone-else', fingerprint: new Secret(other).fingerprint });
    const err = await errorOf(t.redeploy!(op, receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).toContain(new Secret(other).fingerprint);
    expect(err.message).not.toContain(other);
  });

  it('a failed release fails the target; restore puts the old value back, watches that release, touches nothing else', async () => {
    const t = await makeTarget();
    emu.failNextRelease(APP);
    const receipt = await t.write(new Secret(newKey), op);
    const err = await errorOf(t.redeploy!(op, receipt));
    expect(err.kind).toBe('unavailable');
    expect(err.message).toMatch(/release v\d+ of app nomora-api failed/);
    expect(err.message).toMatch(/heroku releases:output v\d+ --app nomora-api/);
    // The dynos still run the release before keyrot's.
    expect(emu.releases(APP).find((r) => r.current)!.configVars.OPENAI_API_KEY).toBe(oldKey);

    await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
    expect(emu.getVars(APP)).toStrictEqual({ ...others(), OPENAI_API_KEY: oldKey });
    const restoreRelease = emu.releases(APP).at(-1)!;
    expect(restoreRelease.status).toBe('succeeded');
    expect(restoreRelease.current).toBe(true);
    expect(restoreRelease.configVars.OPENAI_API_KEY).toBe(oldKey);
    // Idempotent: a second restore changes nothing and creates no release.
    const count = emu.releases(APP).length;
    await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
    expect(emu.releases(APP)).toHaveLength(count);
    expect(emu.getVars(APP)).toStrictEqual({ ...others(), OPENAI_API_KEY: oldKey });
  });

  it('a failed restore release is reported', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    emu.failNextRelease(APP);
    const err = await errorOf(t.restore(new Secret(oldKey), op, receipt));
    expect(err.message).toMatch(/puts OPENAI_API_KEY back on app nomora-api failed/);
    expect(emu.getVars(APP).OPENAI_API_KEY).toBe(oldKey);
  });

  it('restore of a variable that did not exist deletes it with a null PATCH', async () => {
    emu.setVars(APP, { OPENAI_API_KEY: null });
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect(receipt.created).toBe(true);
    await restoreAndRedeploy(t, null, op, receipt);
    expect(emu.getVars(APP)).toStrictEqual(others());
    const last = emu.server.calls('PATCH', `/apps/${APP}/config-vars`).at(-1)!;
    expect(JSON.parse(last.rawBody)).toStrictEqual({ OPENAI_API_KEY: null });
    expect(emu.releases(APP).at(-1)!.description).toBe('Remove OPENAI_API_KEY config vars');
    await restoreAndRedeploy(t, null, op, receipt);
    expect(emu.server.calls('PATCH', `/apps/${APP}/config-vars`)).toHaveLength(2);
  });

  it('a release that stays pending past the timeout is a timeout error', async () => {
    await emu.stop();
    emu = new HerokuEmulator({ releaseMs: 3_600_000 });
    await emu.start();
    token = emu.addToken();
    emu.seedApp(APP, { OPENAI_API_KEY: oldKey });
    const t = await makeTarget({ clock: fakeClock(), timeout: '30s' });
    const receipt = await t.write(new Secret(newKey), op);
    const err = await errorOf(t.redeploy!(op, receipt));
    expect(err.kind).toBe('timeout');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/still pending after 30s/);
  });

  it('429 (RateLimit-Remaining: 0, no Retry-After) is retryable with a sensible delay, and withRetry gets through', async () => {
    const t = await makeTarget();
    emu.failNextWithRateLimit();
    const direct = await errorOf(t.read());
    expect(direct.kind).toBe('rate-limited');
    expect(direct.retryable).toBe(true);
    expect(direct.retryAfterMs).toBe(HEROKU_429_RETRY_MS);

    emu.failNextWithRateLimit(2);
    const clock = fakeClock();
    let attempts = 0;
    await withRetry(
      () => {
        attempts++;
        return t.write(new Secret(newKey), op);
      },
      { clock, random: () => 0 },
    );
    expect(attempts).toBe(3);
    expect(clock.slept).toEqual([HEROKU_429_RETRY_MS, HEROKU_429_RETRY_MS]);
    expect(emu.getVars(APP).OPENAI_API_KEY).toBe(newKey);
  });

  it('paces itself when RateLimit-Remaining runs low, and exposes the last value seen', async () => {
    const clock = { ...fakeClock(), now: () => Date.now() };
    const slept: number[] = [];
    clock.sleep = async (ms: number) => {
      slept.push(ms);
    };
    const t = await makeTarget({ clock });
    await t.read();
    expect(t.rateLimitRemaining).toBe(4499);
    expect(slept).toEqual([]);
    emu.setRateLimitRemaining(token, 6);
    await t.read(); // answers RateLimit-Remaining: 5, below the 20 kept in reserve
    expect(t.rateLimitRemaining).toBe(5);
    await t.read(); // paced: one request per refill interval (75 a minute: 800 ms)
    expect(slept).toEqual([800]);
    // An empty bucket answers the real 429 (with its header) until it refills.
    emu.setRateLimitRemaining(token, 0);
    const err = await errorOf(t.read());
    expect(err.kind).toBe('rate-limited');
  });

  it('a rejected token is an auth error in product words (preflight and write)', async () => {
    const t = await makeTarget({ env: { HEROKU_API_KEY: 'HRKU-00000000-0000-0000-0000-000000000000' } });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/^Heroku rejected the API token \(HEROKU_API_KEY\)/);
    expect(pf.reason).toMatch(/heroku authorizations:create/);
    expect(pf.reason).toContain('Invalid credentials provided.');
    expect(pf.reason).not.toContain('HRKU-00000000');
    const err = await errorOf(t.write(new Secret(newKey), op));
    expect(err.kind).toBe('auth');
    expect(err.retryable).toBe(false);
    expect(err.target).toBe('heroku-test');
  });

  it('a missing token names the variable to set', async () => {
    const t = await makeTarget({ env: {} });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/HEROKU_API_KEY/);
    expect(pf.reason).toMatch(/heroku authorizations:create/);
  });

  it('a token without the protected scopes is a permission error that names them', async () => {
    const readOnly = emu.addToken({ scopes: ['read', 'write'] });
    const t = await makeTarget({ env: { HEROKU_API_KEY: readOnly } });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/read-protected and write-protected scopes/);
    expect(pf.reason).toContain('The scope of this OAuth authorization does not allow access to this resource.');
    const err = await errorOf(t.write(new Secret(newKey), op));
    expect(err.kind).toBe('permission');
  });

  it('a variable name Heroku cannot hold is refused before any call', async () => {
    const t = await makeTarget({ varName: 'OPENAI-API-KEY' });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/only letters, digits and underscores, not "OPENAI-API-KEY"/);
    expect(emu.server.requests).toHaveLength(0);
  });

  it('an unknown app is not-found naming it', async () => {
    const t = await makeTarget({ app: 'no-such-app' });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/^Heroku app no-such-app not found/);
    expect(pf.reason).toMatch(/app:/);
  });

  it('the key never appears in an error, even when Heroku echoes it', async () => {
    const t = await makeTarget();
    emu.server.failNext({
      method: 'PATCH',
      status: 422,
      body: { id: 'invalid_params', message: `Config var value ${newKey} is not allowed` },
    });
    const err = await errorOf(t.write(new Secret(newKey), op));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/Heroku refused to change OPENAI_API_KEY on app nomora-api/);
    expect(err.message).not.toContain(newKey);
    expect(JSON.stringify(err)).not.toContain(newKey);
    emu.server.failNext({ status: 500, body: { id: 'internal', message: `boom ${oldKey}` } });
    const err2 = await errorOf(t.restore(new Secret(oldKey), op, undefined));
    expect(err2.retryable).toBe(true);
    expect(err2.message).not.toContain(oldKey);
  });
});

describe('heroku emulator fidelity', () => {
  let emu: HerokuEmulator;
  let token: string;
  beforeEach(async () => {
    emu = new HerokuEmulator();
    await emu.start();
    token = emu.addToken();
    emu.seedApp(APP, { A: '1' });
  });
  afterEach(async () => {
    await emu.stop();
  });

  it("a missing Accept header gets Heroku's real missing_version answer; a missing token its real 401", async () => {
    const noAccept = await fetch(`${emu.url}/apps/${APP}/config-vars`, { headers: { authorization: `Bearer ${token}` } });
    expect(noAccept.status).toBe(400);
    expect(await noAccept.json()).toMatchObject({ id: 'missing_version', error: expect.stringContaining('version=3') });
    const old = await fetch(`${emu.url}/apps/${APP}`, { headers: { accept: 'application/vnd.heroku+json; version=2', authorization: `Bearer ${token}` } });
    expect(old.status).toBe(410);
    const noAuth = await fetch(`${emu.url}/apps/${APP}`, { headers: { accept: 'application/vnd.heroku+json; version=3' } });
    expect(noAuth.status).toBe(401);
    expect(await noAuth.json()).toMatchObject({ id: 'unauthorized', message: expect.stringContaining('There were no credentials') });
    const ok = await fetch(`${emu.url}/apps/${APP}`, { headers: { accept: 'application/vnd.heroku+json; version=3', authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('ratelimit-remaining')).toMatch(/^\d+$/);
  });

  it('pages releases with Range / Next-Range (206), id order by default', async () => {
    const h = { accept: 'application/vnd.heroku+json; version=3', authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    for (let i = 0; i < 6; i++) {
      await fetch(`${emu.url}/apps/${APP}/config-vars`, { method: 'PATCH', headers: h, body: JSON.stringify({ A: String(i) }) });
    }
    const all = (await (await fetch(`${emu.url}/apps/${APP}/releases`, { headers: h })).json()) as Array<{ id: string; version: number }>;
    expect(all.map((r) => r.id)).toEqual([...all.map((r) => r.id)].sort());
    const first = await fetch(`${emu.url}/apps/${APP}/releases`, { headers: { ...h, range: 'version ..; max=3, order=desc' } });
    expect(first.status).toBe(206);
    expect(((await first.json()) as Array<{ version: number }>).map((r) => r.version)).toEqual([7, 6, 5]);
    const next = first.headers.get('next-range')!;
    expect(next).toBe('version ]5..; max=3, order=desc');
    const second = await fetch(`${emu.url}/apps/${APP}/releases`, { headers: { ...h, range: next } });
    expect(second.status).toBe(206);
    expect(((await second.json()) as Array<{ version: number }>).map((r) => r.version)).toEqual([4, 3, 2]);
    const third = await fetch(`${emu.url}/apps/${APP}/releases`, { headers: { ...h, range: second.headers.get('next-range')! } });
    expect(third.status).toBe(200);
    expect(((await third.json()) as Array<{ version: number }>).map((r) => r.version)).toEqual([1]);
    const bad = await fetch(`${emu.url}/apps/${APP}/releases`, { headers: { ...h, range: 'name ..' } });
    expect(bad.status).toBe(416);
  });
});

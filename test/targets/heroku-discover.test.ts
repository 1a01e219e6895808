import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HerokuEmulator } from '../../emulators/heroku/emulator.ts';
import { heroku } from '../../src/targets/heroku/index.ts';
import { discoverHeroku } from '../../src/targets/heroku/discover.ts';
import { Secret } from '../../src/core/secret.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { discoverContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { heldBy, readThroughInventory } from '../helpers/discovered.ts';

/** `discover` of Heroku: every app the token reads, its config vars, compared by fingerprint. */


/** The fingerprint each place holds (values are compared in memory, never printed). */
const held = (r: { places: Array<{ holds: { kind: string } & Partial<{ value: Secret }> }> }) => r.places.map((p) => p.holds.value?.fingerprint);

describe('heroku discover', () => {
  let emu: HerokuEmulator;
  let token: string;
  const key = testKey();
  const other = testKey();
  beforeEach(async () => {
    emu = new HerokuEmulator();
    await emu.start();
    token = emu.addToken({ scopes: ['read-protected', 'write-protected'] });
  });
  afterEach(() => emu.stop());

  it('reads every app’s config vars: places holding the key or another one, ready targets.yaml entries; one request per app', async () => {
    emu.seedApp('api-prod', { OPENAI_API_KEY: key, DATABASE_URL: 'postgres://x' });
    emu.seedApp('api-staging', { OPENAI_API_KEY: other });
    emu.seedApp('worker', { OPENAI_KEY: key });
    emu.seedApp('docs', { SOMETHING_ELSE: 'x' });
    emu.seedApp('empty', { OPENAI_API_KEY: '' });
    const r = await heroku.discover!(discoverContext({ HEROKU_API_KEY: token }, [{ endpoint: emu.url }]));
    const byApp = Object.fromEntries(r.places.map((p, i) => [p.location, { target: p.target, fp: held(r)[i] }]));
    expect(byApp).toEqual({
      'heroku app api-prod OPENAI_API_KEY': { target: { type: 'heroku', app: 'api-prod', endpoint: emu.url }, fp: new Secret(key).fingerprint },
      'heroku app api-staging OPENAI_API_KEY': { target: { type: 'heroku', app: 'api-staging', endpoint: emu.url }, fp: new Secret(other).fingerprint },
      'heroku app worker OPENAI_KEY': { target: { type: 'heroku', app: 'worker', var: 'OPENAI_KEY', endpoint: emu.url }, fp: new Secret(key).fingerprint },
    });
    // `count` is what was searched (as the scope says), not what was found.
    expect(r.scope).toBe('5 Heroku apps of HEROKU_API_KEY');
    expect(r.count).toBe(5);
    // One list page, one config-vars read per app; read-only.
    expect(emu.server.calls('GET', '/apps')).toHaveLength(1);
    expect(emu.server.calls('GET', /^\/apps\/[^/]+\/config-vars$/)).toHaveLength(5);
    expect(emu.server.requests.every((q) => q.method === 'GET')).toBe(true);
    expect(emu.server.requests[0]!.headers.range).toBe('id ..; max=1000');
    // Values are compared by fingerprint: none is in a location, an entry or a reason.
    const said = JSON.stringify(r.places.map((p) => [p.location, p.target, p.holds.kind === 'unreadable' ? p.holds.reason : '', r.scope]));
    expect([key, other].filter((k) => said.includes(k))).toEqual([]);
    // Loaded as an inventory and read through its target, each entry reaches what discovery said it holds.
    expect(await readThroughInventory(r.places, { HEROKU_API_KEY: token })).toEqual(r.places.map((p) => heldBy(p.holds)));
  });

  it('follows Next-Range past the first page, names the token, and stops at its bound saying so', async () => {
    for (let i = 0; i < 4; i++) emu.seedApp(`app-${i}`, { OTHER: 'x' });
    emu.seedApp('far', { OPENAI_API_KEY: key });
    const given = parseCredentialRef('env:HK_TOKEN')!;
    const ctx = discoverContext({ HK_TOKEN: token }, [{ endpoint: emu.url, token: given }]);
    const all = await discoverHeroku(ctx, { pageSize: 2, maxApps: 100 });
    expect(all.places.map((p) => p.target)).toEqual([{ type: 'heroku', app: 'far', endpoint: emu.url, token: 'env:HK_TOKEN' }]);
    expect(all.scope).toBe('5 Heroku apps of HK_TOKEN');
    // 2 + 2 + 1: two 206 answers with Next-Range, then a complete 200.
    expect(emu.server.calls('GET', '/apps').map((q) => q.status)).toEqual([206, 206, 200]);

    emu.server.requests.length = 0;
    const bounded = await discoverHeroku(ctx, { pageSize: 2, maxApps: 3 });
    expect(bounded.scope).toBe('3 Heroku apps of HK_TOKEN (stopped at the first 3: the token reaches more)');
    expect(emu.server.calls('GET', /config-vars$/)).toHaveLength(3);
  });

  it('searches with each token the inventory uses, once each', async () => {
    emu.seedApp('team-a-app', { OPENAI_API_KEY: key });
    emu.seedApp('team-b-app', { OPENAI_API_KEY: other });
    const a = emu.addToken({ scopes: ['read-protected'], apps: ['team-a-app'] });
    const b = emu.addToken({ scopes: ['read-protected'], apps: ['team-b-app'] });
    const tokenA = parseCredentialRef('env:HEROKU_A')!;
    const tokenB = parseCredentialRef('env:HEROKU_B')!;
    const configs = [{ endpoint: emu.url, token: tokenA }, { endpoint: emu.url, token: tokenB }, { endpoint: emu.url, token: tokenA }];
    const r = await heroku.discover!(discoverContext({ HEROKU_A: a, HEROKU_B: b }, configs));
    expect(r.places.map((p) => p.target)).toEqual([
      { type: 'heroku', app: 'team-a-app', endpoint: emu.url, token: 'env:HEROKU_A' },
      { type: 'heroku', app: 'team-b-app', endpoint: emu.url, token: 'env:HEROKU_B' },
    ]);
    expect(r.scope).toBe('1 Heroku app of HEROKU_A; 1 Heroku app of HEROKU_B');
    expect(emu.server.calls('GET', '/apps')).toHaveLength(2);
  });

  it('passes over apps whose config vars are refused, and retries a 429 paced like a rotation', async () => {
    emu.seedApp('mine', { OPENAI_API_KEY: key });
    emu.seedApp('theirs', { OPENAI_API_KEY: other });
    // A team member with the `view` permission on `theirs`: listed, its config vars refused.
    const limited = emu.addToken({ scopes: ['read-protected'], viewOnly: ['theirs'] });
    emu.failNextWithRateLimit();
    const r = await heroku.discover!(discoverContext({ HEROKU_API_KEY: limited }, [{ endpoint: emu.url }]));
    expect(r.places.map((p) => p.location)).toEqual(['heroku app mine OPENAI_API_KEY']);
    expect(r.scope).toBe('2 Heroku apps of HEROKU_API_KEY (config vars of 1 refused (403))');
    // The 429 (no Retry-After) was waited out on the fake clock and the list asked again.
    const seen = emu.server.requests.map((q) => `${q.status} ${q.path}`);
    expect(seen.slice(0, 2)).toEqual(['429 /apps', '200 /apps']);
    // Apps come in id order (random ids here).
    expect(seen.slice(2).sort()).toEqual(['200 /apps/mine/config-vars', '403 /apps/theirs/config-vars']);
  });

  it('a refused, missing or under-scoped token is an auth error that says what to do', async () => {
    emu.seedApp('api-prod', { OPENAI_API_KEY: key });
    const refused = await targetErrorOf(heroku.discover!(discoverContext({ HEROKU_API_KEY: 'HRKU-not-a-token' }, [{ endpoint: emu.url }])));
    expect(refused.kind).toBe('auth');
    expect(refused.message).toMatch(/Heroku rejected the API token \(HEROKU_API_KEY\).*heroku authorizations:create/);

    const missing = await targetErrorOf(heroku.discover!(discoverContext({}, [{ endpoint: emu.url }])));
    expect(missing.kind).toBe('auth');
    expect(missing.message).toContain('HEROKU_API_KEY');

    // `read` lists apps but does not reach config vars: every app refused is the token's fault.
    const readOnly = emu.addToken({ scopes: ['read'] });
    const scoped = await targetErrorOf(heroku.discover!(discoverContext({ HEROKU_API_KEY: readOnly }, [{ endpoint: emu.url }])));
    expect(scoped.kind).toBe('auth');
    expect(scoped.message).toContain('read-protected');
  });
  it('stops at once when its signal is aborted (plan’s bounded discovery pass)', async () => {
    for (let i = 0; i < 3; i++) emu.seedApp(`app-${i}`, { OPENAI_API_KEY: key });
    const stop = new AbortController();
    // Aborted as the first per-item read reaches the provider: nothing is asked after it.
    emu.server.failNext({ when: (q) => /config-vars$/.test(q.path) && (stop.abort(), false) });
    const ctx = { ...discoverContext({ HEROKU_API_KEY: token }, [{ endpoint: emu.url }]), signal: stop.signal };
    await expect(heroku.discover!(ctx)).rejects.toThrow();
    expect(emu.server.requests.filter((q) => /config-vars$/.test(q.path))).toHaveLength(1);
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RailwayEmulator } from '../../emulators/railway/server.ts';
import { railway } from '../../src/targets/railway/index.ts';
import { discoverRailway } from '../../src/targets/railway/discover.ts';
import { Secret } from '../../src/core/secret.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { discoverContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { heldBy, readThroughInventory } from '../helpers/discovered.ts';

/** `discover` of Railway: every project/environment/service the token reaches, sealed values unreadable. */


const fp = (k: string) => new Secret(k).fingerprint;
const graphqlCalls = (emu: RailwayEmulator) => emu.server.calls('POST', '/graphql/v2').map((q) => (JSON.parse(q.rawBody) as { query: string }).query.match(/^(query|mutation) (\w+)/)![2]);

describe('railway discover', () => {
  let emu: RailwayEmulator;
  const token = 'railway-account-token';
  const key = testKey();
  const other = testKey();
  beforeEach(async () => {
    emu = await RailwayEmulator.start();
    emu.addAccountToken(token);
  });
  afterEach(() => emu.stop());

  it('reads every service of every environment of every project: ready entries, values by fingerprint, sealed unreadable', async () => {
    const shop = emu.seedProject({
      name: 'shop',
      environments: [{ name: 'production' }, { name: 'staging' }],
      services: [{ name: 'api' }, { name: 'worker' }],
      variables: { production: { api: { OPENAI_API_KEY: key }, worker: { OPENAI_KEY: { value: key, sealed: true } }, '': { OPENAI_API_KEY: key } }, staging: { api: { OPENAI_API_KEY: other } } },
    });
    emu.seedProject({ name: 'docs', environments: [{ name: 'production' }], services: [{ name: 'web' }], variables: { production: { web: { OTHER: 'x' } } } });
    const r = await railway.discover!(discoverContext({ RAILWAY_API_TOKEN: token }, [{ endpoint: emu.graphqlUrl }]));
    const ids = (env: string, svc: string) => ({ type: 'railway', project: shop.id, environment: shop.environments[env], service: shop.services[svc], endpoint: emu.graphqlUrl });
    expect(r.places.map((p) => [p.location, p.target, p.holds.kind === 'value' ? p.holds.value.fingerprint : p.holds.kind])).toEqual([
      ['railway shop/production/api OPENAI_API_KEY', ids('production', 'api'), fp(key)],
      ['railway shop/production/worker OPENAI_KEY', { ...ids('production', 'worker'), var: 'OPENAI_KEY' }, 'unreadable'],
      ['railway shop/staging/api OPENAI_API_KEY', ids('staging', 'api'), fp(other)],
    ]);
    expect(r.places[1]!.holds).toEqual({ kind: 'unreadable', reason: 'OPENAI_KEY of Railway service worker (production) is sealed: Railway never returns its value' });
    // `count` is what was searched (as the scope says), not what was found.
    expect(r.scope).toBe('2 Railway projects of RAILWAY_API_TOKEN');
    expect(r.count).toBe(2);
    // One projects page (environments and services come with it), one variables read per service and environment.
    expect(graphqlCalls(emu)).toEqual(['KeyrotProjects', ...Array(5).fill('KeyrotVariables')]);
    // Values are compared by fingerprint: none is in a location, an entry or a reason.
    const said = JSON.stringify(r.places.map((p) => [p.location, p.target, p.holds.kind === 'unreadable' ? p.holds.reason : '', r.scope]));
    expect([key, other].filter((k) => said.includes(k))).toEqual([]);
    // Loaded as an inventory and read through its target, each entry reaches what discovery said it holds.
    expect(await readThroughInventory(r.places, { RAILWAY_API_TOKEN: token })).toEqual(r.places.map((p) => heldBy(p.holds)));
  });

  it('follows the projects connection past its first page and stops at its bounds saying so', async () => {
    for (let i = 0; i < 4; i++) emu.seedProject({ name: `p-${i}`, environments: [{ name: 'production' }], services: [{ name: 'svc' }] });
    const last = emu.seedProject({ name: 'last', environments: [{ name: 'production' }], services: [{ name: 'svc' }], variables: { production: { svc: { OPENAI_API_KEY: key } } } });
    const ctx = discoverContext({ RW: token }, [{ endpoint: emu.graphqlUrl, token: parseCredentialRef('env:RW')! }]);
    const all = await discoverRailway(ctx, { pageSize: 2, maxProjects: 100, maxInstances: 100 });
    expect(all.places.map((p) => p.target)).toEqual([{ type: 'railway', project: last.id, environment: last.environments.production, service: last.services.svc, endpoint: emu.graphqlUrl, token: 'env:RW' }]);
    expect(graphqlCalls(emu).filter((q) => q === 'KeyrotProjects')).toHaveLength(3);

    emu.server.requests.length = 0;
    const few = await discoverRailway(ctx, { pageSize: 2, maxProjects: 3, maxInstances: 100 });
    expect(few.scope).toBe('3 Railway projects of RW (stopped at the first 3 projects: the token reaches more)');
    emu.server.requests.length = 0;
    const reads = await discoverRailway(ctx, { pageSize: 50, maxProjects: 100, maxInstances: 2 });
    expect(reads.scope).toBe('5 Railway projects of RW (stopped at 2 services: the token reaches more)');
    expect(graphqlCalls(emu)).toEqual(['KeyrotProjects', 'KeyrotVariables', 'KeyrotVariables']);
  });

  it('a project token searches the one environment it is bound to', async () => {
    const p = emu.seedProject({
      name: 'shop',
      environments: [{ name: 'production' }, { name: 'staging' }],
      services: [{ name: 'api' }],
      variables: { production: { api: { OPENAI_API_KEY: key } }, staging: { api: { OPENAI_API_KEY: other } } },
    });
    emu.addProjectToken('railway-project-token', p.id, p.environments.staging!);
    const r = await railway.discover!(discoverContext({ RAILWAY_TOKEN: 'railway-project-token' }, [{ endpoint: emu.graphqlUrl }]));
    expect(r.places.map((x) => x.location)).toEqual(['railway shop/staging/api OPENAI_API_KEY']);
    expect(graphqlCalls(emu)).toEqual(['KeyrotProjectToken', 'KeyrotProject', 'KeyrotVariables']);
  });

  it('a refused or missing token is an auth error; a 429 with Retry-After is waited out', async () => {
    emu.seedProject({ name: 'shop', environments: [{ name: 'production' }], services: [{ name: 'api' }], variables: { production: { api: { OPENAI_API_KEY: key } } } });
    const refused = await targetErrorOf(railway.discover!(discoverContext({ RAILWAY_API_TOKEN: 'revoked' }, [{ endpoint: emu.graphqlUrl }])));
    expect(refused.kind).toBe('auth');
    expect(refused.message).toContain('Railway rejected the token from env:RAILWAY_API_TOKEN');
    const missing = await targetErrorOf(railway.discover!(discoverContext({}, [{ endpoint: emu.graphqlUrl }])));
    expect(missing.kind).toBe('auth');
    expect(missing.message).toContain('RAILWAY_API_TOKEN');

    emu.server.requests.length = 0;
    emu.server.failNext({ status: 429, headers: { 'retry-after': '3' }, body: { errors: [{ message: 'Too many requests. Try again later.' }], data: null } });
    const ctx = discoverContext({ RAILWAY_API_TOKEN: token }, [{ endpoint: emu.graphqlUrl }]);
    const r = await railway.discover!(ctx);
    expect(r.places).toHaveLength(1);
    expect(emu.server.requests.map((q) => q.status)).toEqual([429, 200, 200]);
    expect(ctx.clock.slept).toContain(3000);
  });
  it('stops at once when its signal is aborted (plan’s bounded discovery pass)', async () => {
    for (let i = 0; i < 3; i++) emu.seedProject({ name: `p-${i}`, environments: [{ name: 'production' }], services: [{ name: 'svc' }], variables: { production: { svc: { OPENAI_API_KEY: key } } } });
    const stop = new AbortController();
    // Aborted as the first per-item read reaches the provider: nothing is asked after it.
    emu.server.failNext({ when: (q) => /KeyrotVariables/.test(q.rawBody) && (stop.abort(), false) });
    const ctx = { ...discoverContext({ RAILWAY_API_TOKEN: token }, [{ endpoint: emu.graphqlUrl }]), signal: stop.signal };
    await expect(railway.discover!(ctx)).rejects.toThrow();
    expect(emu.server.requests.filter((q) => /KeyrotVariables/.test(q.rawBody))).toHaveLength(1);
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NetlifyEmulator } from '../../emulators/netlify/emulator.ts';
import { netlify } from '../../src/targets/netlify/index.ts';
import { discoverNetlify } from '../../src/targets/netlify/discover.ts';
import { Secret } from '../../src/core/secret.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { discoverContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { heldBy, readThroughInventory } from '../helpers/discovered.ts';

/** `discover` of Netlify: every site of the token's teams, one place per deploy-context value. */


const fp = (k: string) => new Secret(k).fingerprint;

describe('netlify discover', () => {
  let emu: NetlifyEmulator;
  let token: string;
  const key = testKey();
  const other = testKey();
  beforeEach(async () => {
    emu = new NetlifyEmulator();
    await emu.start();
    token = emu.addToken();
  });
  afterEach(() => emu.stop());

  it('lists each context’s value of every site, as `context:` would name it; secret values unreadable', async () => {
    const shop = emu.seedSite({ name: 'shop', account: 'acme', env: [{ key: 'OPENAI_API_KEY', values: [{ context: 'all', value: key }] }] });
    const blog = emu.seedSite({
      name: 'blog',
      account: 'acme',
      env: [{ key: 'OPENAI_API_KEY', values: [{ context: 'production', value: key }, { context: 'deploy-preview', value: other }, { context: 'branch', context_parameter: 'staging', value: other }] }],
    });
    const vault = emu.seedSite({ name: 'vault', account: 'side', env: [{ key: 'OPENAI_KEY', is_secret: true, values: [{ context: 'production', value: key }, { context: 'dev', value: other }] }] });
    emu.seedSite({ name: 'docs', account: 'side', env: [{ key: 'OTHER', values: [{ context: 'all', value: 'x' }] }] });
    const r = await netlify.discover!(discoverContext({ NETLIFY_AUTH_TOKEN: token }, [{ endpoint: emu.url }]));
    const e = { type: 'netlify', endpoint: emu.url };
    expect(r.places.map((p) => [p.location, p.target, p.holds.kind === 'value' ? p.holds.value.fingerprint : p.holds.kind])).toEqual([
      [`netlify shop (${shop.id}) OPENAI_API_KEY [all]`, { ...e, site: shop.id }, fp(key)],
      [`netlify blog (${blog.id}) OPENAI_API_KEY [production]`, { ...e, site: blog.id }, fp(key)],
      [`netlify blog (${blog.id}) OPENAI_API_KEY [deploy-preview]`, { ...e, site: blog.id, context: 'deploy-preview' }, fp(other)],
      [`netlify blog (${blog.id}) OPENAI_API_KEY [branch:staging]`, { ...e, site: blog.id, context: 'branch:staging' }, fp(other)],
      [`netlify vault (${vault.id}) OPENAI_KEY [production]`, { ...e, site: vault.id, var: 'OPENAI_KEY' }, 'unreadable'],
      [`netlify vault (${vault.id}) OPENAI_KEY [dev]`, { ...e, site: vault.id, context: 'dev', var: 'OPENAI_KEY' }, fp(other)],
    ]);
    expect(r.places[4]!.holds).toEqual({ kind: 'unreadable', reason: 'OPENAI_KEY [production] of Netlify site vault is a secret variable: Netlify returns its value only for the dev context' });
    // `count` is what was searched (as the scope says), not what was found.
    expect(r.scope).toBe('4 Netlify sites of NETLIFY_AUTH_TOKEN');
    expect(r.count).toBe(4);
    // One page of sites, one env list per site, each through its own team; read-only.
    expect(emu.server.calls('GET', '/api/v1/sites')).toHaveLength(1);
    expect(emu.server.calls('GET', '/api/v1/accounts/acme/env').map((q) => q.query)).toEqual([`?site_id=${shop.id}`, `?site_id=${blog.id}`]);
    expect(emu.server.calls('GET', '/api/v1/accounts/side/env')).toHaveLength(2);
    expect(emu.server.requests.every((q) => q.method === 'GET')).toBe(true);
    // Values are compared by fingerprint: none is in a location, an entry or a reason.
    const said = JSON.stringify(r.places.map((p) => [p.location, p.target, p.holds.kind === 'unreadable' ? p.holds.reason : '', r.scope]));
    expect([key, other].filter((k) => said.includes(k))).toEqual([]);
    // Loaded as an inventory and read through its target, each entry reaches what discovery said it holds.
    expect(await readThroughInventory(r.places, { NETLIFY_AUTH_TOKEN: token })).toEqual(r.places.map((p) => heldBy(p.holds)));
  });

  it('pages through the sites and stops at its bound saying so', async () => {
    for (let i = 0; i < 4; i++) emu.seedSite({ name: `s-${i}`, account: 'acme' });
    const last = emu.seedSite({ name: 'last', account: 'acme', env: [{ key: 'OPENAI_API_KEY', values: [{ context: 'all', value: key }] }] });
    const ctx = discoverContext({ NT: token }, [{ endpoint: emu.url, token: parseCredentialRef('env:NT')! }]);
    const all = await discoverNetlify(ctx, { pageSize: 2, maxSites: 100 });
    expect(all.places.map((p) => p.target)).toEqual([{ type: 'netlify', site: last.id, endpoint: emu.url, token: 'env:NT' }]);
    expect(emu.server.calls('GET', '/api/v1/sites').map((q) => new URLSearchParams(q.query).get('page'))).toEqual(['1', '2', '3']);

    emu.server.requests.length = 0;
    const bounded = await discoverNetlify(ctx, { pageSize: 2, maxSites: 3 });
    expect(bounded.scope).toBe('3 Netlify sites of NT (stopped at the first 3: there are more)');
    expect(emu.server.calls('GET', /\/env$/)).toHaveLength(3);
  });

  it('a refused or missing token is an auth error; a 429 is waited out', async () => {
    emu.seedSite({ name: 'shop', account: 'acme', env: [{ key: 'OPENAI_API_KEY', values: [{ context: 'all', value: key }] }] });
    const refused = await targetErrorOf(netlify.discover!(discoverContext({ NETLIFY_AUTH_TOKEN: 'nfp_revoked' }, [{ endpoint: emu.url }])));
    expect(refused.kind).toBe('auth');
    expect(refused.message).toMatch(/Netlify rejected the access token \(NETLIFY_AUTH_TOKEN\): create a personal access token/);
    const missing = await targetErrorOf(netlify.discover!(discoverContext({}, [{ endpoint: emu.url }])));
    expect(missing.kind).toBe('auth');
    expect(missing.message).toContain('NETLIFY_AUTH_TOKEN');

    emu.server.requests.length = 0;
    emu.failNextWithRateLimit();
    const r = await netlify.discover!(discoverContext({ NETLIFY_AUTH_TOKEN: token }, [{ endpoint: emu.url }]));
    expect(r.places).toHaveLength(1);
    expect(emu.server.requests.map((q) => q.status)).toEqual([429, 200, 200]);
  });
  it('stops at once when its signal is aborted (plan’s bounded discovery pass)', async () => {
    for (let i = 0; i < 3; i++) emu.seedSite({ name: `s-${i}`, account: 'acme', env: [{ key: 'OPENAI_API_KEY', values: [{ context: 'all', value: key }] }] });
    const stop = new AbortController();
    // Aborted as the first per-item read reaches the provider: nothing is asked after it.
    emu.server.failNext({ when: (q) => /\/env$/.test(q.path) && (stop.abort(), false) });
    const ctx = { ...discoverContext({ NETLIFY_AUTH_TOKEN: token }, [{ endpoint: emu.url }]), signal: stop.signal };
    await expect(netlify.discover!(ctx)).rejects.toThrow();
    expect(emu.server.requests.filter((q) => /\/env$/.test(q.path))).toHaveLength(1);
  });
});

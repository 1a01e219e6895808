import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VercelEmulator } from '../../emulators/vercel/server.ts';
import { vercel } from '../../src/targets/vercel/index.ts';
import { discoverVercel } from '../../src/targets/vercel/discover.ts';
import { Secret } from '../../src/core/secret.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { discoverContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { heldBy, readThroughInventory } from '../helpers/discovered.ts';

/** `discover` of Vercel: every project of the team, one place per entry, sensitive ones unreadable. */


const TEAM = { id: 'team_acme', slug: 'acme' };

describe('vercel discover', () => {
  let emu: VercelEmulator;
  const token = 'vercel-test-token';
  const key = testKey();
  const other = testKey();
  beforeEach(async () => {
    emu = await VercelEmulator.start();
    emu.addToken(token, [TEAM.id]);
  });
  afterEach(() => emu.stop());

  it('finds every entry of the team’s projects: its environments as targets:, values by fingerprint, sensitive ones unreadable', async () => {
    emu.seedProject({ name: 'web', team: TEAM, envs: [{ key: 'OPENAI_API_KEY', value: key, target: ['production'] }, { key: 'OPENAI_API_KEY', value: other, target: ['preview', 'development'] }] });
    emu.seedProject({ name: 'api', team: TEAM, envs: [{ key: 'OPENAI_KEY', value: key, type: 'sensitive', target: ['production', 'preview'] }] });
    emu.seedProject({ name: 'docs', team: TEAM, envs: [{ key: 'SOMETHING', value: 'x' }, { key: 'OPENAI_API_KEY', value: key, gitBranch: 'feature-x', target: ['preview'] }] });
    emu.seedProject({ name: 'personal', envs: [{ key: 'OPENAI_API_KEY', value: key }] });
    const r = await vercel.discover!(discoverContext({ VERCEL_TOKEN: token }, [{ endpoint: emu.url, team: 'team_acme', project: 'web' }]));
    const common = { type: 'vercel', team: 'team_acme', endpoint: emu.url };
    expect(r.places.map((p) => [p.location, p.target])).toEqual([
      ['vercel team_acme/api OPENAI_KEY (production, preview)', { ...common, project: 'api', targets: ['production', 'preview'], var: 'OPENAI_KEY' }],
      // Vercel lists a project's entries newest first.
      ['vercel team_acme/web OPENAI_API_KEY (preview, development)', { ...common, project: 'web', targets: ['preview', 'development'] }],
      ['vercel team_acme/web OPENAI_API_KEY (production)', { ...common, project: 'web' }],
    ]);
    expect(r.places[0]!.holds).toEqual({ kind: 'unreadable', reason: 'OPENAI_KEY of Vercel project api is a sensitive variable: Vercel never returns its value' });
    expect(r.places.slice(1).map((p) => (p.holds.kind === 'value' ? p.holds.value.fingerprint : p.holds.kind))).toEqual([new Secret(other).fingerprint, new Secret(key).fingerprint]);
    // `count` is what was searched (as the scope says), not what was found.
    expect(r.scope).toBe('3 Vercel projects of team team_acme (1 branch-specific or custom-environment entry not listed)');
    expect(r.count).toBe(3);
    // One project page, one env list per project, one decrypted read per readable entry (none for the sensitive one).
    expect(emu.server.calls('GET', '/v10/projects')).toHaveLength(1);
    expect(emu.server.calls('GET', /^\/v10\/projects\/[^/]+\/env$/)).toHaveLength(3);
    expect(emu.server.calls('GET', /^\/v1\/projects\//)).toHaveLength(2);
    expect(emu.server.requests.every((q) => q.method === 'GET' && q.query.includes('teamId=team_acme'))).toBe(true);
    // Values are compared by fingerprint: none is in a location, an entry or a reason.
    const said = JSON.stringify(r.places.map((p) => [p.location, p.target, p.holds.kind === 'unreadable' ? p.holds.reason : '', r.scope]));
    expect([key, other].filter((k) => said.includes(k))).toEqual([]);
    // Loaded as an inventory and read through its target, each entry reaches what discovery said it holds.
    expect(await readThroughInventory(r.places, { VERCEL_TOKEN: token })).toEqual(r.places.map((p) => heldBy(p.holds)));
  });

  it('follows pagination.next past the first page and stops at its bound saying so', async () => {
    for (let i = 0; i < 4; i++) emu.seedProject({ name: `p-${i}`, envs: [{ key: 'OTHER', value: 'x' }] });
    emu.seedProject({ name: 'oldest-last', envs: [] });
    emu.seedProject({ name: 'newest', envs: [{ key: 'OPENAI_API_KEY', value: key }] });
    const ctx = discoverContext({ VT: token }, [{ endpoint: emu.url, token: parseCredentialRef('env:VT')! }]);
    const all = await discoverVercel(ctx, { pageSize: 2, maxProjects: 100 });
    expect(all.scope).toBe('6 Vercel projects of the personal account');
    expect(all.places.map((p) => p.target)).toEqual([{ type: 'vercel', project: 'newest', targets: ['production', 'preview', 'development'], endpoint: emu.url, token: 'env:VT' }]);
    const pages = emu.server.calls('GET', '/v10/projects').map((q) => new URLSearchParams(q.query).get('from'));
    expect(pages).toHaveLength(3);
    expect(pages[0]).toBeNull();

    emu.server.requests.length = 0;
    const bounded = await discoverVercel(ctx, { pageSize: 2, maxProjects: 3 });
    expect(bounded.scope).toBe('3 Vercel projects of the personal account (stopped at the first 3: there are more)');
    expect(emu.server.calls('GET', /\/env$/)).toHaveLength(3);
  });

  it('a refused token, a team the token is not in, or no token at all: an auth error saying what to do', async () => {
    emu.seedProject({ name: 'web', team: TEAM, envs: [{ key: 'OPENAI_API_KEY', value: key }] });
    const refused = await targetErrorOf(vercel.discover!(discoverContext({ VERCEL_TOKEN: 'revoked' }, [{ endpoint: emu.url }])));
    expect(refused.kind).toBe('auth');
    expect(refused.message).toContain('Vercel rejected the token from env:VERCEL_TOKEN');

    const outsider = await targetErrorOf(vercel.discover!(discoverContext({ VERCEL_TOKEN: token }, [{ endpoint: emu.url, team: 'other-team' }])));
    expect(outsider.kind).toBe('auth');
    expect(outsider.message).toContain('team other-team');

    const missing = await targetErrorOf(vercel.discover!(discoverContext({}, [{ endpoint: emu.url }])));
    expect(missing.kind).toBe('auth');
    expect(missing.message).toContain('VERCEL_TOKEN');
  });

  it('waits out a 429 with Vercel’s reset header and carries on', async () => {
    emu.seedProject({ name: 'web', envs: [{ key: 'OPENAI_API_KEY', value: key }] });
    emu.rateLimitNext({ path: '/v10/projects', resetInSec: 2 });
    // The reset is an epoch time: the fake clock starts now.
    const ctx = discoverContext({ VERCEL_TOKEN: token }, [{ endpoint: emu.url }]);
    const r = await vercel.discover!(ctx);
    expect(Math.max(...ctx.clock.slept)).toBeGreaterThanOrEqual(1000);
    expect(r.places.map((p) => p.location)).toEqual(['vercel web OPENAI_API_KEY (production, preview, development)']);
    expect(emu.server.requests.filter((q) => q.path === '/v10/projects').map((q) => q.status)).toEqual([429, 200]);
  });
  it('stops at once when its signal is aborted (plan’s bounded discovery pass)', async () => {
    for (let i = 0; i < 3; i++) emu.seedProject({ name: `p-${i}`, envs: [{ key: 'OPENAI_API_KEY', value: key }] });
    const stop = new AbortController();
    // Aborted as the first per-item read reaches the provider: nothing is asked after it.
    emu.server.failNext({ when: (q) => /\/env$/.test(q.path) && (stop.abort(), false) });
    const ctx = { ...discoverContext({ VERCEL_TOKEN: token }, [{ endpoint: emu.url }]), signal: stop.signal };
    await expect(vercel.discover!(ctx)).rejects.toThrow();
    expect(emu.server.requests.filter((q) => /\/env$/.test(q.path))).toHaveLength(1);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { GitHubEmulator } from '../../emulators/github-actions/emulator.ts';
import { CloudflareEmulator } from '../../emulators/cloudflare-workers/emulator.ts';
import { githubActions } from '../../src/targets/github-actions/index.ts';
import { cloudflareWorkers } from '../../src/targets/cloudflare-workers/index.ts';
import { MAX_REPOS } from '../../src/targets/github-actions/discover.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import type { DiscoverContext } from '../../src/targets/types.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';

/** `discover` of the CI and edge targets: every place the credentials reach holding one of the variables. */

function discoverContext(env: NodeJS.ProcessEnv, configs: DiscoverContext['configs'], varNames = ['OPENAI_API_KEY', 'OPENAI_KEY']): DiscoverContext {
  return { ...testContext({ env, name: 'discover' }), clock: fakeClock(), varNames, configs };
}

const stop: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(stop.splice(0).map((s) => s()));
});

describe('github-actions discover', () => {
  async function github() {
    const emu = new GitHubEmulator();
    await emu.start();
    stop.push(() => emu.stop());
    return emu;
  }

  it('finds repository, environment, Dependabot and organisation secrets by name, with ready targets.yaml entries; values unreadable', async () => {
    const emu = await github();
    const token = emu.addToken({ permissions: { secrets: 'read', environments: 'read', dependabot_secrets: 'read', actions: 'read', organization_secrets: 'read' } });
    emu.seedRepo('acme/api', { environments: ['production', 'staging'] });
    emu.seedRepo('acme/web');
    emu.seedRepo('acme/docs');
    emu.seedOrg('acme');
    emu.setSecret({ repo: 'acme/api' }, 'OPENAI_API_KEY', testKey());
    emu.setSecret({ repo: 'acme/api', environment: 'production' }, 'OPENAI_API_KEY', testKey());
    emu.setSecret({ repo: 'acme/api', dependabot: true }, 'OPENAI_API_KEY', testKey());
    emu.setSecret({ repo: 'acme/web' }, 'OPENAI_KEY', testKey());
    emu.setSecret({ repo: 'acme/docs' }, 'SOMETHING_ELSE', 'x');
    emu.setSecret({ org: 'acme' }, 'OPENAI_API_KEY', testKey(), { visibility: 'all' });
    const r = await githubActions.discover!(discoverContext({ GH_TOKEN: token }, [{ endpoint: emu.url }]));
    const entries = r.places.map((p) => p.target);
    const common = { type: 'github-actions', endpoint: emu.url };
    expect(entries).toEqual([
      { ...common, repo: 'acme/api' },
      // Dependabot lists need the Dependabot secrets permission: this token has only read, which suffices.
      { ...common, repo: 'acme/api', dependabot: true },
      { ...common, repo: 'acme/api', environment: 'production' },
      { ...common, repo: 'acme/web', var: 'OPENAI_KEY' },
      { ...common, org: 'acme' },
    ]);
    expect(r.places.map((p) => p.location)).toEqual(['acme/api', 'acme/api (dependabot)', 'acme/api env production', 'acme/web', 'org acme']);
    expect(r.places.every((p) => p.holds.kind === 'unreadable')).toBe(true);
    expect(r.scope).toBe('3 GitHub repositories and 1 organisation of env:GH_TOKEN');
    expect(r.count).toBe(3 * 2 + 2 + 2);
    // Read-only: nothing but GETs.
    expect(emu.server.requests.every((q) => q.method === 'GET')).toBe(true);
  });

  it('passes over stores the token may not read; an installation token lists its installation’s repositories; inventory orgs are searched', async () => {
    const emu = await github();
    emu.seedRepo('acme/api', { environments: ['production'] });
    emu.seedOrg('acme');
    emu.setSecret({ repo: 'acme/api' }, 'OPENAI_API_KEY', testKey());
    emu.setSecret({ repo: 'acme/api', environment: 'production' }, 'OPENAI_API_KEY', testKey());
    emu.setSecret({ org: 'acme' }, 'OPENAI_API_KEY', testKey());
    const token = emu.addToken({ kind: 'installation', permissions: { secrets: 'read', organization_secrets: 'read' } });
    const token2 = parseCredentialRef('env:CI_TOKEN')!;
    const r = await githubActions.discover!(discoverContext({ CI_TOKEN: token }, [{ endpoint: emu.url, token: token2, org: 'acme' }]));
    expect(r.places.map((p) => p.target)).toEqual([
      { type: 'github-actions', endpoint: emu.url, token: 'env:CI_TOKEN', repo: 'acme/api' },
      { type: 'github-actions', endpoint: emu.url, token: 'env:CI_TOKEN', org: 'acme' },
    ]);
    expect(emu.server.calls('GET', '/installation/repositories')).toHaveLength(1);
    // No Environments or Actions permission: the environment is not listed (403), not an error.
    expect(emu.server.requests.filter((q) => q.status === 403).map((q) => q.path)).toContain('/repos/acme/api/environments');
  });

  it(`walks the token’s repositories page by page, up to ${MAX_REPOS}, and says when it stopped early`, async () => {
    const emu = await github();
    const token = emu.addToken();
    for (let i = 0; i < MAX_REPOS + 5; i++) emu.seedRepo(`acme/r${String(i).padStart(3, '0')}`);
    emu.setSecret({ repo: 'acme/r150' }, 'OPENAI_API_KEY', testKey());
    const r = await githubActions.discover!(discoverContext({ GITHUB_TOKEN: token }, [{ endpoint: emu.url }]));
    expect(r.places.map((p) => p.location)).toEqual(['acme/r150']);
    expect(r.scope).toMatch(new RegExp(`^${MAX_REPOS} GitHub repositories \\(stopped at the first ${MAX_REPOS}: the token reaches more\\)`));
    expect(emu.server.calls('GET', '/user/repos').map((q) => new URLSearchParams(q.query).get('page'))).toEqual(['1', '2']);
  }, 60_000);

  it('missing or refused credentials are an `auth` error (the provider is skipped with the reason)', async () => {
    const emu = await github();
    const none = await targetErrorOf(githubActions.discover!(discoverContext({}, [{ endpoint: emu.url }])));
    expect(none.kind).toBe('auth');
    expect(none.message).toMatch(/credential env:GH_TOKEN is not set/);
    const refused = await targetErrorOf(githubActions.discover!(discoverContext({ GH_TOKEN: 'github_pat_revoked' }, [{ endpoint: emu.url }])));
    expect(refused.kind).toBe('auth');
    expect(refused.message).not.toContain('github_pat_revoked');
  });
});

describe('cloudflare-workers discover', () => {
  async function cloudflare() {
    const emu = new CloudflareEmulator();
    await emu.start();
    stop.push(() => emu.stop());
    return emu;
  }

  it('finds every Worker of the inventory’s accounts holding one of the variables, paced through a 429', async () => {
    const emu = await cloudflare();
    const token = emu.addToken();
    emu.seedWorker('acc1', 'api', { secrets: { OPENAI_API_KEY: testKey() } });
    emu.seedWorker('acc1', 'edge', { secrets: { OPENAI_KEY: testKey(), OTHER: 'x' } });
    emu.seedWorker('acc1', 'static', { vars: { OPENAI_API_KEY: 'not-a-secret' } });
    emu.seedWorker('acc2', 'elsewhere', { secrets: { OPENAI_API_KEY: testKey() } });
    emu.failNextWithRateLimit();
    const r = await cloudflareWorkers.discover!(discoverContext({ CLOUDFLARE_API_TOKEN: token }, [{ endpoint: emu.url, account: 'acc1' }]));
    expect(r.places.map((p) => p.target)).toEqual([
      { type: 'cloudflare-workers', account: 'acc1', script: 'api', endpoint: emu.url },
      { type: 'cloudflare-workers', account: 'acc1', script: 'edge', var: 'OPENAI_KEY', endpoint: emu.url },
    ]);
    expect(r.places.every((p) => p.holds.kind === 'unreadable')).toBe(true);
    expect([r.count, r.scope]).toEqual([3, '3 Workers of 1 Cloudflare account (env:CLOUDFLARE_API_TOKEN)']);
    expect(emu.server.requests.every((q) => q.method === 'GET')).toBe(true);
  });

  it('without an account in the inventory, searches every account the token lists', async () => {
    const emu = await cloudflare();
    const token = emu.addToken({ accounts: ['acc1', 'acc2'] });
    emu.seedWorker('acc1', 'api', { secrets: { OPENAI_API_KEY: testKey() } });
    emu.seedWorker('acc2', 'web', { secrets: { OPENAI_API_KEY: testKey() } });
    emu.seedWorker('acc3', 'hidden', { secrets: { OPENAI_API_KEY: testKey() } });
    const r = await cloudflareWorkers.discover!(discoverContext({ CLOUDFLARE_API_TOKEN: token }, [{ endpoint: emu.url }]));
    expect(r.places.map((p) => p.location)).toEqual(['acc1/api', 'acc2/web']);
  });

  it('missing or refused credentials are an `auth` error', async () => {
    const emu = await cloudflare();
    expect((await targetErrorOf(cloudflareWorkers.discover!(discoverContext({}, [{ endpoint: emu.url, account: 'acc1' }])))).kind).toBe('auth');
    expect((await targetErrorOf(cloudflareWorkers.discover!(discoverContext({ CLOUDFLARE_API_TOKEN: 'nope' }, [{ endpoint: emu.url, account: 'acc1' }])))).kind).toBe('auth');
  });
});

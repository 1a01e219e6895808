import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { azureKeyVault } from '../../src/targets/azure-key-vault/index.ts';
import type { DiscoverContext, DiscoveredPlace } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { expectEntryHolds, inventoryTakes } from '../helpers/discover.ts';
import { startKeyVault } from '../helpers/azure-key-vault-fixture.ts';

let kv: Awaited<ReturnType<typeof startKeyVault>>;
const TOKEN = { kind: 'env' as const, name: 'AKV_TOKEN', raw: 'env:AKV_TOKEN' };

beforeEach(async () => {
  kv = await startKeyVault();
});
afterEach(async () => {
  await kv.close();
});

function ctxFor(token = kv.emu.token, varNames = ['OPENAI_API_KEY']): DiscoverContext {
  return {
    ...testContext({ env: { AKV_TOKEN: token, NODE_EXTRA_CA_CERTS: kv.caFile } }),
    // A fake clock: the vault's pacing lane waits in virtual time.
    clock: fakeClock(Date.now()),
    varNames,
    configs: [{ vault: `${kv.emu.vaultUrl}/`, secret: 'openai-api-key', token: TOKEN }],
  };
}

const valueOf = (p: DiscoveredPlace | undefined) => (p?.holds.kind === 'value' ? p.holds.value.reveal() : p?.holds.kind);
/** Calls the vault answered (the SDK's first call of a client is an unauthenticated challenge: 401). */
const answered = (re: RegExp) => kv.emu.server.requests.filter((r) => r.method === 'GET' && r.status !== 401 && re.test(r.path));

describe('azure-key-vault: discover', () => {
  it('lists every secret of the vault across pages and reads the latest version of those named like a variable, JSON fields included', async () => {
    const key = testKey();
    const other = testKey();
    kv.emu.seed('openai-api-key', key);
    kv.emu.seed('app-config', JSON.stringify({ OPENAI_API_KEY: key, DB_URL: 'postgres://db' }));
    kv.emu.seed('staging-openai-api-key', other);
    for (let i = 0; i < 30; i++) kv.emu.seed(`noise-${i}`, `v${i}`);
    kv.emu.seed('worker-openai-api-key', key); // on the second page (25 a page)

    const found = await azureKeyVault.discover!(ctxFor(kv.emu.token, ['OPENAI_API_KEY', 'STAGING_OPENAI_API_KEY', 'WORKER_OPENAI_API_KEY']));

    const host = new URL(kv.emu.vaultUrl).host;
    expect(found.count).toBe(34);
    const byLocation = new Map(found.places.map((p) => [p.location, p]));
    expect([...byLocation.keys()].sort()).toEqual([
      `${host}/secrets/app-config[OPENAI_API_KEY]`,
      `${host}/secrets/openai-api-key`,
      `${host}/secrets/staging-openai-api-key`,
      `${host}/secrets/worker-openai-api-key`,
    ]);
    expect(valueOf(byLocation.get(`${host}/secrets/openai-api-key`))).toBe(key);
    expect(valueOf(byLocation.get(`${host}/secrets/worker-openai-api-key`))).toBe(key);
    expect(valueOf(byLocation.get(`${host}/secrets/app-config[OPENAI_API_KEY]`))).toBe(key);
    expect(valueOf(byLocation.get(`${host}/secrets/staging-openai-api-key`))).toBe(other);
    expect(byLocation.get(`${host}/secrets/app-config[OPENAI_API_KEY]`)!.notRotatable).toMatch(/writes whole values/);
    // Pasted anyway, the entry is refused by targets.yaml (`field:` is not a field of this type); the others load.
    expect(await inventoryTakes(byLocation.get(`${host}/secrets/app-config[OPENAI_API_KEY]`)!.target)).toBe(false);
    expect(await Promise.all(found.places.filter((x) => !x.notRotatable).map((x) => inventoryTakes(x.target)))).not.toContain(false);
    expect(byLocation.get(`${host}/secrets/openai-api-key`)!.target).toEqual({ type: 'azure-key-vault', vault: `${kv.emu.vaultUrl}/`, secret: 'openai-api-key', token: 'env:AKV_TOKEN' });
    for (const p of found.places.filter((x) => !x.notRotatable)) {
      const { type, token: _t, ...fields } = p.target;
      expect(type).toBe('azure-key-vault');
      expect(azureKeyVault.schema.safeParse(fields).success).toBe(true);
    }
    // Requests: 2 list pages, then the latest version of all 34 secrets (34 < MAX_OTHER_READS).
    expect(answered(/^\/secrets\/?$/)).toHaveLength(2);
    expect(answered(/^\/secrets\/[^/]+\/?$/)).toHaveLength(34);
    expect(found.scope).toBe(`34 secrets in vault ${host}, 34 read`);
  });

  it('reads a secret the inventory lists even when its name is not the variable\'s', async () => {
    const key = testKey();
    kv.emu.seed('prod-openai', key);
    kv.emu.seed('other-openai', key); // neither named like the variable nor listed: passed over
    const ctx = { ...ctxFor(), configs: [{ vault: `${kv.emu.vaultUrl}/`, secret: 'Prod-OpenAI', token: TOKEN }] };
    const found = await azureKeyVault.discover!(ctx);
    expect(found.places.map((p) => p.location)).toEqual([expect.stringContaining('prod-openai')]);
    expect(valueOf(found.places[0])).toBe(key);
  });

  it('a found entry makes a ready target holding the same key', async () => {
    const key = testKey();
    kv.emu.seed('openai-api-key', key);
    const ctx = ctxFor();
    const found = await azureKeyVault.discover!(ctx);
    await expectEntryHolds(azureKeyVault, found.places[0]!, ctx, key, { token: TOKEN });
  });

  it('a throttled page makes the whole listing start again (the SDK does not give out the page token)', async () => {
    kv.emu.seed('openai-api-key', testKey());
    for (let i = 0; i < 30; i++) kv.emu.seed(`noise-${i}`, `v${i}`);
    // The third GET /secrets is the second page (the first is the SDK's unauthenticated challenge).
    let lists = 0;
    kv.emu.server.failNext({
      status: 429,
      headers: { 'retry-after': '0' },
      body: { error: { code: 'Throttled', message: 'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached' } },
      when: (r) => r.method === 'GET' && r.path === '/secrets' && ++lists === 3,
    });
    const found = await azureKeyVault.discover!(ctxFor());
    expect(found.count).toBe(31);
    expect(found.places).toHaveLength(1);
    // Page 1, the throttled page 2 (answered by the fault), then pages 1 and 2 again.
    expect(lists).toBe(3);
    expect(answered(/^\/secrets$/).map((r) => r.status)).toEqual([200, 429, 200, 200]);
  });

  it('a disabled secret named like the variable is reported unreadable, without reading it', async () => {
    kv.emu.seed('openai-api-key', testKey(), { enabled: false });
    const found = await azureKeyVault.discover!(ctxFor());
    expect(found.places.map((p) => [p.location.split('/').at(-1), p.holds.kind])).toEqual([['openai-api-key', 'unreadable']]);
    expect(answered(/^\/secrets\/openai-api-key\/?$/)).toHaveLength(0);
  });

  it('a rejected token, a denied list and no vault to search are auth errors that say what to do', async () => {
    await expect(azureKeyVault.discover!(ctxFor('not-the-token'))).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('Azure Key Vault rejected the access token') });
    kv.emu.deny('list');
    await expect(azureKeyVault.discover!(ctxFor())).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('Azure Key Vault denied listing the secrets of vault') });
    const none = { ...testContext({ env: {} }), varNames: ['OPENAI_API_KEY'], configs: [] };
    await expect(azureKeyVault.discover!(none)).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('list an azure-key-vault target') });
  });
});

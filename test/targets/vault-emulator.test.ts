import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultEmulator } from '../../emulators/vault/emulator.ts';

/**
 * The Vault emulator checked against Vault's documented HTTP behaviour (api-docs KV v2, the KV
 * plugin's path_data.go / path_metadata.go, "HTTP status codes"), with plain fetch as the vault
 * CLI's HTTP client would send it.
 */
describe('vault emulator (KV version 2 over HTTP)', () => {
  let emu: VaultEmulator;
  let token: string;
  const call = (path: string, init: { method?: string; body?: unknown; token?: string | null; namespace?: string } = {}) =>
    fetch(`${emu.url}/v1/${path}`, {
      method: init.method ?? 'GET',
      headers: {
        ...(init.token === null ? {} : { 'x-vault-token': init.token ?? token }),
        ...(init.namespace ? { 'x-vault-namespace': init.namespace } : {}),
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
      body: init.body ? JSON.stringify(init.body) : undefined,
    }).then(async (r) => ({ status: r.status, headers: r.headers, body: (await r.json()) as Record<string, any> }));

  beforeAll(async () => {
    emu = new VaultEmulator();
    await emu.start();
    token = emu.addToken();
  });
  afterAll(async () => {
    await emu.stop();
  });

  it('writes versions with check-and-set and reads the latest or ?version=N in Vault’s envelope', async () => {
    const w1 = await call('secret/data/apps/a', { method: 'POST', body: { options: { cas: 0 }, data: { K: 'one', OTHER: 'x' } } });
    expect(w1.status).toBe(200);
    expect(w1.body.data).toMatchObject({ version: 1, destroyed: false, deletion_time: '' });
    const w2 = await call('secret/data/apps/a', { method: 'PUT', body: { options: { cas: 1 }, data: { K: 'two', OTHER: 'x' } } });
    expect(w2.body.data.version).toBe(2);
    const latest = await call('secret/data/apps/a');
    expect(latest.body).toMatchObject({ lease_id: '', renewable: false, data: { data: { K: 'two', OTHER: 'x' }, metadata: { version: 2 } } });
    expect((await call('secret/data/apps/a?version=1')).body.data.data.K).toBe('one');
  });

  it('refuses a stale check-and-set with 400 and Vault’s message, cas 0 on an existing secret too, and requires cas when configured', async () => {
    emu.seed('apps/cas', { K: 'v' });
    const stale = await call('secret/data/apps/cas', { method: 'POST', body: { options: { cas: 0 }, data: { K: 'x' } } });
    expect(stale).toMatchObject({ status: 400, body: { errors: ['check-and-set parameter did not match the current version'] } });
    emu.mount().casRequired = true;
    const none = await call('secret/data/apps/cas', { method: 'POST', body: { data: { K: 'x' } } });
    expect(none.body.errors).toEqual(['check-and-set parameter required for this call']);
    emu.mount().casRequired = false;
    expect((await call('secret/data/apps/cas', { method: 'POST', body: { options: {} } })).body.errors).toEqual(['no data provided']);
  });

  it('404 {"errors":[]} for a missing secret; a deleted latest version is 404 with its metadata', async () => {
    expect(await call('secret/data/nope')).toMatchObject({ status: 404, body: { errors: [] } });
    emu.seed('apps/deleted', { K: 'v' });
    emu.mount().deleteLatest('apps/deleted');
    const gone = await call('secret/data/apps/deleted');
    expect(gone.status).toBe(404);
    expect(gone.body.data).toMatchObject({ data: null, metadata: { version: 1 } });
  });

  it('keeps max_versions (10 by default): older versions are removed, metadata says so', async () => {
    for (let i = 1; i <= 12; i++) emu.seed('apps/many', { K: `v${i}` });
    const meta = await call('secret/metadata/apps/many');
    expect(meta.body.data).toMatchObject({ current_version: 12, oldest_version: 3, max_versions: 0 });
    expect(Object.keys(meta.body.data.versions)).toHaveLength(10);
    expect((await call('secret/data/apps/many?version=1')).status).toBe(404);
  });

  it('lists keys under a prefix with ?list=true, folders ending in /', async () => {
    emu.seed('list/a', { K: '1' });
    emu.seed('list/dir/b', { K: '2' });
    expect((await call('secret/metadata/list?list=true')).body.data.keys).toEqual(['a', 'dir/']);
    expect((await call('secret/metadata/empty?list=true')).status).toBe(404);
  });

  it('tokens: none or a policy without the capability is 403 permission denied; a bad token also says invalid token', async () => {
    const readOnly = emu.addToken({ rules: [{ path: 'secret/data/apps/*', capabilities: ['read'] }] });
    emu.seed('apps/ro', { K: 'v' });
    expect((await call('secret/data/apps/ro', { token: readOnly })).status).toBe(200);
    const denied = await call('secret/data/apps/ro', { token: readOnly, method: 'POST', body: { options: { cas: 1 }, data: { K: 'w' } } });
    expect(denied.status).toBe(403);
    expect(denied.body.errors[0]).toMatch(/permission denied/);
    expect(denied.body.errors[0]).not.toMatch(/invalid token/);
    const bad = await call('secret/data/apps/ro', { token: 'hvs.not-a-token' });
    expect(bad.status).toBe(403);
    expect(bad.body.errors[0]).toMatch(/invalid token/);
    expect((await call('secret/data/apps/ro', { token: null })).status).toBe(403);
  });

  it('answers 503 "Vault is sealed" while sealed, except sys/seal-status', async () => {
    emu.seal();
    try {
      expect(await call('secret/data/apps/a')).toMatchObject({ status: 503, body: { errors: ['Vault is sealed'] } });
      expect((await call('sys/seal-status', { token: null })).body.sealed).toBe(true);
    } finally {
      emu.unseal();
    }
  });

  it('namespaces: X-Vault-Namespace selects the namespace; a token of another namespace is refused', async () => {
    emu.enableKv('secret', { namespace: 'team-a' });
    const teamToken = emu.addToken({ namespace: 'team-a' });
    emu.seed('apps/a', { K: 'in-team-a' }, { namespace: 'team-a' });
    const r = await call('secret/data/apps/a', { token: teamToken, namespace: 'team-a' });
    expect(r.body.data.data.K).toBe('in-team-a');
    expect((await call('secret/data/apps/a', { token: teamToken })).status).toBe(403);
    expect((await call('secret/data/apps/a', { namespace: 'team-b' })).status).toBe(404);
  });

  it('sys/internal/ui/mounts names the mount and its KV version, as the vault CLI asks', async () => {
    emu.enableKv('legacy', { version: 1 });
    const v2 = await call('sys/internal/ui/mounts/secret/apps/a');
    expect(v2.body.data).toMatchObject({ path: 'secret/', type: 'kv', options: { version: '2' } });
    const v1 = await call('sys/internal/ui/mounts/legacy/x', { token: emu.addToken({ rules: [{ path: 'legacy/*', capabilities: ['read'] }] }) });
    expect(v1.body.data.options.version).toBe('1');
    // No mount there: the same 403 as no access, so the call cannot list the mounts.
    const none = await call('sys/internal/ui/mounts/nope/x');
    expect(none.status).toBe(403);
    expect(none.body.errors).toEqual([`preflight capability check returned 403, please ensure client's policies grant access to path "nope/x/"`]);
  });

  it('a rate limit quota answers 429 with Retry-After and the X-Ratelimit headers', async () => {
    emu.rateLimitNext({ retryAfterSeconds: 3 });
    const r = await call('secret/data/apps/a');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('3');
    expect(r.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(r.body.errors[0]).toMatch(/rate limit quota exceeded/);
  });
});

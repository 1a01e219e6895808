import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { VaultEmulator } from '../../emulators/vault/emulator.ts';
import { vault, type VaultReceipt } from '../../src/targets/vault/index.ts';
import type { Target } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { testContext } from '../helpers/context.ts';

let emu: VaultEmulator;
let token: string;
let n = 0;
let path: string;

beforeAll(async () => {
  emu = new VaultEmulator();
  await emu.start();
  token = emu.addToken();
});
afterAll(async () => {
  await emu.stop();
});
beforeEach(() => {
  path = `apps/test-${++n}`;
});
afterEach(() => {
  emu.server.clearFaults();
  emu.unseal();
});

async function target(config: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = { VAULT_TOKEN: token }, baseDir?: string): Promise<Target<VaultReceipt>> {
  const parsed = vault.schema.parse({ address: emu.url, path, ...config });
  const { token: ref, ...rest } = config;
  return vault.create({ ...parsed, ...(ref ? { token: parseCredentialRef(String(ref))! } : {}), ...(rest.endpoint ? { endpoint: String(rest.endpoint) } : {}) }, { ...testContext({ name: 'vault', env, baseDir }), clock: fakeClock(Date.now()) });
}

const op = (key: string, rotationId = `rot_vault_${n}`) => ({ rotationId, fingerprint: new Secret(key).fingerprint });
const writes = () => emu.server.requests.filter((r) => r.method === 'POST' && r.path === `/v1/secret/data/${path}`);

describe('vault: write, verify, restore', () => {
  it('preflight is ready, reads the field, and says what the write does', async () => {
    const oldKey = testKey();
    emu.seed(path, { OPENAI_API_KEY: oldKey, DATABASE_URL: 'postgres://db' });
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind === 'value' && pf.current.value.reveal()).toBe(oldKey);
    expect(pf.notes?.join('\n')).toMatch(/version 2 of secret\/.*other fields are kept, written with check-and-set on version 1/);
    expect(t.location).toBe(`secret/${path}[OPENAI_API_KEY]`);
    expect(vault.capabilities).toEqual({ readBack: 'always', versioned: true });
  });

  it('write changes one field with check-and-set on the version read, keeping the others; verify reads ?version=N', async () => {
    const [oldKey, newKey] = [testKey(), testKey()];
    emu.seed(path, { OPENAI_API_KEY: oldKey, DATABASE_URL: 'postgres://db', PORT: 8080 });
    const t = await target();
    const receipt = await t.write(new Secret(newKey), op(newKey));
    expect(receipt).toEqual({ version: 2, previousVersion: 1 });
    expect(JSON.parse(writes().at(-1)!.rawBody)).toEqual({ options: { cas: 1 }, data: { OPENAI_API_KEY: newKey, DATABASE_URL: 'postgres://db', PORT: 8080 } });
    const v = await t.verify(new Secret(newKey), op(newKey), receipt);
    expect(v).toMatchObject({ method: 'read-back' });
    expect(emu.server.requests.some((r) => r.path === `/v1/secret/data/${path}` && r.query === '?version=2')).toBe(true);
    // A retried write of the same key writes nothing.
    expect(await t.write(new Secret(newKey), op(newKey))).toEqual(receipt);
    expect(writes()).toHaveLength(1);
  });

  it('a write that loses the check-and-set race is a retryable conflict; the retry keeps the other writer’s change', async () => {
    const newKey = testKey();
    emu.seed(path, { OPENAI_API_KEY: testKey(), DATABASE_URL: 'old' });
    const t = await target();
    let raced = false;
    // Someone else writes a version between keyrot's read and its write (the request is then handled for real).
    emu.server.failNext({
      method: 'POST',
      when: () => {
        if (!raced) emu.seed(path, { ...emu.data(path), DATABASE_URL: 'theirs' });
        raced = true;
        return false;
      },
    });
    const err = await targetErrorOf(t.write(new Secret(newKey), op(newKey)));
    expect(err).toMatchObject({ kind: 'conflict', retryable: true });
    expect(err.message).toMatch(/changed between keyrot's read and its check-and-set write/);
    await withRetry(() => t.write(new Secret(newKey), op(newKey)), { clock: fakeClock(), random: () => 0.5 });
    expect(emu.data(path)).toEqual({ OPENAI_API_KEY: newKey, DATABASE_URL: 'theirs' });
  });

  it('restore writes the old value as a new version (no version deleted), with or without a receipt, idempotently', async () => {
    const [oldKey, newKey] = [testKey(), testKey()];
    emu.seed(path, { OPENAI_API_KEY: oldKey, OTHER: 'kept' });
    const t = await target();
    const receipt = await t.write(new Secret(newKey), op(newKey));
    await t.restore(new Secret(oldKey), op(newKey), receipt);
    expect(emu.data(path)).toEqual({ OPENAI_API_KEY: oldKey, OTHER: 'kept' });
    expect(emu.mount().metadata(path)).toMatchObject({ current_version: 3, oldest_version: 1 });
    await t.restore(new Secret(oldKey), op(newKey), undefined);
    expect(emu.mount().metadata(path).current_version).toBe(3);
    expect(emu.data(path, { version: 2 })?.OPENAI_API_KEY).toBe(newKey);
  });

  it('a secret created by the write gets a version without the field on rollback (nothing deleted)', async () => {
    const newKey = testKey();
    const t = await target();
    const pf = await t.preflight();
    expect(pf).toMatchObject({ status: 'ready', willCreate: true, current: { kind: 'absent' } });
    const receipt = await t.write(new Secret(newKey), op(newKey));
    expect(receipt).toEqual({ version: 1, previousVersion: null });
    expect(JSON.parse(writes().at(-1)!.rawBody).options).toEqual({ cas: 0 });
    await t.restore(null, op(newKey), receipt);
    expect(emu.data(path)).toEqual({});
    expect(emu.mount().metadata(path).current_version).toBe(2);
  });

  it('restore refuses to overwrite a key someone else wrote since, and never names a key', async () => {
    const [oldKey, newKey, theirs] = [testKey(), testKey(), testKey()];
    emu.seed(path, { OPENAI_API_KEY: oldKey });
    const t = await target();
    const receipt = await t.write(new Secret(newKey), op(newKey));
    emu.seed(path, { OPENAI_API_KEY: theirs });
    const err = await targetErrorOf(t.restore(new Secret(oldKey), op(newKey), receipt));
    expect(err.kind).toBe('conflict');
    for (const k of [oldKey, newKey, theirs]) expect(err.message).not.toContain(k);
    const v = await targetErrorOf(t.verify(new Secret(newKey), op(newKey), receipt));
    expect(v.kind).toBe('mismatch');
    expect(v.message).toMatch(/written after keyrot's version 2/);
  });

  it('a deleted latest version: plan says the new version holds the field only; the write carries nothing deleted over', async () => {
    emu.seed(path, { OPENAI_API_KEY: testKey(), DATABASE_URL: 'postgres://db' });
    emu.mount().deleteLatest(path);
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.current.kind).toBe('absent');
    expect(pf.notes?.join('\n')).toMatch(/latest version \(1\) is deleted: the new version holds field OPENAI_API_KEY only.*vault kv undelete/);
    const newKey = testKey();
    const receipt = await t.write(new Secret(newKey), op(newKey));
    expect(receipt).toEqual({ version: 2, previousVersion: 1 });
    expect(emu.data(path)).toEqual({ OPENAI_API_KEY: newKey });
  });

  it('field: names another field; a non-string field is refused', async () => {
    const key = testKey();
    emu.seed(path, { api_key: key, count: 3 });
    expect(await (await target({ field: 'api_key' })).read()).toMatchObject({ kind: 'value' });
    const pf = await (await target({ field: 'count' })).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/holds a number, not a string/);
  });
});

describe('vault: where and as whom', () => {
  it('VAULT_ADDR and VAULT_NAMESPACE are used when address:/namespace: are not set; the namespace header is sent', async () => {
    emu.enableKv('secret', { namespace: 'team-x' });
    const nsToken = emu.addToken({ namespace: 'team-x' });
    const key = testKey();
    emu.seed(path, { OPENAI_API_KEY: key }, { namespace: 'team-x' });
    const parsed = vault.schema.parse({ path });
    const t = await vault.create(parsed, testContext({ env: { VAULT_TOKEN: nsToken, VAULT_ADDR: emu.url, VAULT_NAMESPACE: 'team-x' } }));
    const r = await t.read();
    expect(r.kind === 'value' && r.value.reveal()).toBe(key);
    expect(emu.server.requests.at(-1)!.headers['x-vault-namespace']).toBe('team-x');
    const t2 = await target({ namespace: 'team-x' }, { VAULT_TOKEN: nsToken });
    expect((await t2.preflight()).status).toBe('ready');
  });

  it('no address is blocked naming VAULT_ADDR; plain http to another host is an inventory error', async () => {
    const t = await vault.create(vault.schema.parse({ path }), testContext({ env: { VAULT_TOKEN: token } }));
    const pf = await t.preflight();
    expect(pf).toMatchObject({ status: 'blocked' });
    expect(pf.reason).toMatch(/set address: in targets.yaml or VAULT_ADDR/);
    expect(() => vault.schema.parse({ path, address: 'http://vault.example.com:8200' })).toThrow(/only to a loopback address/);
    const viaEnv = await vault.create(vault.schema.parse({ path }), testContext({ env: { VAULT_TOKEN: token, VAULT_ADDR: 'http://vault.example.com:8200' } }));
    expect((await viaEnv.preflight()).reason).toMatch(/^VAULT_ADDR: .*only to a loopback address/);
  });

  it('token: file:PATH is read from a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyrot-vault-'));
    try {
      await writeFile(join(dir, 'vault-token'), `${token}\n`, { mode: 0o600 });
      emu.seed(path, { OPENAI_API_KEY: testKey() });
      const t = await target({ token: 'file:vault-token' }, {}, dir);
      expect((await t.preflight()).status).toBe('ready');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a KV version 1 mount, another engine or the wrong mount: is blocked with what to change', async () => {
    emu.enableKv('kv1', { version: 1 });
    const pf = await (await target({ mount: 'kv1' }, { VAULT_TOKEN: emu.addToken({ rules: [{ path: 'kv1/*', capabilities: ['read'] }] }) })).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/KV version 1.*vault kv enable-versioning kv1\//);
    emu.enableKv('secret/team');
    const wrong = await (await target({ path: `team/${path}` })).preflight();
    expect(wrong.reason).toMatch(/served by the mount secret\/team\/, not secret\/: set mount: secret\/team/);
  });
});

describe('vault: errors', () => {
  it('a bad token is auth naming its variable; a policy without the capability is permission; no key in either', async () => {
    const newKey = testKey();
    emu.seed(path, { OPENAI_API_KEY: testKey() });
    const bad = await targetErrorOf((await target({}, { VAULT_TOKEN: 'hvs.revoked-token-for-test' })).write(new Secret(newKey), op(newKey)));
    expect(bad.kind).toBe('auth');
    expect(bad.message).toMatch(/rejected the token from VAULT_TOKEN: it is invalid or expired/);
    const ro = emu.addToken({ rules: [{ path: `secret/data/${path}`, capabilities: ['read'] }] });
    const t = await target({}, { VAULT_TOKEN: ro });
    expect((await t.preflight()).status).toBe('ready');
    const denied = await targetErrorOf(t.write(new Secret(newKey), op(newKey)));
    expect(denied.kind).toBe('permission');
    expect(denied.message).toContain(`Vault denied access to secret/data/${path}`);
    for (const e of [bad, denied]) expect(JSON.stringify({ m: e.message, e })).not.toContain(newKey);
    const missing = await (await target({}, {})).preflight();
    expect(missing.reason).toMatch(/VAULT_TOKEN is not set/);
  });

  it('sealed (503) is retryable and says to unseal; preflight throws it for the engine to retry', async () => {
    emu.seed(path, { OPENAI_API_KEY: testKey() });
    const t = await target();
    emu.seal();
    await expect(t.preflight()).rejects.toMatchObject({ kind: 'unavailable', retryable: true, message: expect.stringMatching(/is sealed.*vault operator unseal/) });
  });

  it('no mount at mount: is blocked saying what to check; a 500 is retryable; neither names a key', async () => {
    const oldKey = testKey();
    emu.seed(path, { OPENAI_API_KEY: oldKey });
    const pf = await (await target({ mount: 'nope' })).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/refused to name the mount serving nope\/.*no such mount exists, or the token has no capability under it; check mount: in targets.yaml/);
    const t = await target();
    emu.server.failNext({ path: new RegExp(`/v1/secret/data/${path}$`), status: 500, body: { errors: ['internal error'] } });
    const e = await targetErrorOf(t.read());
    expect(e).toMatchObject({ kind: 'unavailable', retryable: true });
    expect(e.message).toMatch(/Vault answered 500 for secret\/data\/.*internal error/);
    for (const m of [pf.reason, e.message]) expect(m).not.toContain(oldKey);
  });

  it('a rate limit quota (429) is retried after its Retry-After by the engine policy', async () => {
    const newKey = testKey();
    emu.seed(path, { OPENAI_API_KEY: testKey() });
    const t = await target();
    emu.rateLimitNext({ retryAfterSeconds: 7 });
    const e = await targetErrorOf(t.read());
    expect(e).toMatchObject({ kind: 'rate-limited', retryable: true, retryAfterMs: 7000 });
    emu.rateLimitNext();
    await withRetry(() => t.write(new Secret(newKey), op(newKey)), { clock: fakeClock(), random: () => 0.5 });
    expect(emu.data(path)?.OPENAI_API_KEY).toBe(newKey);
  });
});

describe('vault: discover', () => {
  it('lists the mount recursively and reports the fields named like the variables, with ready entries', async () => {
    const d = new VaultEmulator();
    await d.start();
    try {
      const t = d.addToken();
      const key = testKey();
      d.seed('apps/api', { OPENAI_API_KEY: key, DATABASE_URL: 'x' });
      d.seed('apps/worker/config', { 'openai-api-key': testKey() });
      d.seed('apps/web', { OTHER: key });
      d.seed('deep/a/b/c', { nothing: 'here' });
      const ctx = { ...testContext({ env: { VAULT_TOKEN: t } }), varNames: ['OPENAI_API_KEY'], configs: [{ address: d.url, mount: 'secret' }] };
      const found = await vault.discover!(ctx);
      expect(found.count).toBe(4);
      expect(found.places.map((p) => p.location).sort()).toEqual(['secret/apps/api[OPENAI_API_KEY]', 'secret/apps/worker/config[openai-api-key]']);
      const api = found.places.find((p) => p.location === 'secret/apps/api[OPENAI_API_KEY]')!;
      expect(api.holds.kind === 'value' && api.holds.value.reveal()).toBe(key);
      expect(api.target).toEqual({ type: 'vault', address: d.url, mount: 'secret', path: 'apps/api', field: 'OPENAI_API_KEY' });
      const { type: _type, ...entry } = api.target;
      const made = await vault.create(vault.schema.parse(entry), ctx);
      expect((await made.preflight()).status).toBe('ready');
      const noList = d.addToken({ rules: [{ path: 'secret/data/*', capabilities: ['read'] }] });
      await expect(vault.discover!({ ...ctx, ...testContext({ env: { VAULT_TOKEN: noList } }) })).rejects.toMatchObject({ kind: 'auth' });
    } finally {
      await d.stop();
    }
  });
});

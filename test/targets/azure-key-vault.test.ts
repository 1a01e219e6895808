import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { AzureKeyVaultConfig, azureKeyVault } from '../../src/targets/azure-key-vault/index.ts';
import { STATIC_TOKEN_ENV, TAGS } from '../../src/targets/azure-key-vault/adapter.ts';
import { generateSelfSignedCert } from '../../emulators/azure-key-vault/cert.ts';
import { testKey } from '../helpers/keys.ts';
import { SECRET, startKeyVault } from '../helpers/azure-key-vault-fixture.ts';
import type { OpContext } from '../../src/targets/types.ts';

type Kv = Awaited<ReturnType<typeof startKeyVault>>;

function opFor(key: string, rotationId = 'rot_akv_1'): OpContext {
  return { rotationId, fingerprint: new Secret(key).fingerprint };
}

async function failure(p: Promise<unknown>): Promise<TargetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TargetError);
  return err as TargetError;
}

describe('azure-key-vault: config', () => {
  it('accepts public and sovereign-cloud vault URLs', () => {
    for (const vault of [
      'https://my-vault.vault.azure.net/',
      'https://my-vault.vault.azure.cn/',
      'https://my-vault.vault.usgovcloudapi.net',
      'https://keyrot-demo.vault.localhost:8443/',
    ]) {
      expect(AzureKeyVaultConfig.safeParse({ vault, secret: 'openai-api-key' }).success, vault).toBe(true);
    }
  });

  it('rejects http, paths, credentials in the URL and invalid secret names', () => {
    const bad = [
      { vault: 'http://my-vault.vault.azure.net/', secret: 'a' },
      { vault: 'https://my-vault.vault.azure.net/secrets/x', secret: 'a' },
      { vault: 'https://user:pw@my-vault.vault.azure.net/', secret: 'a' },
      { vault: 'my-vault', secret: 'a' },
      { vault: 'https://my-vault.vault.azure.net/', secret: 'openai_api_key' },
      { vault: 'https://my-vault.vault.azure.net/', secret: 'x'.repeat(128) },
    ];
    for (const c of bad) expect(AzureKeyVaultConfig.safeParse(c).success, JSON.stringify(c)).toBe(false);
    const msg = AzureKeyVaultConfig.safeParse({ vault: 'http://v.vault.azure.net', secret: 'a' }).error?.issues[0]?.message;
    expect(msg).toMatch(/https only/);
  });

  it('describes the target as host/secrets/name', () => {
    expect(azureKeyVault.describe({ vault: 'https://my-vault.vault.azure.cn/', secret: 'openai-api-key' })).toBe('my-vault.vault.azure.cn/secrets/openai-api-key');
  });
});

describe('azure-key-vault: emulator certificate', () => {
  it('is a self-signed CA certificate for *.vault.localhost, localhost and 127.0.0.1', () => {
    const c = generateSelfSignedCert({ commonName: 't', dnsNames: ['localhost', '*.vault.localhost'], ipAddresses: ['127.0.0.1'] });
    const x = new X509Certificate(c.cert);
    expect(x.ca).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.checkHost('keyrot.vault.localhost')).toBe('*.vault.localhost');
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });
});

describe('azure-key-vault: target against the emulator', () => {
  let kv: Kv;
  let oldKey: string;
  let seeded: string;
  const otherValue = 'an-unrelated-secret-value';

  beforeEach(async () => {
    kv = await startKeyVault({ pageSize: 2 });
    oldKey = testKey();
    kv.emu.seed('database-password', otherValue, { tags: { team: 'data' } });
    seeded = kv.emu.seed(SECRET, oldKey, { contentType: 'text/plain', tags: { app: 'nomora-paw' } });
  });
  afterEach(async () => {
    await kv.close();
  });

  it('performs the 401 challenge flow: first request unauthenticated, then the bearer token, then the token at once', async () => {
    const t = await kv.target();
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    const newKey = testKey();
    await t.write(new Secret(newKey), opFor(newKey));
    const reqs = kv.emu.server.requests;
    expect(reqs[0]!.headers.authorization).toBeUndefined();
    expect(reqs[0]!.status).toBe(401);
    expect(reqs[1]!.method).toBe(reqs[0]!.method);
    expect(reqs[1]!.path).toBe(reqs[0]!.path);
    expect(reqs[1]!.headers.authorization).toBe(`Bearer ${kv.emu.token}`);
    // One challenge per client: every later request carries the token and none is refused.
    expect(reqs.slice(1).every((r) => r.headers.authorization === `Bearer ${kv.emu.token}` && r.status === 200)).toBe(true);
    // The PUT is among them, with its body (only the challenge probe goes out empty).
    const put = reqs.find((r) => r.method === 'PUT')!;
    expect(JSON.parse(put.rawBody)).toMatchObject({ tags: { [TAGS.rotation]: 'rot_akv_1' } });
  });

  it('keeps challenge-resource verification on: a challenge for another domain gets no token', async () => {
    // A vault at *.vault.localhost whose challenge names https://vault.azure.net (a token for real Azure).
    const other = await startKeyVault({ challengeResource: 'https://vault.azure.net' });
    try {
      other.emu.seed(SECRET, oldKey);
      const t = await other.target();
      const pf = await t.preflight();
      expect(pf.status).toBe('blocked');
      expect(pf.reason).toMatch(/another resource than its own domain/);
      expect(other.emu.server.requests.length).toBeGreaterThan(0);
      expect(other.emu.server.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('works on a literal loopback URL (emulators without a domain), where verification has nothing to match', async () => {
    const t = await kv.target({ vault: `${kv.emu.loopbackUrl}/` });
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind === 'value' && pf.current.value.reveal()).toBe(oldKey);
  });

  it('`endpoint` is the vault URL itself', async () => {
    const t = await kv.target({ vault: 'https://elsewhere.vault.azure.net/', endpoint: kv.emu.vaultUrl });
    expect((await t.read()).kind).toBe('value');
  });

  it('write adds one version tagged with the rotation, keeps contentType and the user tags, and touches nothing else', async () => {
    const t = await kv.target();
    const otherBefore = JSON.stringify(kv.emu.versions('database-password'));
    const oldBefore = JSON.stringify(kv.emu.versions(SECRET)[0]);
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);

    const versions = kv.emu.versions(SECRET);
    expect(versions).toHaveLength(2);
    const latest = versions[1]!;
    expect(latest.value).toBe(newKey);
    expect(latest.enabled).toBe(true);
    expect(latest.contentType).toBe('text/plain');
    expect(latest.tags).toEqual({
      app: 'nomora-paw',
      [TAGS.rotation]: op.rotationId,
      [TAGS.fingerprint]: op.fingerprint,
      [TAGS.previousVersion]: seeded,
      [TAGS.previousFingerprint]: new Secret(oldKey).fingerprint,
    });
    expect(receipt).toEqual({ version: latest.version, previousVersion: seeded, previousFingerprint: new Secret(oldKey).fingerprint });
    expect(JSON.stringify(receipt)).not.toContain(newKey);
    // The old version is untouched (still enabled until finalize), the other secret byte-identical.
    expect(JSON.stringify(kv.emu.versions(SECRET)[0])).toBe(oldBefore);
    expect(JSON.stringify(kv.emu.versions('database-password'))).toBe(otherBefore);
    expect(kv.emu.secretNames().sort()).toEqual(['database-password', SECRET]);
  });

  it('verify reads the written version itself and checks it is current', async () => {
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);
    const v = await t.verify(new Secret(newKey), op, receipt);
    expect(v.method).toBe('read-back');
    expect(v.detail).toContain(String(receipt.version).slice(0, 8));
    expect(kv.emu.server.calls('GET', `/secrets/${SECRET}/${receipt.version}`)).toHaveLength(1);

    // Someone writes after us: consumers read their value, so verification fails.
    kv.emu.seed(SECRET, testKey());
    const err = await failure(t.verify(new Secret(newKey), op, receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).toMatch(/newer version .* \(not keyrot's\)/);
    expect(err.message).not.toContain(newKey);
  });

  it('a retried write (same rotation) adds no version and returns the same receipt', async () => {
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    const first = await t.write(new Secret(newKey), op);
    const count = kv.emu.versions(SECRET).length;
    // As after a lost answer: the engine calls write again, possibly from a fresh process (new client).
    const again = await (await kv.target()).write(new Secret(newKey), op);
    expect(again).toEqual(first);
    expect(kv.emu.versions(SECRET)).toHaveLength(count);
    expect(kv.emu.server.calls('PUT', `/secrets/${SECRET}`)).toHaveLength(1);
  });

  it('restore adds a version with the exact old value, tagged as a keyrot restore, idempotently', async () => {
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);
    await t.restore(new Secret(oldKey), op, receipt);
    let versions = kv.emu.versions(SECRET);
    expect(versions).toHaveLength(3);
    expect(versions[2]!.value).toBe(oldKey);
    expect(versions[2]!.contentType).toBe('text/plain');
    expect(versions[2]!.tags).toEqual({ app: 'nomora-paw', [TAGS.restore]: op.rotationId, [TAGS.fingerprint]: new Secret(oldKey).fingerprint });

    await t.restore(new Secret(oldKey), op, receipt);
    await t.restore(new Secret(oldKey), op, undefined);
    versions = kv.emu.versions(SECRET);
    expect(versions).toHaveLength(3);
    const now = await t.read();
    expect(now.kind === 'value' && now.value.reveal()).toBe(oldKey);
  });

  it('restore takes the old value from the vault version named in the receipt (versioned store)', async () => {
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);
    // Even if the caller's copy of the old value is unavailable, the vault's previous version is exact.
    await t.restore(null, op, receipt);
    expect(kv.emu.latest(SECRET)!.value).toBe(oldKey);
  });

  it('restore without a receipt (crash before the journal) finds its version by tag', async () => {
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    await t.write(new Secret(newKey), op);
    await t.restore(null, op, undefined);
    expect(kv.emu.latest(SECRET)!.value).toBe(oldKey);
  });

  it('restore before any write changes nothing', async () => {
    const t = await kv.target();
    const newKey = testKey();
    await t.restore(new Secret(oldKey), opFor(newKey), undefined);
    expect(kv.emu.versions(SECRET)).toHaveLength(1);
    expect(kv.emu.server.calls('PUT', `/secrets/${SECRET}`)).toHaveLength(0);
  });

  it('restore refuses to overwrite a version someone else wrote after keyrot', async () => {
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);
    const theirs = testKey();
    kv.emu.seed(SECRET, theirs);
    const err = await failure(t.restore(new Secret(oldKey), op, receipt));
    expect(err.kind).toBe('conflict');
    expect(err.message).not.toContain(theirs);
    expect(err.message).not.toContain(oldKey);
    expect(kv.emu.latest(SECRET)!.value).toBe(theirs);
  });

  it('finalize disables every enabled version holding the old key, across pages, and nothing else', async () => {
    // History: old (seeded) → unrelated value → old again (re-saved by hand) → keyrot writes the new key.
    const unrelated = kv.emu.seed(SECRET, testKey());
    const resaved = kv.emu.seed(SECRET, oldKey);
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);
    expect(receipt.previousVersion).toBe(resaved);

    await t.finalize!(op, receipt);
    const state = Object.fromEntries(kv.emu.versions(SECRET).map((v) => [v.version, v.enabled]));
    expect(state).toEqual({ [seeded]: false, [unrelated]: true, [resaved]: false, [String(receipt.version)]: true });
    // Four versions, two per page: the list was followed through its nextLink.
    expect(kv.emu.server.requests.some((r) => r.path === `/secrets/${SECRET}/versions` && /skiptoken/.test(r.query))).toBe(true);
    // The disabled versions now answer like the service does.
    const raw = await fetchDisabled(kv, seeded);
    expect(raw.status).toBe(403);
    expect(raw.body).toEqual({ error: { code: 'Forbidden', message: 'Operation get is not allowed on a disabled secret.', innererror: { code: 'SecretDisabled' } } });

    // Idempotent, and it works from the tags alone when the receipt was lost.
    const patches = kv.emu.server.calls('PATCH', /.*/).length;
    await t.finalize!(op, receipt);
    await t.finalize!(op, undefined);
    expect(kv.emu.server.calls('PATCH', /.*/)).toHaveLength(patches);
    expect((await t.read()).kind).toBe('value');
  });

  it('finalize without a receipt reads the previous version from the tags', async () => {
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    await t.write(new Secret(newKey), op);
    await t.finalize!(op, undefined);
    expect(kv.emu.versions(SECRET).map((v) => v.enabled)).toEqual([false, true]);
  });

  it('finalize refuses to disable anything while the current version holds the old key', async () => {
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);
    await t.restore(new Secret(oldKey), op, receipt);
    const err = await failure(t.finalize!(op, receipt));
    expect(err.kind).toBe('conflict');
    expect(kv.emu.versions(SECRET).every((v) => v.enabled)).toBe(true);
  });

  it('throttling (429 + Retry-After) is retried by the engine, not by the SDK', async () => {
    const t = await kv.target();
    await t.preflight(); // the challenge is done: the 429 hits a real operation
    kv.emu.throttleNext({ op: 'set', retryAfterSeconds: 2 });
    const newKey = testKey();
    const clock = fakeClock();
    let attempts = 0;
    const errors: TargetError[] = [];
    await withRetry(
      async () => {
        attempts++;
        return t.write(new Secret(newKey), opFor(newKey));
      },
      { clock, random: () => 0, onRetry: ({ error }) => errors.push(error) },
    );
    expect(attempts).toBe(2);
    expect(errors[0]!.kind).toBe('rate-limited');
    expect(errors[0]!.retryAfterMs).toBe(2000);
    expect(errors[0]!.message).toMatch(/throttled/);
    expect(clock.slept).toEqual([2000]);
    // Exactly one 429 reached the vault: the SDK did not retry on its own.
    expect(kv.emu.server.requests.filter((r) => r.status === 429)).toHaveLength(1);
    expect(kv.emu.versions(SECRET)).toHaveLength(2);
  });

  it('a 429 without Retry-After is still retryable (engine backoff), 503 is unavailable', async () => {
    const t = await kv.target();
    await t.preflight();
    kv.emu.throttleNext({ retryAfterSeconds: null });
    let err = await failure(t.read());
    expect(err.kind).toBe('rate-limited');
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBeUndefined();
    kv.emu.unavailableNext();
    err = await failure(t.read());
    expect(err.kind).toBe('unavailable');
    expect(err.retryable).toBe(true);
  });

  it('an RBAC denial names the data action and the role to grant', async () => {
    const t = await kv.target();
    kv.emu.deny('set', 'rbac');
    const newKey = testKey();
    const err = await failure(t.write(new Secret(newKey), opFor(newKey)));
    expect(err.kind).toBe('permission');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('Microsoft.KeyVault/vaults/secrets/setSecret/action');
    expect(err.message).toContain('Key Vault Secrets Officer');
    expect(err.message).toContain(SECRET);
    expect(err.message).not.toContain(newKey);
  });

  it('an access-policy denial says which secret permissions to add', async () => {
    const t = await kv.target();
    kv.emu.deny('get', 'access-policy');
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/access policies .* "get" permission/);
    expect(pf.reason).toMatch(/Get, List and Set/);
  });

  it('preflight names the missing read permission; a missing list permission is only a note', async () => {
    const t = await kv.target();
    kv.emu.deny('get');
    let pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain('Microsoft.KeyVault/vaults/secrets/getSecret/action');
    kv.emu.allow();
    kv.emu.deny('list');
    pf = await t.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.notes?.join('\n')).toContain('Microsoft.KeyVault/vaults/secrets/readMetadata/action');
  });

  it('a finalize without update permission names update/action', async () => {
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);
    kv.emu.deny('update');
    const err = await failure(t.finalize!(op, receipt));
    expect(err.kind).toBe('permission');
    expect(err.message).toContain('Microsoft.KeyVault/vaults/secrets/update/action');
  });

  it('a rejected token (401 after the challenge) is an auth error in product words', async () => {
    const t = await kv.target();
    await t.preflight();
    kv.emu.rotateToken();
    const newKey = testKey();
    const err = await failure(t.write(new Secret(newKey), opFor(newKey)));
    expect(err.kind).toBe('auth');
    expect(err.message).toMatch(/rejected the access token for vault keyrot-emulator\.vault\.localhost:\d+ \(401 AKV10046\)/);
    expect(err.message).toContain(`env:${STATIC_TOKEN_ENV}`);
    expect(err.message).not.toContain(kv.env[STATIC_TOKEN_ENV]!);
    // 401s: the first challenge, then the refused token and the SDK's one retry after re-reading the challenge. No loop.
    expect(kv.emu.server.requests.filter((r) => r.status === 401)).toHaveLength(3);
  });

  it('a missing token reference is an auth error before any request', async () => {
    const t = await kv.target({ token: { kind: 'env', name: 'NOPE_AZURE_TOKEN', raw: 'env:NOPE_AZURE_TOKEN' } });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/env:NOPE_AZURE_TOKEN is not set/);
    expect(kv.emu.server.requests).toHaveLength(0);
  });

  it('an untrusted certificate is reported as such', async () => {
    const t = await kv.target({}, { NODE_EXTRA_CA_CERTS: '' });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/TLS certificate of vault .* is not trusted/);
  });

  it('a missing secret is not-found at preflight and write (keyrot never creates it)', async () => {
    const t = await kv.target({ secret: 'does-not-exist' });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/does-not-exist in vault .* does not exist: create it first/);
    const newKey = testKey();
    const err = await failure(t.write(new Secret(newKey), opFor(newKey)));
    expect(err.kind).toBe('not-found');
    expect(kv.emu.secretNames()).not.toContain('does-not-exist');
  });

  it('a disabled current version is unreadable, and a write adds an enabled one', async () => {
    kv.emu.seed(SECRET, testKey(), { enabled: false });
    const t = await kv.target();
    const pf = await t.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.current.kind).toBe('unreadable');
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);
    // The service does not say which version is disabled (403 without a body naming it): no previous version.
    expect(receipt).toMatchObject({ previousVersion: null, previousFingerprint: null });
    expect(kv.emu.latest(SECRET)).toMatchObject({ value: newKey, enabled: true });
    await t.verify(new Secret(newKey), op, receipt);
    // Nothing readable before: restore disables this rotation's version, as the secret was.
    await t.restore(null, op, receipt);
    expect(kv.emu.latest(SECRET)!.enabled).toBe(false);
    expect((await t.read()).kind).toBe('unreadable');
  });

  it('keeps within Key Vault’s 15 tags by dropping its optional ones', async () => {
    const tags = Object.fromEntries(Array.from({ length: 13 }, (_, i) => [`t${i}`, 'x']));
    kv.emu.seed(SECRET, oldKey, { tags });
    const t = await kv.target();
    const newKey = testKey();
    const op = opFor(newKey);
    const receipt = await t.write(new Secret(newKey), op);
    const latest = kv.emu.latest(SECRET)!;
    expect(Object.keys(latest.tags!)).toHaveLength(15);
    expect(latest.tags![TAGS.rotation]).toBe(op.rotationId);
    expect(receipt.previousFingerprint).toBe(new Secret(oldKey).fingerprint);
  });

  it('never shows the key in any error', async () => {
    const newKey = testKey();
    const t = await kv.target();
    const errors: unknown[] = [];
    const collect = async (p: Promise<unknown>) => errors.push(await p.then(() => null, (e: unknown) => e));
    kv.emu.deny('set');
    await collect(t.write(new Secret(newKey), opFor(newKey)));
    kv.emu.allow();
    kv.emu.deny('set', 'access-policy');
    await collect(t.write(new Secret(newKey), opFor(newKey)));
    kv.emu.allow();
    kv.emu.throttleNext({ op: 'set' });
    await collect(t.write(new Secret(newKey), opFor(newKey)));
    kv.emu.unavailableNext({ op: 'set' });
    await collect(t.write(new Secret(newKey), opFor(newKey)));
    const receipt = await t.write(new Secret(newKey), opFor(newKey));
    await collect(t.verify(new Secret(testKey()), opFor(newKey), receipt));
    kv.emu.seed(SECRET, testKey());
    await collect(t.restore(new Secret(oldKey), opFor(newKey), receipt));
    kv.emu.rotateToken();
    await collect(t.write(new Secret(newKey), opFor(newKey)));
    expect(errors.filter((e) => e !== null)).toHaveLength(7);
    for (const e of errors) {
      expect(e).toBeInstanceOf(TargetError);
      const te = e as TargetError;
      for (const v of [newKey, oldKey]) {
        expect(te.message).not.toContain(v);
        expect(JSON.stringify(te)).not.toContain(v);
      }
      expect(te.message).toMatch(/vault|secret/);
    }
  });
});

/** A raw HTTPS GET of one version, bypassing the SDK: what any reader of a disabled version gets. */
async function fetchDisabled(kv: Kv, version: string): Promise<{ status: number; body: unknown }> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(
      `${kv.emu.loopbackUrl}/secrets/${SECRET}/${version}?api-version=2025-07-01`,
      { ca: kv.emu.caPem, headers: { authorization: `Bearer ${kv.emu.token}` } },
      (res) => {
        let data = '';
        res.on('data', (c: Buffer) => (data += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * The emulator checked against the official SDK on the service behaviours the adapter's logic rests
 * on (each with its public source), so an emulator bug cannot hide an adapter bug.
 */
describe('azure-key-vault emulator (via @azure/keyvault-secrets)', () => {
  let kv: Kv;
  let client: import('@azure/keyvault-secrets').SecretClient;

  beforeEach(async () => {
    kv = await startKeyVault();
    const { SecretClient } = await import('@azure/keyvault-secrets');
    client = new SecretClient(
      kv.emu.loopbackUrl,
      { getToken: async () => ({ token: kv.emu.token, expiresOnTimestamp: Date.now() + 3_600_000 }) },
      { disableChallengeResourceVerification: true, tlsOptions: { ca: kv.emu.caPem }, retryOptions: { maxRetries: 0 } },
    );
  });
  afterEach(async () => {
    await kv.close();
  });

  async function restError(p: Promise<unknown>): Promise<{ statusCode?: number; code?: string; details?: { error?: { code?: string; message?: string; innerError?: { code?: string } } } }> {
    const e = await p.then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(Error);
    return e as never;
  }

  it('every set is a new version, and tags/contentType are NOT carried over from the previous one', async () => {
    // REST reference, Set Secret: "If the named secret already exists, Azure Key Vault creates a new
    // version of that secret." Tags and content type belong to the version: a new version without
    // them has none (Azure/AzureKeyVault#17: "You are required to enter in your Content Type and
    // Tags again when creating new version of existing secret") — which is why keyrot copies them.
    const a = await client.setSecret('carry', 'same', { tags: { team: 'data' }, contentType: 'text/plain' });
    const b = await client.setSecret('carry', 'same');
    expect(b.properties.version).not.toBe(a.properties.version);
    expect(b.properties.tags ?? {}).toEqual({});
    expect(b.properties.contentType).toBeUndefined();
    expect((await client.getSecret('carry')).properties.version).toBe(b.properties.version);
    expect(kv.emu.versions('carry')).toHaveLength(2);
  });

  it('a disabled version, the current one included, is 403 Forbidden / SecretDisabled', async () => {
    // Azure/azure-sdk-for-js#24756 (RestError 403, details.error.innerError.code "SecretDisabled",
    // on GET secrets/<name>/ — the latest version).
    const v1 = await client.setSecret('dis', 'one');
    const v2 = await client.setSecret('dis', 'two');
    await client.updateSecretProperties('dis', v2.properties.version!, { enabled: false });
    for (const p of [client.getSecret('dis'), client.getSecret('dis', { version: v2.properties.version! })]) {
      const e = await restError(p);
      expect(e.statusCode).toBe(403);
      expect(e.details?.error?.code).toBe('Forbidden');
      expect(e.details?.error?.message).toBe('Operation get is not allowed on a disabled secret.');
      expect(e.details?.error?.innerError?.code).toBe('SecretDisabled');
    }
    // "latest" does not fall back to an older enabled version.
    expect((await client.getSecret('dis', { version: v1.properties.version! })).value).toBe('one');
  });

  it('more than 15 tags is 400 BadParameter "Property has invalid value"', async () => {
    // hashicorp/terraform-provider-azurerm#16780 / PR #16947.
    const tags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'x']));
    const e = await restError(client.setSecret('many-tags', 'v', { tags }));
    expect(e.statusCode).toBe(400);
    expect(e.details?.error?.code).toBe('BadParameter');
    expect(e.details?.error?.message).toMatch(/^Property has invalid value/);
  });

  it('lists every version across pages by following nextLink', async () => {
    // REST reference, Get Secret Versions: maxresults 1..25, `nextLink` to the next page (null at the end).
    for (let i = 0; i < 5; i++) await client.setSecret('paged', `v${i}`);
    const pages: number[] = [];
    for await (const page of client.listPropertiesOfSecretVersions('paged').byPage({ maxPageSize: 2 })) pages.push(page.length);
    expect(pages).toEqual([2, 2, 1]);
  });
});

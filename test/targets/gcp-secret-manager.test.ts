import net from 'node:net';
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { Secret, fingerprint } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { crc32c } from '../../src/targets/gcp-secret-manager/crc32c.ts';
import { gcpSecretManager, GcpSecretManagerConfig } from '../../src/targets/gcp-secret-manager/index.ts';
import { parseEndpoint } from '../../src/targets/gcp-secret-manager/adapter.ts';
import type { OpContext } from '../../src/targets/types.ts';
import type { EmuRequest, EmuResponse } from '../../emulators/server.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';
import { gcpFixture, PROJECT, SECRET, type GcpFixture } from '../helpers/gcp-secret-manager-fixture.ts';

const opFor = (key: string, rotationId = 'rot_gcp_1'): OpContext => ({ rotationId, fingerprint: fingerprint(key) });
const RESOURCE = `projects/${PROJECT}/secrets/${SECRET}`;

async function failure(p: Promise<unknown>): Promise<TargetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TargetError);
  return err as TargetError;
}

describe('gcp-secret-manager target (official client, REST transport, loopback emulator)', () => {
  let fx: GcpFixture;
  let oldKey: string;
  let newKey: string;

  beforeEach(async () => {
    fx = await gcpFixture();
    oldKey = testKey();
    newKey = testKey();
  });
  afterEach(async () => {
    await fx.close();
  });

  it('the config schema accepts project ids and numbers and rejects malformed secret ids', () => {
    expect(GcpSecretManagerConfig.safeParse({ project: 'my-project', secret: 'openai-api-key' }).success).toBe(true);
    expect(GcpSecretManagerConfig.safeParse({ project: '123456789012', secret: 'OPENAI_API_KEY' }).success).toBe(true);
    expect(GcpSecretManagerConfig.safeParse({ project: 'my-project', secret: 'projects/x/secrets/y' }).success).toBe(false);
    expect(GcpSecretManagerConfig.safeParse({ project: 'My Project', secret: 's' }).success).toBe(false);
    expect(gcpSecretManager.describe({ project: 'p1', secret: 's1' })).toBe('projects/p1/secrets/s1');
  });

  it('endpoint host:port: loopback speaks http, anything else https, plain http elsewhere is refused', () => {
    expect(parseEndpoint('127.0.0.1:8085')).toEqual({ host: '127.0.0.1', port: 8085, protocol: 'http' });
    expect(parseEndpoint('localhost:9000')).toEqual({ host: 'localhost', port: 9000, protocol: 'http' });
    expect(parseEndpoint('[::1]:7000')).toEqual({ host: '[::1]', port: 7000, protocol: 'http' });
    expect(parseEndpoint('secretmanager.me-central2.rep.googleapis.com')).toEqual({
      host: 'secretmanager.me-central2.rep.googleapis.com',
      port: 443,
      protocol: 'https',
    });
    expect(parseEndpoint('https://private.example.com:8443/')).toEqual({ host: 'private.example.com', port: 8443, protocol: 'https' });
    expect(() => parseEndpoint('http://proxy.example.com:80')).toThrow(/only allowed to a loopback/);
    expect(() => parseEndpoint('not a host')).toThrow(/host:port/);
  });

  it('preflight checks the permissions with TestIamPermissions and reads "latest" as the current key', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const pf = await fx.target.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind).toBe('value');
    if (pf.current.kind === 'value') expect(pf.current.value.equals(new Secret(oldKey))).toBe(true);
    const tip = fx.emu.server.calls('POST', `/v1/${RESOURCE}:testIamPermissions`);
    expect(tip).toHaveLength(1);
    expect(JSON.parse(tip[0]!.rawBody).permissions).toEqual([
      'secretmanager.versions.access',
      'secretmanager.versions.add',
      'secretmanager.versions.list',
      'secretmanager.versions.disable',
    ]);
    // Read-only: no version added, no state changed.
    expect(fx.emu.versions(PROJECT, SECRET).map((v) => [v.version, v.state])).toEqual([['1', 'ENABLED']]);
  });

  it('preflight: a missing permission is an error naming it and its role; a missing secret is an error', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    fx.emu.denyPermission('secretmanager.versions.disable');
    const pf = await fx.target.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain(`secretmanager.versions.disable on ${RESOURCE}`);
    expect(pf.reason).toContain('roles/secretmanager.secretVersionManager');
    expect(pf.reason).not.toContain('secretmanager.versions.add');

    const other = await gcpFixture({ secret: 'does-not-exist' });
    try {
      const pf2 = await other.target.preflight();
      expect(pf2.status).toBe('blocked');
      expect(pf2.reason).toMatch(/has no projects\/keyrot-test\/secrets\/does-not-exist/);
    } finally {
      await other.close();
    }
  });

  it('preflight: a secret without versions will get its first; a disabled "latest" is reported unreadable', async () => {
    fx.emu.createSecret(PROJECT, SECRET);
    const pf = await fx.target.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.current.kind).toBe('absent');
    expect(pf.willCreate).toBe(true);

    fx.emu.seed(PROJECT, SECRET, oldKey);
    fx.emu.setState(PROJECT, SECRET, '1', 'DISABLED');
    const pf2 = await fx.target.preflight();
    expect(pf2.status).toBe('ready');
    expect(pf2.current.kind).toBe('unreadable');
    if (pf2.current.kind === 'unreadable') expect(pf2.current.reason).toMatch(/is in DISABLED state/);
  });

  it('write adds one version with the payload CRC32C; verify reads THAT version back by checksum and value', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    // Another secret of the project and the secret's own history must stay byte-identical.
    fx.emu.seed(PROJECT, 'other-secret', 'unrelated-value-1');
    const otherBefore = JSON.stringify(fx.emu.versions(PROJECT, 'other-secret'));
    const v1Before = JSON.stringify(fx.emu.versions(PROJECT, SECRET)[0]);

    const receipt = await fx.target.write(new Secret(newKey), opFor(newKey));
    expect(receipt).toEqual({ version: '2', previousVersion: '1', previousFingerprint: fingerprint(oldKey), added: true });
    expect(JSON.stringify(receipt)).not.toContain(newKey);

    const add = fx.emu.server.calls('POST', `/v1/${RESOURCE}:addVersion`);
    expect(add).toHaveLength(1);
    const body = JSON.parse(add[0]!.rawBody) as { payload: { data: string; dataCrc32c: string } };
    expect(Buffer.from(body.payload.data, 'base64').toString('utf8')).toBe(newKey);
    expect(body.payload.dataCrc32c).toBe(String(crc32c(newKey)));

    const v = await fx.target.verify(new Secret(newKey), opFor(newKey), receipt);
    expect(v.method).toBe('read-back');
    expect(v.detail).toContain('version 2');
    expect(v.detail).toContain('CRC32C verified');
    expect(fx.emu.server.calls('GET', `/v1/${RESOURCE}/versions/2:access`)).toHaveLength(1);

    expect(fx.emu.latest(PROJECT, SECRET)).toMatchObject({ version: '2', state: 'ENABLED', value: newKey });
    expect(JSON.stringify(fx.emu.versions(PROJECT, 'other-secret'))).toBe(otherBefore);
    expect(JSON.stringify(fx.emu.versions(PROJECT, SECRET)[0])).toBe(v1Before);

    // Verify of a different key is a mismatch, not a pass.
    const err = await failure(fx.target.verify(new Secret(testKey()), opFor(newKey), receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).toContain('version 2');
  });

  it('verify notices when another writer added a newer version after keyrot', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const receipt = await fx.target.write(new Secret(newKey), opFor(newKey));
    fx.emu.seed(PROJECT, SECRET, testKey());
    const err = await failure(fx.target.verify(new Secret(newKey), opFor(newKey), receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).toMatch(/"latest" of .* is version 3 .* another writer/);
  });

  it('an idempotent retry adds no second version, even when the first answer was lost', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const r1 = await fx.target.write(new Secret(newKey), opFor(newKey));
    const r2 = await fx.target.write(new Secret(newKey), opFor(newKey));
    expect(fx.emu.versions(PROJECT, SECRET)).toHaveLength(2);
    expect(r2).toEqual({ ...r1, added: false });

    // A lost answer: the version landed (seeded here as the service would have stored it) but
    // the engine retries write: the receipt still names the previous version and the old key.
    const fx2 = await gcpFixture({ secret: 'lost-answer' });
    try {
      fx2.emu.seed(PROJECT, 'lost-answer', oldKey);
      fx2.emu.seed(PROJECT, 'lost-answer', newKey);
      const r = await fx2.target.write(new Secret(newKey), opFor(newKey));
      expect(r).toEqual({ version: '2', previousVersion: '1', previousFingerprint: fingerprint(oldKey), added: false });
      expect(fx2.emu.server.calls('POST', /:addVersion$/)).toHaveLength(0);
    } finally {
      await fx2.close();
    }
  });

  it('restore adds a version holding the old key (latest = old), idempotently; the new version stays for the record', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const receipt = await fx.target.write(new Secret(newKey), opFor(newKey));
    await fx.target.restore(new Secret(oldKey), opFor(newKey), receipt);
    expect(fx.emu.versions(PROJECT, SECRET).map((v) => [v.version, v.state, v.value])).toEqual([
      ['1', 'ENABLED', oldKey],
      ['2', 'ENABLED', newKey],
      ['3', 'ENABLED', oldKey],
    ]);
    const read = await fx.target.read();
    expect(read.kind === 'value' && read.value.equals(new Secret(oldKey))).toBe(true);
    // Idempotent, with or without the receipt.
    await fx.target.restore(new Secret(oldKey), opFor(newKey), receipt);
    await fx.target.restore(new Secret(oldKey), opFor(newKey), undefined);
    expect(fx.emu.versions(PROJECT, SECRET)).toHaveLength(3);
    // The restored version was written with its checksum too.
    const adds = fx.emu.server.calls('POST', `/v1/${RESOURCE}:addVersion`);
    expect(JSON.parse(adds.at(-1)!.rawBody).payload.dataCrc32c).toBe(String(crc32c(oldKey)));
  });

  it('restore when the secret had no value: keyrot\'s version is disabled so "latest" is unreadable again', async () => {
    fx.emu.createSecret(PROJECT, SECRET);
    const receipt = await fx.target.write(new Secret(newKey), opFor(newKey));
    expect(receipt).toMatchObject({ version: '1', previousVersion: null, previousFingerprint: null });
    await fx.target.restore(null, opFor(newKey), receipt);
    expect(fx.emu.versions(PROJECT, SECRET).map((v) => [v.state, v.value])).toEqual([['DISABLED', newKey]]);
    expect((await fx.target.read()).kind).toBe('unreadable');
    await fx.target.restore(null, opFor(newKey), undefined);
    expect(fx.emu.server.calls('POST', /:disable$/)).toHaveLength(1);
  });

  it('finalize disables (never destroys) every enabled version holding the old key, with etags, and only those', async () => {
    const ancient = testKey();
    fx.emu.seed(PROJECT, SECRET, ancient); // 1: a key revoked long ago, not keyrot's to touch
    fx.emu.seed(PROJECT, SECRET, oldKey); // 2
    const op = opFor(newKey);
    const first = await fx.target.write(new Secret(newKey), op); // 3
    await fx.target.restore(new Secret(oldKey), op, first); // 4: old again
    const receipt = await fx.target.write(new Secret(newKey), op); // 5
    expect(receipt).toMatchObject({ version: '5', previousVersion: '4', previousFingerprint: fingerprint(oldKey) });
    const etagsBefore = new Map(fx.emu.versions(PROJECT, SECRET).map((v) => [v.version, v.etag]));

    await fx.target.finalize!(op, receipt);
    expect(fx.emu.versions(PROJECT, SECRET).map((v) => [v.version, v.state, v.value])).toEqual([
      ['1', 'ENABLED', ancient],
      ['2', 'DISABLED', oldKey],
      ['3', 'ENABLED', newKey],
      ['4', 'DISABLED', oldKey],
      ['5', 'ENABLED', newKey],
    ]);
    const disables = fx.emu.server.calls('POST', /:disable$/);
    expect(disables.map((r) => r.path)).toEqual([`/v1/${RESOURCE}/versions/4:disable`, `/v1/${RESOURCE}/versions/2:disable`]);
    for (const d of disables) {
      const v = /versions\/(\d+):/.exec(d.path)![1]!;
      expect(JSON.parse(d.rawBody).etag).toBe(etagsBefore.get(v));
    }
    expect(fx.emu.server.calls('POST', /:destroy$/)).toHaveLength(0);
    // Consumers still read the new key; finalize again changes nothing.
    expect(fx.emu.latest(PROJECT, SECRET)).toMatchObject({ state: 'ENABLED', value: newKey });
    await fx.target.finalize!(op, receipt);
    expect(fx.emu.server.calls('POST', /:disable$/)).toHaveLength(2);
  });

  it('finalize without a receipt finds the old key as the newest older version not holding the new one', async () => {
    const ancient = testKey();
    fx.emu.seed(PROJECT, SECRET, ancient);
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const op = opFor(newKey);
    await fx.target.write(new Secret(newKey), op);
    await fx.target.finalize!(op, undefined);
    expect(fx.emu.versions(PROJECT, SECRET).map((v) => v.state)).toEqual(['ENABLED', 'DISABLED', 'ENABLED']);
  });

  it('finalize refuses while "latest" does not hold the new key', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const op = opFor(newKey);
    const receipt = await fx.target.write(new Secret(newKey), op);
    await fx.target.restore(new Secret(oldKey), op, receipt);
    const err = await failure(fx.target.finalize!(op, receipt));
    expect(err.kind).toBe('conflict');
    expect(fx.emu.server.calls('POST', /:disable$/)).toHaveLength(0);
  });

  /**
   * Someone touches version 1 between keyrot's listing and its disable (a no-op enable still changes
   * the etag: https://cloud.google.com/secret-manager/docs/etags), so keyrot's disable carries a
   * stale etag. `answer` replaces the emulator's reply to that first disable, when given.
   */
  function touchVersion1BeforeFirstDisable(answer?: EmuResponse): void {
    const emu = fx.emu as unknown as { versionAction(req: EmuRequest): EmuResponse };
    const real = emu.versionAction.bind(fx.emu);
    let touched = false;
    emu.versionAction = (req) => {
      if (touched || !/versions\/1:disable$/.test(req.path)) return real(req);
      touched = true;
      fx.emu.setState(PROJECT, SECRET, '1', 'ENABLED'); // no-op: new etag
      return answer ?? real(req);
    };
  }

  it('finalize re-reads a version whose etag changed under it (the service\'s FAILED_PRECONDITION / 400) and carries on', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const op = opFor(newKey);
    const receipt = await fx.target.write(new Secret(newKey), op);
    touchVersion1BeforeFirstDisable();
    await fx.target.finalize!(op, receipt);
    expect(fx.emu.versions(PROJECT, SECRET)[0]!.state).toBe('DISABLED');
    const disables = fx.emu.server.calls('POST', /:disable$/);
    expect(disables.map((d) => d.status)).toEqual([400, 200]);
    expect(JSON.parse(disables[1]!.rawBody).etag).not.toBe(JSON.parse(disables[0]!.rawBody).etag);
  });

  it('the stale-etag answer is recognised without relying on its wording (Google does not document it)', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const op = opFor(newKey);
    const receipt = await fx.target.write(new Secret(newKey), op);
    touchVersion1BeforeFirstDisable({ status: 400, body: { error: { code: 400, message: 'Precondition check failed.', status: 'FAILED_PRECONDITION' } } });
    await fx.target.finalize!(op, receipt);
    expect(fx.emu.versions(PROJECT, SECRET)[0]!.state).toBe('DISABLED');
    expect(fx.emu.server.calls('POST', /:disable$/)).toHaveLength(2);
  });

  it('ABORTED (AIP-154 style endpoints) is handled the same way', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const op = opFor(newKey);
    const receipt = await fx.target.write(new Secret(newKey), op);
    touchVersion1BeforeFirstDisable({ status: 409, body: { error: { code: 409, message: 'The etag provided in the request does not match the current etag.', status: 'ABORTED' } } });
    await fx.target.finalize!(op, receipt);
    expect(fx.emu.versions(PROJECT, SECRET)[0]!.state).toBe('DISABLED');
  });

  it('a FAILED_PRECONDITION on disable that is not a concurrent change (same etag, still enabled) is not retried', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const op = opFor(newKey);
    const receipt = await fx.target.write(new Secret(newKey), op);
    fx.emu.server.failNext({
      method: 'POST',
      path: /:disable$/,
      body: { error: { code: 400, message: 'Precondition check failed.', status: 'FAILED_PRECONDITION' } },
      status: 400,
    });
    const err = await failure(fx.target.finalize!(op, receipt));
    expect(err.kind).toBe('conflict');
    expect(fx.emu.versions(PROJECT, SECRET)[0]!.state).toBe('ENABLED');
  });

  it('a version destroyed by someone else before the disable is left alone', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const op = opFor(newKey);
    const receipt = await fx.target.write(new Secret(newKey), op);
    const emu = fx.emu as unknown as { versionAction(req: EmuRequest): EmuResponse };
    const real = emu.versionAction.bind(fx.emu);
    let once = false;
    emu.versionAction = (req) => {
      if (!once && /versions\/1:disable$/.test(req.path)) {
        once = true;
        fx.emu.setState(PROJECT, SECRET, '1', 'DESTROYED');
      }
      return real(req);
    };
    await fx.target.finalize!(op, receipt);
    expect(fx.emu.versions(PROJECT, SECRET)[0]!.state).toBe('DESTROYED');
    expect(fx.emu.server.calls('POST', /:disable$/)).toHaveLength(1);
  });

  it('RESOURCE_EXHAUSTED is rate-limited and retryable, honours RetryInfo, and withRetry gets through', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    fx.emu.throttleNext({ retryDelayMs: 1500 });
    const err = await failure(fx.target.write(new Secret(newKey), opFor(newKey)));
    expect(err.kind).toBe('rate-limited');
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(1500);
    expect(err.message).toContain(RESOURCE);

    fx.emu.throttleNext({ times: 2, retryDelayMs: 2000 });
    const clock = fakeClock();
    let attempts = 0;
    const receipt = await withRetry(
      () => {
        attempts++;
        return fx.target.write(new Secret(newKey), opFor(newKey));
      },
      { clock, random: () => 0.5 },
    );
    expect(attempts).toBe(3);
    expect(clock.slept.every((ms) => ms >= 2000)).toBe(true);
    expect(receipt).toMatchObject({ version: '2', added: true });
    expect(fx.emu.versions(PROJECT, SECRET)).toHaveLength(2);
  });

  it('UNAVAILABLE and DEADLINE_EXCEEDED are retryable; the client itself does not retry', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    fx.emu.server.failNext({ status: 503, body: { error: { code: 503, message: 'The service is currently unavailable.', status: 'UNAVAILABLE' } } });
    const e1 = await failure(fx.target.read());
    expect(e1).toMatchObject({ kind: 'unavailable', retryable: true });
    fx.emu.server.failNext({ status: 504, body: { error: { code: 504, message: 'Deadline exceeded.', status: 'DEADLINE_EXCEEDED' } } });
    const e2 = await failure(fx.target.read());
    expect(e2).toMatchObject({ kind: 'timeout', retryable: true });
    // One request per failed call: the SDK's own retry is off.
    expect(fx.emu.server.requests.filter((r) => r.status === 503 || r.status === 504)).toHaveLength(2);
  });

  it('PERMISSION_DENIED names the IAM permission and the secret', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    fx.emu.denyPermission('secretmanager.versions.add');
    const err = await failure(fx.target.write(new Secret(newKey), opFor(newKey)));
    expect(err.kind).toBe('permission');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`Google Cloud denied secretmanager.versions.add on ${RESOURCE}`);
    expect(err.message).toContain('roles/secretmanager.secretVersionAdder');

    fx.emu.allowPermission('secretmanager.versions.add');
    fx.emu.denyPermission('secretmanager.versions.access');
    const err2 = await failure(fx.target.read());
    expect(err2.kind).toBe('permission');
    expect(err2.message).toContain('secretmanager.versions.access');
  });

  it('UNAUTHENTICATED is an auth error in product words that shows neither token nor key', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const goodToken = fx.emu.token;
    fx.emu.token = 'ya29.some-other-token-value';
    const err = await failure(fx.target.write(new Secret(newKey), opFor(newKey)));
    expect(err.kind).toBe('auth');
    expect(err.message).toContain('Google Cloud rejected the credentials (token env:GCP_ACCESS_TOKEN)');
    expect(err.message).not.toContain(goodToken);
    expect(err.message).not.toContain(newKey);
    const pf = await fx.target.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/rejected the credentials/);

    // A missing token variable is an auth error before any request.
    const t2 = await gcpSecretManager.create(
      { project: PROJECT, secret: SECRET, endpoint: fx.emu.endpoint, token: { kind: 'env', name: 'NOPE', raw: 'env:NOPE' } },
      testContext({ env: {}, name: 'gcp2' }),
    );
    const before = fx.emu.server.requests.length;
    const e2 = await failure(t2.read());
    expect(e2.kind).toBe('auth');
    expect(e2.message).toContain('env:NOPE');
    expect(fx.emu.server.requests.length).toBe(before);
    await t2.close?.();
  });

  it('a corrupted access response is caught by the CRC32C check in verify, and a re-read passes', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const receipt = await fx.target.write(new Secret(newKey), opFor(newKey));
    fx.emu.corruptNextAccess();
    const err = await failure(fx.target.verify(new Secret(newKey), opFor(newKey), receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('CRC32C');
    expect(err.message).not.toContain(newKey);

    fx.emu.corruptNextAccess();
    const clock = fakeClock();
    const v = await withRetry(() => fx.target.verify(new Secret(newKey), opFor(newKey), receipt), { clock, random: () => 0 });
    expect(v.detail).toContain('CRC32C verified');
    expect(clock.slept).toHaveLength(1);
  });

  it('the key value appears in no error message, whatever fails', async () => {
    fx.emu.seed(PROJECT, SECRET, oldKey);
    const key = new Secret(newKey);
    const errors: TargetError[] = [];
    fx.emu.throttleNext();
    errors.push(await failure(fx.target.write(key, opFor(newKey))));
    fx.emu.denyPermission('secretmanager.versions.add');
    errors.push(await failure(fx.target.write(key, opFor(newKey))));
    fx.emu.allowPermission('secretmanager.versions.add');
    const receipt = await fx.target.write(key, opFor(newKey));
    fx.emu.corruptNextAccess();
    errors.push(await failure(fx.target.verify(key, opFor(newKey), receipt)));
    errors.push(await failure(fx.target.verify(new Secret(oldKey), opFor(oldKey), receipt)));
    fx.emu.setState(PROJECT, SECRET, receipt.version as string, 'DISABLED');
    errors.push(await failure(fx.target.verify(key, opFor(newKey), receipt)));
    fx.emu.token = 'ya29.revoked';
    errors.push(await failure(fx.target.restore(new Secret(oldKey), opFor(newKey), receipt)));
    expect(errors.map((e) => e.kind)).toEqual(['rate-limited', 'permission', 'mismatch', 'mismatch', 'conflict', 'auth']);
    for (const e of errors) {
      for (const v of [newKey, oldKey]) {
        expect(e.message).not.toContain(v);
        expect(JSON.stringify(e)).not.toContain(v);
        expect(String(e)).not.toContain(v);
      }
    }
  });

  it('a missing secret is not-found in product words', async () => {
    const other = await gcpFixture({ secret: 'missing-secret' });
    try {
      const err = await failure(other.target.read());
      expect(err.kind).toBe('not-found');
      expect(err.message).toContain('Google Secret Manager has no projects/keyrot-test/secrets/missing-secret');
      expect(err.message).toContain('create the secret');
    } finally {
      await other.close();
    }
  });

  it('an endpoint nobody listens on is "unavailable" naming the endpoint, not a stack dump', async () => {
    const port = Number(fx.emu.endpoint.split(':')[1]);
    await fx.emu.stop();
    const t = await gcpSecretManager.create(
      { project: PROJECT, secret: SECRET, endpoint: `127.0.0.1:${port}`, token: { kind: 'env', name: 'T', raw: 'env:T' } },
      testContext({ env: { T: 'ya29.whatever' }, name: 'gcp3' }),
    );
    try {
      const err = await failure(t.read());
      expect(err.kind).toBe('unavailable');
      expect(err.message).toContain(`cannot reach Google Secret Manager at http://127.0.0.1:${port}`);
      expect(err.message).toContain('ECONNREFUSED');
      const pf = await t.preflight();
      expect(pf.status).toBe('blocked');
    } finally {
      await t.close?.();
    }
  });

  it('nothing leaves 127.0.0.1: every TCP connection of the client goes to the emulator', async () => {
    const seen: string[] = [];
    const orig = net.Socket.prototype.connect;
    // Record every outgoing connection of this worker (fetch, http agents, gRPC would all pass here).
    net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
      const o = args[0];
      const opts = (Array.isArray(o) ? o[0] : o) as { host?: string; path?: string; port?: number } | number;
      seen.push(typeof opts === 'object' && opts !== null ? String(opts.host ?? opts.path ?? 'localhost') : String(args[1] ?? 'localhost'));
      return (orig as (...a: unknown[]) => net.Socket).apply(this, args);
    } as typeof orig;
    try {
      const fresh = await gcpFixture({ secret: 'net-check' });
      try {
        fresh.emu.seed(PROJECT, 'net-check', oldKey);
        await fresh.target.preflight();
        const r = await fresh.target.write(new Secret(newKey), opFor(newKey));
        await fresh.target.verify(new Secret(newKey), opFor(newKey), r);
        fresh.emu.token = 'ya29.expired'; // a 401 must not send the client to oauth2.googleapis.com for a refresh
        await fresh.target.read().catch(() => undefined);
      } finally {
        await fresh.close();
      }
    } finally {
      net.Socket.prototype.connect = orig;
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set(['127.0.0.1']));
  });
});

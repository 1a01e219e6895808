import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { OAuth2Client } from 'google-auth-library';
import { GcpSecretManagerEmulator } from '../../emulators/gcp-secret-manager/emulator.ts';
import { crc32c } from '../../src/targets/gcp-secret-manager/crc32c.ts';
import { gcpError, parseGoogleError } from '../../src/targets/gcp-secret-manager/errors.ts';
import { demo } from '../../emulators/gcp-secret-manager/demo.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * The emulator against the official client, used directly (not through the adapter): the API
 * behaviour keyrot relies on must be what the client sees, errors included.
 */
const P = 'emu-project';
const S = 'emu-secret';
const parent = `projects/${P}/secrets/${S}`;
const NO_RETRY = { retry: null };

function clientFor(emu: GcpSecretManagerEmulator, token = emu.token): SecretManagerServiceClient {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: token });
  const [host, port] = emu.endpoint.split(':');
  return new SecretManagerServiceClient({ fallback: true, apiEndpoint: host, port: Number(port), protocol: 'http', authClient: auth });
}

/** The status the REST transport surfaces (a GaxiosError carrying Google's JSON body). */
async function statusOf(p: Promise<unknown>): Promise<{ status?: string; http?: number; message?: string }> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).not.toBeNull();
  const info = parseGoogleError(err);
  return { status: info.status, http: info.httpStatus, message: info.message };
}

describe('gcp-secret-manager emulator, driven by @google-cloud/secret-manager', () => {
  let emu: GcpSecretManagerEmulator;
  let c: SecretManagerServiceClient;

  beforeEach(async () => {
    emu = new GcpSecretManagerEmulator({ projectNumbers: { [P]: '424242424242' } });
    await emu.start();
    c = clientFor(emu);
  });
  afterEach(async () => {
    await c.close();
    await emu.stop();
  });

  it('add, access latest and by number; names carry the project number; CRC32C comes back', async () => {
    emu.createSecret(P, S);
    const value = testKey();
    const data = Buffer.from(value);
    const [v] = await c.addSecretVersion({ parent, payload: { data, dataCrc32c: crc32c(data) } }, NO_RETRY);
    expect(v.name).toBe('projects/424242424242/secrets/emu-secret/versions/1');
    expect(v.state).toBe('ENABLED'); // sent as 1 (numeric enums), decoded by the client
    expect(v.clientSpecifiedPayloadChecksum).toBe(true);
    expect(typeof v.etag).toBe('string');
    const [a] = await c.accessSecretVersion({ name: `${parent}/versions/latest` }, NO_RETRY);
    expect(a.name).toBe('projects/424242424242/secrets/emu-secret/versions/1');
    expect(Buffer.from(a.payload!.data as Uint8Array).toString()).toBe(value);
    expect(Number(a.payload!.dataCrc32c)).toBe(crc32c(value));
    // The project number is accepted in requests too.
    const [b] = await c.accessSecretVersion({ name: 'projects/424242424242/secrets/emu-secret/versions/1' }, NO_RETRY);
    expect(Buffer.from(b.payload!.data as Uint8Array).toString()).toBe(value);
    const [secret] = await c.getSecret({ name: parent }, NO_RETRY);
    expect(secret.name).toBe('projects/424242424242/secrets/emu-secret');
  });

  it('rejects a wrong dataCrc32c with INVALID_ARGUMENT and stores nothing', async () => {
    emu.createSecret(P, S);
    const data = Buffer.from(testKey());
    const r = await statusOf(c.addSecretVersion({ parent, payload: { data, dataCrc32c: (crc32c(data) + 1) % 2 ** 32 } }, NO_RETRY));
    expect(r).toMatchObject({ status: 'INVALID_ARGUMENT', http: 400 });
    expect(r.message).toMatch(/checksum/i);
    expect(emu.versions(P, S)).toHaveLength(0);
    // Without a checksum the service computes and stores one.
    await c.addSecretVersion({ parent, payload: { data } }, NO_RETRY);
    expect(emu.versions(P, S)[0]!.crc32c).toBe(crc32c(data));
    // Payloads above 64 KiB are refused.
    const big = await statusOf(c.addSecretVersion({ parent, payload: { data: Buffer.alloc(65537, 97) } }, NO_RETRY));
    expect(big.status).toBe('INVALID_ARGUMENT');
  });

  it('disabled and destroyed versions are unreadable (FAILED_PRECONDITION); "latest" is the newest whatever its state', async () => {
    emu.seed(P, S, 'value-one');
    emu.seed(P, S, 'value-two');
    const [listed] = await c.listSecretVersions({ parent }, { ...NO_RETRY, autoPaginate: false });
    const v2 = listed.find((v) => v.name!.endsWith('/2'))!;
    const [disabled] = await c.disableSecretVersion({ name: `${parent}/versions/2`, etag: v2.etag! }, NO_RETRY);
    expect(disabled.state).toBe('DISABLED');
    expect(disabled.etag).not.toBe(v2.etag);
    const r = await statusOf(c.accessSecretVersion({ name: `${parent}/versions/latest` }, NO_RETRY));
    expect(r).toEqual({ status: 'FAILED_PRECONDITION', http: 400, message: 'Secret Version [projects/424242424242/secrets/emu-secret/versions/2] is in DISABLED state.' });
    // A stale etag is FAILED_PRECONDITION / HTTP 400, as Secret Manager documents
    // (https://cloud.google.com/secret-manager/docs/etags), not AIP-154's ABORTED / 409.
    const stale = await statusOf(c.enableSecretVersion({ name: `${parent}/versions/2`, etag: v2.etag! }, NO_RETRY));
    expect(stale).toMatchObject({ status: 'FAILED_PRECONDITION', http: 400 });
    // The current one works; enable brings the data back.
    const [enabled] = await c.enableSecretVersion({ name: `${parent}/versions/2`, etag: disabled.etag! }, NO_RETRY);
    const [back] = await c.accessSecretVersion({ name: `${parent}/versions/latest` }, NO_RETRY);
    expect(Buffer.from(back.payload!.data as Uint8Array).toString()).toBe('value-two');
    // A no-operation update (enabling an enabled version) succeeds and still changes the etag
    // (same page: "A no-operation resource update also updates the resource etag").
    const [again] = await c.enableSecretVersion({ name: `${parent}/versions/2`, etag: enabled.etag! }, NO_RETRY);
    expect(again.etag).not.toBe(enabled.etag);
    expect((await statusOf(c.disableSecretVersion({ name: `${parent}/versions/2`, etag: enabled.etag! }, NO_RETRY))).status).toBe('FAILED_PRECONDITION');
    // Destroyed is terminal and its data is gone.
    await c.destroySecretVersion({ name: `${parent}/versions/1` }, NO_RETRY);
    expect(emu.versions(P, S)[0]).toMatchObject({ state: 'DESTROYED', value: null });
    expect((await statusOf(c.enableSecretVersion({ name: `${parent}/versions/1` }, NO_RETRY))).status).toBe('FAILED_PRECONDITION');
    expect((await statusOf(c.accessSecretVersion({ name: `${parent}/versions/1` }, NO_RETRY))).status).toBe('FAILED_PRECONDITION');
  });

  it('lists versions newest first, page by page, with a state filter', async () => {
    for (let i = 1; i <= 5; i++) emu.seed(P, S, `value-${i}`);
    emu.setState(P, S, '2', 'DISABLED');
    const names: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const [versions, , resp] = await c.listSecretVersions({ parent, pageSize: 2, pageToken }, { ...NO_RETRY, autoPaginate: false });
      names.push(...versions.map((v) => v.name!.split('/').pop()!));
      expect(resp.totalSize).toBe(5);
      pageToken = resp.nextPageToken || undefined;
      pages++;
    } while (pageToken);
    expect(pages).toBe(3);
    expect(names).toEqual(['5', '4', '3', '2', '1']);
    const [enabled, , filteredResp] = await c.listSecretVersions({ parent, filter: 'state:ENABLED' }, { ...NO_RETRY, autoPaginate: false });
    expect(enabled.map((v) => v.name!.split('/').pop())).toEqual(['5', '4', '3', '1']);
    // "The total number of SecretVersions but 0 when the ListSecretsRequest.filter field is set"
    // (REST reference, ListSecretVersionsResponse).
    expect(Number(filteredResp.totalSize ?? 0)).toBe(0);
    expect((await statusOf(c.listSecretVersions({ parent, pageToken: 'garbage' }, { ...NO_RETRY, autoPaginate: false }))).status).toBe('INVALID_ARGUMENT');
  });

  it('not found: a missing secret, a secret without versions, a missing version', async () => {
    expect(await statusOf(c.getSecret({ name: parent }, NO_RETRY))).toMatchObject({ status: 'NOT_FOUND', http: 404 });
    emu.createSecret(P, S);
    const latest = await statusOf(c.accessSecretVersion({ name: `${parent}/versions/latest` }, NO_RETRY));
    expect(latest.message).toBe('Secret [projects/424242424242/secrets/emu-secret] not found or has no versions.');
    expect((await statusOf(c.accessSecretVersion({ name: `${parent}/versions/9` }, NO_RETRY))).status).toBe('NOT_FOUND');
  });

  it('checks the bearer token: missing or wrong is 401 UNAUTHENTICATED', async () => {
    emu.seed(P, S, 'v');
    const bad = clientFor(emu, 'ya29.not-the-token');
    try {
      const r = await statusOf(bad.accessSecretVersion({ name: `${parent}/versions/latest` }, NO_RETRY));
      expect(r).toMatchObject({ status: 'UNAUTHENTICATED', http: 401 });
      expect(r.message).toMatch(/invalid authentication credentials/);
    } finally {
      await bad.close();
    }
    const res = await fetch(`${emu.server.url}/v1/${parent}/versions/latest:access`);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { status: string; details: Array<{ reason: string }> } };
    expect(body.error.status).toBe('UNAUTHENTICATED');
    expect(body.error.details[0]!.reason).toBe('CREDENTIALS_MISSING');
    expect(res.headers.get('www-authenticate')).toContain('Bearer');
  });

  it('denied permissions: 403 names the permission; testIamPermissions leaves it out', async () => {
    emu.seed(P, S, 'v');
    emu.denyPermission('secretmanager.versions.access');
    const r = await statusOf(c.accessSecretVersion({ name: `${parent}/versions/latest` }, NO_RETRY));
    expect(r).toMatchObject({ status: 'PERMISSION_DENIED', http: 403 });
    expect(r.message).toBe(`Permission 'secretmanager.versions.access' denied for resource '${parent}/versions/latest' (or it may not exist).`);
    const [held] = await c.testIamPermissions(
      { resource: parent, permissions: ['secretmanager.versions.access', 'secretmanager.versions.add', 'storage.objects.get'] },
      NO_RETRY,
    );
    expect(held.permissions).toEqual(['secretmanager.versions.add']);
  });

  it('throttling: 429 RESOURCE_EXHAUSTED with ErrorInfo and optional RetryInfo, then normal service', async () => {
    emu.seed(P, S, 'v');
    emu.throttleNext({ retryDelayMs: 3000 });
    const err = await c.accessSecretVersion({ name: `${parent}/versions/latest` }, NO_RETRY).catch((e: unknown) => e);
    const info = parseGoogleError(err);
    expect(info).toMatchObject({ status: 'RESOURCE_EXHAUSTED', httpStatus: 429, reason: 'RATE_LIMIT_EXCEEDED', retryAfterMs: 3000 });
    expect(info.message).toMatch(/^Quota exceeded for quota metric 'Access requests'/);
    const [ok] = await c.accessSecretVersion({ name: `${parent}/versions/latest` }, NO_RETRY);
    expect(Buffer.from(ok.payload!.data as Uint8Array).toString()).toBe('v');
  });

  it('answers unknown routes loudly in the Google error shape', async () => {
    const res = await fetch(`${emu.server.url}/v1/projects/${P}/locations`, { headers: { authorization: `Bearer ${emu.token}` } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/no route/);
  });

  it('the demo setup seeds the old key and hands back an entry with an env token reference', async () => {
    const oldKey = testKey();
    const d = await demo({ oldKey, workDir: '/tmp', varName: 'OPENAI_API_KEY' });
    if ('skip' in d) throw new Error(d.skip);
    try {
      const entry = d.targets[0]!;
      expect(entry).toMatchObject({ type: 'gcp-secret-manager', project: 'keyrot-demo', secret: 'openai-api-key', token: 'env:KEYROT_DEMO_GCP_TOKEN' });
      const token = d.env.KEYROT_DEMO_GCP_TOKEN!;
      const [host, port] = String(entry.endpoint).split(':');
      const auth = new OAuth2Client();
      auth.setCredentials({ access_token: token });
      const dc = new SecretManagerServiceClient({ fallback: true, apiEndpoint: host, port: Number(port), protocol: 'http', authClient: auth });
      const [a] = await dc.accessSecretVersion({ name: 'projects/keyrot-demo/secrets/openai-api-key/versions/latest' }, NO_RETRY);
      expect(Buffer.from(a.payload!.data as Uint8Array).toString()).toBe(oldKey);
      await dc.close();
    } finally {
      await d.stop();
    }
  });
});

describe('Google error mapping (both transports\' shapes)', () => {
  const ctx = { target: 'gcp', op: 'write', secret: 'projects/p/secrets/s', credential: 'Application Default Credentials', endpoint: 'secretmanager.googleapis.com' };

  it('maps a gRPC GoogleError (numeric code, decoded details) like the REST shape', () => {
    const grpcLike = Object.assign(new Error('8 RESOURCE_EXHAUSTED: Quota exceeded'), {
      code: 8,
      details: 'Quota exceeded',
      statusDetails: [{ retryDelay: { seconds: 4, nanos: 500_000_000 } }],
    });
    const e = gcpError(grpcLike, ctx);
    expect(e).toMatchObject({ kind: 'rate-limited', retryable: true, retryAfterMs: 4500 });

    const denied = Object.assign(new Error('7 PERMISSION_DENIED: ...'), {
      code: 7,
      details: "Permission 'secretmanager.versions.add' denied for resource 'projects/p/secrets/s' (or it may not exist).",
    });
    const d = gcpError(denied, ctx);
    expect(d.kind).toBe('permission');
    expect(d.message).toContain('Google Cloud denied secretmanager.versions.add on projects/p/secrets/s');

    expect(gcpError(Object.assign(new Error('16 UNAUTHENTICATED'), { code: 16 }), ctx).kind).toBe('auth');
    expect(gcpError(Object.assign(new Error('5 NOT_FOUND'), { code: 5 }), ctx).kind).toBe('not-found');
    expect(gcpError(Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }), ctx)).toMatchObject({ kind: 'unavailable', retryable: true });
    expect(gcpError(Object.assign(new Error('4 DEADLINE_EXCEEDED'), { code: 4 }), ctx)).toMatchObject({ kind: 'timeout', retryable: true });
  });

  it('missing Application Default Credentials and network failures are explained, not dumped', () => {
    const adc = gcpError(new Error('Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.'), ctx);
    expect(adc.kind).toBe('auth');
    expect(adc.message).toContain('gcloud auth application-default login');
    const refused = gcpError(Object.assign(new Error('request to http://127.0.0.1:1/v1/... failed'), { code: 'ECONNREFUSED' }), ctx);
    expect(refused).toMatchObject({ kind: 'unavailable', retryable: false });
    const reset = gcpError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), ctx);
    expect(reset).toMatchObject({ kind: 'unavailable', retryable: true });
    const weird = gcpError(new Error('something with a body {"payload":"x"}'), ctx);
    expect(weird.message).not.toContain('payload');
  });
});

import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { EmulatorServer, type EmuResponse } from '../../emulators/server.ts';
import { createProviderHttp, type ProviderHttpOptions } from '../../src/runtime/provider-http.ts';
import { registerSensitive } from '../../src/core/secret.ts';
import { systemClock } from '../../src/runtime/clock.ts';
import type { RateLimit } from '../../src/runtime/http.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';

/** The one HTTP-provider client, against a loopback server over real HTTP. */
let api: EmulatorServer;
let elsewhere: EmulatorServer;
/** What the next GET /answer returns. */
let answer: EmuResponse = { status: 200, body: {} };

beforeAll(async () => {
  api = new EmulatorServer({ name: 'api' });
  api.route('GET', '/v1/things/:id', (r) => ({ status: 200, body: { id: r.params.id, auth: r.headers.authorization, ua: r.headers['user-agent'], q: r.query.toString() } }));
  api.route('POST', '/v1/things', (r) => ({ status: 201, body: { got: r.body } }));
  api.route('GET', '/v1/answer', () => answer);
  api.route('POST', '/graphql', (r) => {
    const q = (r.body as { query: string }).query;
    if (q.includes('broken')) return { status: 200, body: { data: null, errors: [{ message: 'Not Authorized' }] } };
    if (q.includes('empty')) return { status: 200, body: { data: null } };
    return { status: 200, body: { data: { echo: (r.body as { variables: unknown }).variables } } };
  });
  await api.start();
  elsewhere = new EmulatorServer({ name: 'elsewhere' });
  await elsewhere.start();
});
afterAll(async () => {
  await api.stop();
  await elsewhere.stop();
});
beforeEach(() => api.clearFaults());

function client(o: Partial<ProviderHttpOptions<string>> = {}) {
  return createProviderHttp<string>({ provider: 'Acme', baseUrl: `${api.url}/v1/`, target: 'acme-target', clock: systemClock, ...o });
}


describe('provider HTTP client: calls', () => {
  it('speaks JSON to base URL + path, with the auth header, static headers and default query', async () => {
    const token = testKey('tok_');
    const http = client({ auth: async () => ({ authorization: `Bearer ${token}` }), headers: { 'user-agent': 'keyrot' }, query: { teamId: 't1' } });
    const got = await http.json<{ id: string; auth: string; ua: string; q: string }>({ op: 'read', path: '/things/x1', query: { until: '5' } });
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ id: 'x1', auth: `Bearer ${token}`, ua: 'keyrot', q: 'teamId=t1&until=5' });
    const posted = await http.json<{ got: unknown }>({ op: 'write', method: 'POST', path: '/things', body: { a: [1, 'é'] } });
    expect(posted.body.got).toEqual({ a: [1, 'é'] });
  });

  it('runs `before` ahead of every call (pacing) and shows every answer’s rate-limit state to onResponse', async () => {
    const seen: Array<{ op: string; status: number; rateLimit: RateLimit }> = [];
    let paced = 0;
    const http = client({
      before: async () => {
        paced++;
      },
      onResponse: (r) => seen.push({ op: r.op, status: r.status, rateLimit: r.rateLimit }),
    });
    const reset = Math.floor(Date.now() / 1000) + 30;
    answer = { status: 200, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) }, body: {} };
    const ok = await http.json({ op: 'read', path: '/answer' });
    expect(ok.rateLimit.remaining).toBe(0);
    expect(ok.rateLimit.resetAt).toBe(reset * 1000);
    // The budget is spent: the reset is a wait, exposed on the success too.
    expect(ok.rateLimit.retryAfterMs).toBeGreaterThan(25_000);
    answer = { status: 200, headers: { 'ratelimit-remaining': '4321' }, body: {} };
    await http.json({ op: 'read', path: '/answer' });
    answer = { status: 429, headers: { 'retry-after-ms': '1500' }, body: { error: { message: 'slow down' } } };
    await targetErrorOf(http.json({ op: 'write', path: '/answer' }));
    expect(paced).toBe(3);
    expect(seen.map((s) => [s.op, s.status, s.rateLimit.remaining])).toEqual([
      ['read', 200, 0],
      ['read', 200, 4321],
      ['write', 429, undefined],
    ]);
    expect(seen[2]!.rateLimit.retryAfterMs).toBe(1500);
  });
});

describe('provider HTTP client: failures', () => {
  it.each([
    [400, 'invalid', false],
    [401, 'auth', false],
    [403, 'permission', false],
    [404, 'not-found', false],
    [408, 'timeout', true],
    [409, 'conflict', false],
    [412, 'conflict', false],
    [422, 'invalid', false],
    [429, 'rate-limited', true],
    [500, 'unavailable', true],
    [502, 'unavailable', true],
    [503, 'unavailable', true],
    [504, 'timeout', true],
  ] as const)('HTTP %i is %s (retryable: %s)', async (status, kind, retryable) => {
    answer = { status, body: { error: { message: `status ${status}`, code: 'x' } } };
    const err = await targetErrorOf(client().json({ op: 'read', path: '/answer' }));
    expect(err).toMatchObject({ kind, retryable, status, target: 'acme-target', op: 'read' });
    expect(err.message).toBe(`Acme answered ${status}: status ${status}`);
  });

  it('429: Retry-After (seconds or a date), retry-after-ms and X-RateLimit-Reset become the wait', async () => {
    const http = client();
    answer = { status: 429, headers: { 'retry-after': '12' }, body: {} };
    expect((await targetErrorOf(http.json({ op: 'read', path: '/answer' }))).retryAfterMs).toBe(12_000);
    answer = { status: 429, headers: { 'retry-after': new Date(Date.now() + 20_000).toUTCString() }, body: {} };
    const dated = (await targetErrorOf(http.json({ op: 'read', path: '/answer' }))).retryAfterMs!;
    expect(dated).toBeGreaterThan(15_000);
    expect(dated).toBeLessThanOrEqual(20_000);
    answer = { status: 429, headers: { 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 40) }, body: {} };
    expect((await targetErrorOf(http.json({ op: 'read', path: '/answer' }))).retryAfterMs).toBeGreaterThan(35_000);
  });

  it('the provider’s message from its known shapes, redacted and cut; an unknown body gives status and code only', async () => {
    const key = testKey();
    registerSensitive(key);
    const http = client();
    answer = { status: 400, body: { id: 'invalid_params', message: `value ${key} is not allowed ${'x'.repeat(600)}` } };
    const known = await targetErrorOf(http.json({ op: 'write', path: '/answer' }));
    expect(known.message).not.toContain(key);
    expect(known.message).toContain('[redacted');
    expect(known.message.length).toBeLessThan(400);
    answer = { status: 400, body: { errors: [{ message: 'first' }, { message: 'second' }] } };
    expect((await targetErrorOf(http.json({ op: 'write', path: '/answer' }))).message).toBe('Acme answered 400: first; second');
    // Shapes keyrot does not know: never quoted (they may echo the request).
    answer = { status: 418, body: { echo: { value: key }, code: 'teapot' } };
    expect((await targetErrorOf(http.json({ op: 'write', path: '/answer' }))).message).toBe('Acme answered 418: teapot');
    answer = { status: 502, headers: { 'content-type': 'text/html' }, body: `<html>proxy error for ${key}</html>` };
    expect((await targetErrorOf(http.json({ op: 'write', path: '/answer' }))).message).toBe('Acme answered 502');
  });

  it('`describe` puts it in the provider’s words and may change kind, retryability and wait', async () => {
    const http = client({
      describe: (f) =>
        f.status === 403 && (f.body as { error?: { invalidToken?: boolean } }).error?.invalidToken
          ? { message: `the token is dead (${f.op})`, kind: 'auth' }
          : f.status === 429
            ? { message: 'throttled', retryAfterMs: f.rateLimit.retryAfterMs ?? 5000 }
            : undefined,
    });
    answer = { status: 403, body: { error: { code: 'forbidden', invalidToken: true } } };
    expect(await targetErrorOf(http.json({ op: 'preflight', path: '/answer' }))).toMatchObject({ kind: 'auth', message: 'the token is dead (preflight)', status: 403 });
    answer = { status: 429, body: {} };
    expect(await targetErrorOf(http.json({ op: 'write', path: '/answer' }))).toMatchObject({ kind: 'rate-limited', retryAfterMs: 5000, message: 'throttled' });
    answer = { status: 404, body: { message: 'no such thing' } };
    expect((await targetErrorOf(http.json({ op: 'read', path: '/answer' }))).message).toBe('Acme answered 404: no such thing');
  });

  it('network failures: a reset is retryable, a refused connection is not', async () => {
    api.failNext({ reset: true });
    expect(await targetErrorOf(client().json({ op: 'read', path: '/answer' }))).toMatchObject({ kind: 'unavailable', retryable: true, target: 'acme-target' });
    const closed = new EmulatorServer({ name: 'closed' });
    const url = await closed.start();
    await closed.stop();
    const refused = await targetErrorOf(createProviderHttp({ provider: 'Acme', baseUrl: url, clock: systemClock }).json({ op: 'read', path: '/x' }));
    expect(refused).toMatchObject({ kind: 'unavailable', retryable: false });
    expect(refused.message).toContain('ECONNREFUSED');
  });
});

describe('provider HTTP client: deadline', () => {
  it('a request accepted and never answered is a retryable timeout at the deadline', async () => {
    api.failNext({ hang: 'headers' });
    const t0 = Date.now();
    const err = await targetErrorOf(client({ timeoutMs: 300 }).json({ op: 'write', path: '/answer' }));
    const elapsed = Date.now() - t0;
    expect(err).toMatchObject({ kind: 'timeout', retryable: true, op: 'write' });
    expect(err.message).toMatch(/^Acme did not answer GET http:\/\/127\.0\.0\.1:\d+\/v1\/answer within 300ms$/);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2000);
  });

  it('the deadline covers the body: headers then silence is a timeout too', async () => {
    api.failNext({ hang: 'body' });
    const t0 = Date.now();
    const err = await targetErrorOf(client({ timeoutMs: 300 }).json({ op: 'read', path: '/answer' }));
    expect(err).toMatchObject({ kind: 'timeout', retryable: true });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('the caller’s abort ends the call at once, as a non-retryable cancellation', async () => {
    api.failNext({ hang: 'headers' });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = Date.now();
    const err = await targetErrorOf(client({ timeoutMs: 30_000 }).json({ op: 'read', path: '/answer', signal: ac.signal }));
    expect(err).toMatchObject({ kind: 'timeout', retryable: false });
    expect(err.message).toMatch(/^cancelled/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('provider HTTP client: redirects', () => {
  it.each([301, 302, 303, 307, 308])('%i is not followed: nothing reaches the Location, the error names it', async (status) => {
    const key = testKey();
    const before = elsewhere.requests.length;
    api.failNext({ status, headers: { location: `${elsewhere.url}/steal/here?token=secret-in-query` } });
    const http = client({ auth: async () => ({ 'project-access-token': 'custom-auth-header' }), endpointHint: 'fix `endpoint:` in targets.yaml' });
    const err = await targetErrorOf(http.json({ op: 'write', method: 'PATCH', path: '/answer', body: { value: key } }));
    expect(elsewhere.requests.length).toBe(before);
    expect(err).toMatchObject({ kind: 'invalid', retryable: false, status, target: 'acme-target', op: 'write' });
    expect(err.message).toBe(
      `Acme answered ${status}, a redirect to ${new URL(elsewhere.url).host}/steal/here: keyrot does not follow redirects (they would carry the credentials and the key elsewhere); fix \`endpoint:\` in targets.yaml`,
    );
    expect(err.message).not.toContain(key);
  });

  it('a relative Location is named on the provider’s host; a missing one says so', async () => {
    api.failNext({ status: 307, headers: { location: '/v2/moved?x=1' } });
    const err = await targetErrorOf(client().json({ op: 'read', path: '/answer' }));
    expect(err.message).toContain(`a redirect to ${new URL(api.url).host}/v2/moved:`);
    expect(api.requests.some((r) => r.path === '/v2/moved')).toBe(false);
    api.failNext({ status: 302 });
    expect((await targetErrorOf(client().json({ op: 'read', path: '/answer' }))).message).toContain('a redirect to no Location');
  });
});

describe('provider HTTP client: GraphQL', () => {
  const gql = (o: Partial<ProviderHttpOptions<string>> = {}) => createProviderHttp<string>({ provider: 'Acme', baseUrl: `${api.url}/graphql`, target: 't', clock: systemClock, ...o });

  it('POSTs {query, variables} and returns data', async () => {
    expect(await gql().graphql('read', 'query Q { echo }', { a: 1 })).toEqual({ echo: { a: 1 } });
  });

  it('errors (HTTP 200) go through describeGraphQL; no data at all is unavailable', async () => {
    const err = await targetErrorOf(gql({ describeGraphQL: (m, op) => ({ message: `${op}: token refused (${m})`, kind: 'auth' }) }).graphql('write', 'query broken { x }', {}));
    expect(err).toMatchObject({ kind: 'auth', retryable: false, message: 'write: token refused (Not Authorized)', op: 'write' });
    expect(await targetErrorOf(gql().graphql('read', 'query broken { x }', {}))).toMatchObject({ kind: 'invalid', retryable: false, message: 'Acme refused read: Not Authorized' });
    expect(await targetErrorOf(gql().graphql('read', 'query empty { x }', {}))).toMatchObject({ kind: 'unavailable', retryable: true });
  });
});

import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fakeClock } from '../../src/runtime/clock.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { liveCheck } from '../../src/keys/kinds.ts';
import { createOpenAIIssuer, matchesRedacted, serviceAccountName, waitForDisuse, type KeyIssuer } from '../../src/keys/openai-admin.ts';
import { newRotationId } from '../../src/state/journal.ts';
import { Secret } from '../../src/core/secret.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * The OpenAI Admin API issuer (issue 6) against the loopback emulator: minting, duplicate-free
 * retries, revocation, matching by redacted value, usage, the disuse gate, and error words.
 * Every key is generated at run time; every value seen is checked absent from every error.
 */
const clock = fakeClock(Date.parse('2026-03-01T09:00:00Z'));
const emu = new OpenAIEmulator({ now: () => clock.now() });
const PROJECT = 'proj_keyrot_test';
const values: string[] = [];
let adminKey: string;

function remember<T extends string>(v: T): T {
  values.push(v);
  return v;
}

function issuer(over: { token?: string; project?: string } = {}): KeyIssuer {
  return createOpenAIIssuer({
    endpoint: emu.endpoint,
    adminKey: new Secret(over.token ?? adminKey),
    project: over.project ?? PROJECT,
    clock,
  });
}

/** No key value in anything an error can be turned into. */
function expectNoKeyIn(err: unknown): void {
  const texts = [JSON.stringify(err), String(err), inspect(err, { depth: 5 }), (err as Error).message ?? ''];
  for (const t of texts) for (const v of values) expect(t.includes(v), `a key value leaked into: ${t.slice(0, 200)}`).toBe(false);
}

async function failure(p: Promise<unknown>): Promise<TargetError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TargetError);
    expectNoKeyIn(err);
    return err as TargetError;
  }
  throw new Error('expected a failure');
}

let rot = 0;
/** Real rotation ids (rot_<time>_<random>): revocation checks the account name keyrot gave it. */
const rotationId = () => newRotationId(Date.parse('2026-03-01T09:00:00Z'), () => `t${++rot}`);

beforeAll(async () => {
  await emu.start();
  emu.addProject(PROJECT);
  adminKey = remember(emu.addAdminKey());
});

afterEach(() => emu.server.clearFaults());

afterAll(async () => {
  await emu.stop();
});

describe('issue (mint through a project service account)', () => {
  it('names the account keyrot-<env>-<rotation>, sets expiry and returns a live key', async () => {
    const id = rotationId();
    const minted = await issuer().issue({ env: 'production', rotationId: id, expiresSeconds: 30 * 86_400 });
    remember(minted.key.reveal());
    expect(minted.name).toBe(`keyrot-production-${id}`);
    expect(minted.name).toBe(serviceAccountName('production', id));
    expect(minted.key.reveal()).toMatch(/^sk-svcacct-/);
    expect(minted.keyId).toBe(emu.keyIdOf(minted.key.reveal()));
    expect(minted.serviceAccountId).toMatch(/^svc_acct_/);
    expect(minted.expiresAt).toBe(Math.floor(clock.now() / 1000) * 1000 + 30 * 86_400_000);
    const live = await liveCheck(minted.key, emu.endpoint, clock);
    expect(live.status).toBe('valid');
    // The request asked for the expiry; the value is nowhere but in the Secret.
    const post = emu.server.calls('POST', `/v1/organization/projects/${PROJECT}/service_accounts`).at(-1)!;
    expect(JSON.parse(post.rawBody)).toEqual({ name: minted.name, expires_in_seconds: 30 * 86_400 });
    expect(JSON.stringify(minted)).not.toContain(minted.key.reveal());
    expect(inspect(minted)).not.toContain(minted.key.reveal());
  });

  it('sends no expires_in_seconds without expiresSeconds and reports expiresAt null', async () => {
    const minted = await issuer().issue({ env: 'staging', rotationId: rotationId() });
    remember(minted.key.reveal());
    expect(minted.expiresAt).toBeNull();
    const post = emu.server.calls('POST', `/v1/organization/projects/${PROJECT}/service_accounts`).at(-1)!;
    expect(JSON.parse(post.rawBody)).toEqual({ name: minted.name });
  });

  it('refuses an expiry outside 1 s – 365 d before calling OpenAI', async () => {
    const before = emu.server.requests.length;
    const err = await failure(issuer().issue({ env: 'production', rotationId: rotationId(), expiresSeconds: 400 * 86_400 }));
    expect(err.kind).toBe('invalid');
    expect(emu.server.requests.length).toBe(before);
  });

  it('a lost creation response, retried, leaves exactly one account and kills the orphan key', async () => {
    const id = rotationId();
    const name = serviceAccountName('production', id);
    emu.dropNextResponse('POST', `/v1/organization/projects/${PROJECT}/service_accounts`);
    const lost = await failure(issuer().issue({ env: 'production', rotationId: id }));
    expect(lost.retryable).toBe(true);
    const orphan = emu.serviceAccounts(PROJECT).filter((sa) => sa.name === name);
    expect(orphan).toHaveLength(1); // created server-side, never seen by the client

    const minted = await issuer().issue({ env: 'production', rotationId: id });
    remember(minted.key.reveal());
    const accounts = emu.serviceAccounts(PROJECT).filter((sa) => sa.name === name);
    expect(accounts).toHaveLength(1);
    expect(accounts[0]!.id).toBe(minted.serviceAccountId);
    expect(accounts[0]!.id).not.toBe(orphan[0]!.id);
    expect(emu.isValid(minted.key.reveal())).toBe(true);
  });

  it('through withRetry (the engine path) a dropped response still yields one account', async () => {
    const id = rotationId();
    emu.dropNextResponse('POST', `/v1/organization/projects/${PROJECT}/service_accounts`);
    const retries: number[] = [];
    const minted = await withRetry(() => issuer().issue({ env: 'dev', rotationId: id }), {
      clock,
      random: () => 0,
      onRetry: (i) => retries.push(i.attempt),
    });
    remember(minted.key.reveal());
    expect(retries).toEqual([1]);
    expect(emu.serviceAccounts(PROJECT).filter((sa) => sa.name === serviceAccountName('dev', id))).toHaveLength(1);
  });

  it('lists service accounts across pages before creating', async () => {
    const p = 'proj_many_accounts';
    emu.addProject(p);
    for (let i = 0; i < 105; i++) emu.addServiceAccount(p, `other-${i}`, []);
    const dup = emu.addServiceAccount(p, serviceAccountName('prod', 'r-late'), []);
    const minted = await issuer({ project: p }).issue({ env: 'prod', rotationId: 'r-late' });
    remember(minted.key.reveal());
    const named = emu.serviceAccounts(p).filter((sa) => sa.name === 'keyrot-prod-r-late');
    expect(named.map((sa) => sa.id)).toEqual([minted.serviceAccountId]);
    expect(named[0]!.id).not.toBe(dup.id);
    const lists = emu.server.calls('GET', `/v1/organization/projects/${p}/service_accounts`);
    expect(lists.length).toBeGreaterThanOrEqual(2);
    expect(lists[1]!.query).toMatch(/after=svc_acct_/);
  });
});

describe('find', () => {
  it('finds a key by redacted value across pages, and by id', async () => {
    const p = 'proj_find';
    emu.addProject(p);
    for (let i = 0; i < 110; i++) emu.addUserKey(p, remember(testKey()));
    const held = remember(testKey());
    const id = emu.addUserKey(p, held, { name: 'backend' });
    const iss = issuer({ project: p });
    const byValue = await iss.find({ key: new Secret(held) });
    expect(byValue).toMatchObject({ id, name: 'backend', owner: { type: 'user' }, lastUsedAt: null });
    expect(JSON.stringify(byValue)).not.toContain(held.slice(-8));
    expect(await iss.find({ keyId: id })).toMatchObject({ id });
    expect(await iss.find({ key: new Secret(remember(testKey())) })).toBeNull();
    expect(await iss.find({ keyId: 'key_doesnotexist' })).toBeNull();
    const q = emu.server.calls('GET', `/v1/organization/projects/${p}/api_keys`);
    expect(q.length).toBeGreaterThanOrEqual(2);
    expect(q[0]!.query).toContain('owner_project_access=any');
  });

  it('refuses a recorded id that belongs to another key', async () => {
    const a = remember(testKey());
    const b = remember(testKey());
    const idA = emu.addUserKey(PROJECT, a);
    emu.addUserKey(PROJECT, b);
    const err = await failure(issuer().find({ keyId: idA, key: new Secret(b) }));
    expect(err.kind).toBe('mismatch');
  });

  it('matchesRedacted accepts the usual masks and refuses too little evidence', () => {
    const k = new Secret(remember(testKey()));
    const v = k.reveal();
    expect(matchesRedacted(`${v.slice(0, 11)}****${v.slice(-4)}`, k)).toBe(true);
    expect(matchesRedacted(`${v.slice(0, 11)}...${v.slice(-4)}`, k)).toBe(true);
    expect(matchesRedacted(`sk-proj-…${v.slice(-4)}`, k)).toBe(true);
    expect(matchesRedacted('sk-proj-********', k)).toBe(false);
    expect(matchesRedacted(`sk-proj-****${v.slice(-3)}`, k)).toBe(false);
    expect(matchesRedacted(`sk-proj-abc****${v.slice(-4)}`, k)).toBe(v.startsWith('sk-proj-abc'));
    expect(matchesRedacted(null, k)).toBe(false);
  });
});

describe('revoke', () => {
  it('deletes the service account of a minted key: the key then answers 401; again → alreadyGone', async () => {
    const iss = issuer();
    const minted = await iss.issue({ env: 'production', rotationId: rotationId() });
    remember(minted.key.reveal());
    const recorded = { serviceAccountId: minted.serviceAccountId, keyId: minted.keyId, hint: minted.key.hint, env: 'production' };
    const r1 = await iss.revoke(recorded);
    expect(r1).toMatchObject({ revoked: true, alreadyGone: false });
    const dead = await failure(liveCheck(minted.key, emu.endpoint, clock));
    expect(dead.status).toBe(401);
    const r2 = await iss.revoke(recorded);
    expect(r2).toMatchObject({ revoked: true, alreadyGone: true });
    expectNoKeyIn(r1);
  });

  it('matches a service-account key by value and deletes its account', async () => {
    const iss = issuer();
    const minted = await iss.issue({ env: 'staging', rotationId: rotationId() });
    remember(minted.key.reveal());
    const r = await iss.revoke({ key: minted.key });
    expect(r).toMatchObject({ revoked: true, alreadyGone: false });
    expect(r.detail).toContain(minted.serviceAccountId);
    expect(emu.isValid(minted.key.reveal())).toBe(false);
    expect(emu.serviceAccounts(PROJECT).some((sa) => sa.id === minted.serviceAccountId)).toBe(false);
    // Not listed any more and rejected by OpenAI: already gone.
    expect(await iss.revoke({ key: minted.key })).toMatchObject({ revoked: true, alreadyGone: true });
    // By id only, after deletion: gone too.
    expect(await iss.revoke({ keyId: minted.keyId, hint: minted.key.hint })).toMatchObject({ revoked: true, alreadyGone: true });
  });

  it('revokes a user-owned key by deleting the project API key; idempotent', async () => {
    const v = remember(testKey());
    const id = emu.addUserKey(PROJECT, v);
    const iss = issuer();
    const r1 = await iss.revoke({ key: new Secret(v) });
    expect(r1).toMatchObject({ revoked: true, alreadyGone: false });
    expect(emu.server.calls('DELETE', `/v1/organization/projects/${PROJECT}/api_keys/${id}`)).toHaveLength(1);
    expect(emu.isValid(v)).toBe(false);
    expect(await iss.revoke({ keyId: id, hint: new Secret(v).hint })).toMatchObject({ revoked: true, alreadyGone: true });
    expect(await iss.revoke({ key: new Secret(v) })).toMatchObject({ revoked: true, alreadyGone: true });
  });

  it('leaves a service account that owns other keys', async () => {
    const sa = emu.addServiceAccount(PROJECT, 'shared-backend', [remember(testKey('sk-svcacct-')), remember(testKey('sk-svcacct-'))]);
    const r = await issuer().revoke({ key: new Secret(sa.values[0]!) });
    expect(r).toMatchObject({ revoked: false, alreadyGone: false });
    expect(r.detail).toContain('other key');
    expect(emu.isValid(sa.values[0]!)).toBe(true);
    expect(emu.isValid(sa.values[1]!)).toBe(true);
  });

  it('says so when a still-valid key is not in the project', async () => {
    const v = remember(testKey());
    emu.addKey(v);
    const r = await issuer().revoke({ key: new Secret(v) });
    expect(r).toMatchObject({ revoked: false, alreadyGone: false });
    expect(r.detail).toContain('another project');
    expectNoKeyIn(r);
  });
});

describe('lastUsedAt and usage', () => {
  it('reads last_used_at in ms: null, then useKey, then a GET /models with the key', async () => {
    const v = remember(testKey());
    const id = emu.addUserKey(PROJECT, v);
    const iss = issuer();
    expect(await iss.lastUsedAt(id)).toBeNull();
    const at = Date.parse('2026-02-20T10:00:00.750Z');
    emu.useKey(v, at);
    expect(await iss.lastUsedAt(id)).toBe(Math.floor(at / 1000) * 1000);
    await liveCheck(new Secret(v), emu.endpoint, clock);
    expect(await iss.lastUsedAt(id)).toBe(Math.floor(clock.now() / 1000) * 1000);
    const gone = await failure(iss.lastUsedAt('key_nope'));
    expect(gone.kind).toBe('not-found');
  });

  it('sums usage of one key over 40 days across pages, by model and by day', async () => {
    const v = remember(testKey());
    const other = remember(testKey());
    const id = emu.addUserKey(PROJECT, v);
    emu.addUserKey(PROJECT, other);
    const now = clock.now();
    const day = 86_400_000;
    emu.useKey(v, now - 2 * day, { model: 'gpt-4o', requests: 3, inputTokens: 300, outputTokens: 30 });
    emu.useKey(v, now - 2 * day, { model: 'gpt-4o-mini', requests: 5, inputTokens: 50, outputTokens: 5 });
    emu.useKey(v, now - 35 * day, { model: 'gpt-4o', requests: 7, inputTokens: 700, outputTokens: 70 });
    emu.useKey(v, now - 50 * day, { model: 'gpt-4o', requests: 100 }); // outside the window
    emu.useKey(other, now - 1 * day, { model: 'gpt-4o', requests: 1000 });
    const u = await issuer().usage(id, 40, now);
    expect(u.requests).toBe(15);
    expect(u.inputTokens).toBe(1050);
    expect(u.outputTokens).toBe(105);
    expect(u.byModel).toEqual({ 'gpt-4o': 10, 'gpt-4o-mini': 5 });
    expect(u.buckets.length).toBeGreaterThanOrEqual(40);
    expect(u.buckets.reduce((n, b) => n + b.requests, 0)).toBe(15);
    const calls = emu.server.calls('GET', '/v1/organization/usage/completions');
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls[0]!.query).toContain('group_by[]=api_key_id');
    expect(calls[0]!.query).toContain(`api_key_ids[]=${id}`);
    expect(calls[0]!.query).toContain('bucket_width=1d');
    expect(calls.at(-1)!.query).toContain('page=');
  });
});

describe('waitForDisuse (fake clock)', () => {
  async function mintedUserKey(): Promise<{ v: string; id: string }> {
    const v = remember(testKey());
    return { v, id: emu.addUserKey(PROJECT, v) };
  }

  it('idle once the margin has passed when the last use is before the switch', async () => {
    const { v, id } = await mintedUserKey();
    const since = clock.now();
    emu.useKey(v, since - 5_000);
    const polls: Array<number | null> = [];
    const r = await waitForDisuse(issuer(), {
      keyId: id, since, marginMs: 120_000, limitMs: 600_000, pollMs: 30_000, clock, onPoll: (p) => polls.push(p.lastUsedAt),
    });
    expect(r).toEqual({ idle: true });
    expect(clock.now()).toBe(since + 120_000);
    expect(polls).toEqual([Math.floor((since - 5_000) / 1000) * 1000]);
  });

  it('idle for a never-used key and for a key deleted while waiting', async () => {
    const a = await mintedUserKey();
    const since = clock.now();
    expect(await waitForDisuse(issuer(), { keyId: a.id, since, marginMs: 0, limitMs: 60_000, pollMs: 10_000, clock })).toEqual({ idle: true });

    const b = await mintedUserKey();
    const since2 = clock.now();
    emu.useKey(b.v, since2 + 1_000);
    let n = 0;
    const r = await waitForDisuse(issuer(), {
      keyId: b.id, since: since2, marginMs: 10_000, limitMs: 600_000, pollMs: 60_000, clock,
      onPoll: () => {
        if (++n === 2) emu.revokeKey(b.v);
      },
    });
    expect(r).toEqual({ idle: true });
    expect(n).toBe(2);
  });

  it('still used after the switch: polls until the limit and reports the last use', async () => {
    const { v, id } = await mintedUserKey();
    const since = clock.now();
    const start = clock.now();
    emu.useKey(v, since + 1_000); // a late caller right after the switch
    let polls = 0;
    const r = await waitForDisuse(issuer(), {
      keyId: id, since, marginMs: 60_000, limitMs: 900_000, pollMs: 60_000, clock,
      onPoll: (p) => {
        polls++;
        // Something outside the inventory keeps calling OpenAI with the old key.
        emu.useKey(v, p.at);
      },
    });
    expect(r.idle).toBe(false);
    if (r.idle) return;
    expect(clock.now()).toBe(start + 900_000);
    expect(polls).toBe(15); // at margin (60 s), then every 60 s up to 900 s
    expect(r.lastUsedAt).toBe(Math.floor((start + 840_000) / 1000) * 1000);
    expect(r.detail).toContain(id);
    expect(r.detail).toContain(new Date(r.lastUsedAt).toISOString());
    expectNoKeyIn(r);
  });

  it('rides out a 429 during polling (waits its retry-after)', async () => {
    const { v, id } = await mintedUserKey();
    const since = clock.now();
    emu.useKey(v, since + 2_000);
    emu.rateLimitNext(45, { path: `/v1/organization/projects/${PROJECT}/api_keys/${id}` });
    const start = clock.now();
    const slept = clock.slept.length;
    const r = await waitForDisuse(issuer(), { keyId: id, since, marginMs: 30_000, limitMs: 120_000, pollMs: 5_000, clock });
    expect(r.idle).toBe(false);
    expect(clock.slept.slice(slept, slept + 2)).toEqual([30_000, 45_000]);
    expect(clock.now() - start).toBe(120_000);
  });

  it('never waits less than the margin, even with a shorter limit', async () => {
    const { id } = await mintedUserKey();
    const start = clock.now();
    const r = await waitForDisuse(issuer(), { keyId: id, since: start, marginMs: 30_000, limitMs: 10_000, pollMs: 5_000, clock });
    expect(r).toEqual({ idle: true });
    expect(clock.now() - start).toBe(30_000);
  });

  it('throws when no poll ever succeeds', async () => {
    const { id } = await mintedUserKey();
    emu.server.failNext({ path: `/v1/organization/projects/${PROJECT}/api_keys/${id}`, status: 503, body: { error: { message: 'down' } }, times: 10 });
    const err = await failure(waitForDisuse(issuer(), { keyId: id, since: clock.now(), marginMs: 0, limitMs: 20_000, pollMs: 5_000, clock }));
    expect(err.kind).toBe('unavailable');
  });
});

describe('errors in product words, never a key', () => {
  it('401: OpenAI rejected the admin key (key.admin.token)', async () => {
    const err = await failure(issuer({ token: remember(testKey('sk-admin-')) }).issue({ env: 'production', rotationId: rotationId() }));
    expect(err.kind).toBe('auth');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('OpenAI rejected the admin key (key.admin.token)');
  });

  it('403: names the missing scope', async () => {
    const readOnly = remember(emu.addAdminKey({ scopes: ['api.management.read'] }));
    const err = await failure(issuer({ token: readOnly }).issue({ env: 'production', rotationId: rotationId() }));
    expect(err.kind).toBe('permission');
    expect(err.message).toContain('the admin key needs the scope api.management.write');
    const noUsage = remember(emu.addAdminKey({ scopes: ['api.management.read', 'api.management.write'] }));
    const u = await failure(issuer({ token: noUsage }).usage('key_x', 7, clock.now()));
    expect(u.kind).toBe('permission');
    expect(u.message).toContain('api.usage.read');
  });

  it('a project key as admin token: permission, and says it is not an admin key', async () => {
    const v = remember(testKey());
    emu.addUserKey(PROJECT, v);
    const err = await failure(issuer({ token: v }).find({ keyId: 'key_x' }));
    expect(err.kind).toBe('permission');
    expect(err.message).toContain('not an sk-admin- key');
  });

  it('"insufficient permissions" answered with 401 is still a permission problem', async () => {
    emu.server.failNext({
      status: 401,
      body: { error: { message: 'You have insufficient permissions for this operation. Missing scopes: api.management.read. Check that you have the correct role in your organization.', type: 'invalid_request_error', param: null, code: null } },
    });
    const err = await failure(issuer().find({ keyId: 'key_x' }));
    expect(err.kind).toBe('permission');
    expect(err.message).toContain('api.management.read');
  });

  it('404: names the project, also where a 404 could mean "already gone"', async () => {
    const iss = issuer({ project: 'proj_missing' });
    const a = await failure(iss.issue({ env: 'production', rotationId: rotationId() }));
    expect(a.kind).toBe('not-found');
    expect(a.message).toContain('"proj_missing"');
    expect(a.message).toContain('key.admin.project');
    const b = await failure(iss.revoke({ serviceAccountId: 'svc_acct_x', keyId: 'key_x', hint: 'sk-svcacct-...abcd', env: 'production' }));
    expect(b.kind).toBe('not-found');
    expect(b.message).toContain('proj_missing');
    const c = await failure(iss.revoke({ keyId: 'key_x', hint: 'sk-proj-...abcd' }));
    expect(c.kind).toBe('not-found');
  });

  it('429: retryable rate-limited with retry-after, and retry-after-ms', async () => {
    emu.rateLimitNext(7);
    const a = await failure(issuer().find({ keyId: 'key_x' }));
    expect(a).toMatchObject({ kind: 'rate-limited', retryable: true, retryAfterMs: 7000, status: 429 });
    expect(a.message).toContain('rate limit');
    emu.rateLimitNext(7, { retryAfterMs: 1500 });
    const b = await failure(issuer().lastUsedAt('key_x'));
    expect(b.retryAfterMs).toBe(1500);
  });

  it('a provider message echoing a key is redacted', async () => {
    const v = remember(testKey());
    emu.server.failNext({ status: 400, body: { error: { message: `bad key ${v}`, type: 'invalid_request_error', param: null, code: null } } });
    const err = await failure(issuer().find({ keyId: 'key_x' }));
    expect(err.kind).toBe('invalid');
  });
});

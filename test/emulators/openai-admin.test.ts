import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OpenAIEmulator, redactedValue } from '../../emulators/openai/index.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * The OpenAI emulator's Admin API on the wire (docs/openai.md, openai-node's generated
 * types): shapes, pagination, auth and scopes, error objects, and that the original emulator API
 * (addKey / revokeKey / isValid / rateLimitNext) behaves as before.
 */
let now = Date.parse('2026-04-01T12:00:00Z');
const emu = new OpenAIEmulator({ now: () => now });
const P = 'proj_emu';
let admin: string;

async function call(method: string, path: string, token: string | undefined, body?: unknown) {
  const res = await fetch(`${emu.server.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

beforeAll(async () => {
  await emu.start();
  emu.addProject(P);
  admin = emu.addAdminKey();
});
afterEach(() => emu.server.clearFaults());
afterAll(() => emu.stop());

describe('existing behaviour', () => {
  it('addKey / revokeKey / isValid / rateLimitNext on /v1/models', async () => {
    const k = testKey();
    expect((await call('GET', '/v1/models', k)).status).toBe(401);
    emu.addKey(k);
    expect(emu.isValid(k)).toBe(true);
    const ok = await call('GET', '/v1/models', k);
    expect(ok.status).toBe(200);
    expect(ok.body.object).toBe('list');
    emu.rateLimitNext(2);
    const limited = await call('GET', '/v1/models', k);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(limited.body.error.code).toBe('rate_limit_exceeded');
    emu.revokeKey(k);
    const gone = await call('GET', '/v1/models', k);
    expect(gone.status).toBe(401);
    expect(gone.body.error).toMatchObject({ type: 'invalid_request_error', param: null, code: 'invalid_api_key' });
    expect(JSON.stringify(gone.body)).not.toContain(k);
    expect(new OpenAIEmulator().endpoint).toBe('/v1');
  });
});

describe('admin keys', () => {
  it('are sk-admin-, made at run time, only for /v1/organization', async () => {
    expect(admin).toMatch(/^sk-admin-[A-Za-z0-9_-]{40,}$/);
    expect(emu.addAdminKey()).not.toBe(admin);
    expect((await call('GET', '/v1/models', admin)).status).toBe(401);
    expect((await call('GET', `/v1/organization/projects/${P}`, admin)).body).toMatchObject({ object: 'organization.project', id: P, status: 'active' });
  });

  it('refuse a project key (403 missing scope), an unknown key (401) and no key (401)', async () => {
    const k = testKey();
    emu.addUserKey(P, k);
    const r = await call('GET', `/v1/organization/projects/${P}/api_keys`, k);
    expect(r.status).toBe(403);
    expect(r.body.error.message).toContain('Missing scopes: api.management.read');
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', param: null, code: null });
    expect((await call('GET', `/v1/organization/projects/${P}/api_keys`, testKey('sk-admin-'))).body.error.code).toBe('invalid_api_key');
    expect((await call('GET', `/v1/organization/projects/${P}/api_keys`, undefined)).status).toBe(401);
  });

  it('enforce scopes', async () => {
    const ro = emu.addAdminKey({ scopes: ['api.management.read'] });
    expect((await call('GET', `/v1/organization/projects/${P}/service_accounts`, ro)).status).toBe(200);
    const w = await call('POST', `/v1/organization/projects/${P}/service_accounts`, ro, { name: 'x' });
    expect(w.status).toBe(403);
    expect(w.body.error.message).toContain('api.management.write');
  });
});

describe('service accounts', () => {
  it('create returns the key value once; the key works; delete kills it', async () => {
    const c = await call('POST', `/v1/organization/projects/${P}/service_accounts`, admin, { name: 'keyrot-prod-r1', expires_in_seconds: 3600 });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ object: 'organization.project.service_account', name: 'keyrot-prod-r1', role: 'member' });
    expect(c.body.id).toMatch(/^svc_acct_/);
    const key = c.body.api_key;
    expect(key).toMatchObject({ object: 'organization.project.service_account.api_key', expires_at: Math.floor(now / 1000) + 3600 });
    expect(key.value).toMatch(/^sk-svcacct-/);
    expect((await call('GET', '/v1/models', key.value)).status).toBe(200);

    const list = await call('GET', `/v1/organization/projects/${P}/service_accounts`, admin);
    expect(JSON.stringify(list.body)).not.toContain(key.value);
    const one = await call('GET', `/v1/organization/projects/${P}/service_accounts/${c.body.id}`, admin);
    expect(one.body).toEqual({ object: 'organization.project.service_account', id: c.body.id, name: 'keyrot-prod-r1', role: 'member', created_at: Math.floor(now / 1000) });
    const k = await call('GET', `/v1/organization/projects/${P}/api_keys/${key.id}`, admin);
    expect(k.body).toMatchObject({
      object: 'organization.project.api_key',
      id: key.id,
      redacted_value: redactedValue(key.value),
      owner: { type: 'service_account', service_account: { id: c.body.id, name: 'keyrot-prod-r1' } },
    });
    expect(k.body.redacted_value).toMatch(/^sk-svcacct-.{3}\*{4}.{4}$/);
    expect(k.body.last_used_at).toBe(Math.floor(now / 1000)); // the /models call above

    const api = await call('DELETE', `/v1/organization/projects/${P}/api_keys/${key.id}`, admin);
    expect(api.status).toBe(400); // a service account's key goes with its account only

    const d = await call('DELETE', `/v1/organization/projects/${P}/service_accounts/${c.body.id}`, admin);
    expect(d.body).toEqual({ object: 'organization.project.service_account.deleted', id: c.body.id, deleted: true });
    expect((await call('GET', '/v1/models', key.value)).status).toBe(401);
    expect((await call('DELETE', `/v1/organization/projects/${P}/service_accounts/${c.body.id}`, admin)).status).toBe(404);
  });

  it('validates name and expires_in_seconds; create_service_account_only has no key', async () => {
    const base = `/v1/organization/projects/${P}/service_accounts`;
    expect((await call('POST', base, admin, {})).body.error.param).toBe('name');
    expect((await call('POST', base, admin, { name: 'x', expires_in_seconds: 0 })).body.error.param).toBe('expires_in_seconds');
    expect((await call('POST', base, admin, { name: 'x', expires_in_seconds: 31_536_001 })).status).toBe(400);
    const only = await call('POST', base, admin, { name: 'bare', create_service_account_only: true });
    expect(only.body).toMatchObject({ role: 'none', api_key: null });
  });

  it('an expired key answers 401', async () => {
    const c = await call('POST', `/v1/organization/projects/${P}/service_accounts`, admin, { name: 'short', expires_in_seconds: 60 });
    expect((await call('GET', '/v1/models', c.body.api_key.value)).status).toBe(200);
    now += 61_000;
    expect((await call('GET', '/v1/models', c.body.api_key.value)).status).toBe(401);
  });

  it('dropNextResponse performs the creation but the client gets no answer', async () => {
    const before = emu.serviceAccounts(P).length;
    emu.dropNextResponse('POST', `/v1/organization/projects/${P}/service_accounts`);
    await expect(call('POST', `/v1/organization/projects/${P}/service_accounts`, admin, { name: 'lost' })).rejects.toThrow();
    expect(emu.serviceAccounts(P).length).toBe(before + 1);
    expect(emu.serviceAccounts(P).some((s) => s.name === 'lost')).toBe(true);
    // One-shot.
    expect((await call('GET', `/v1/organization/projects/${P}/service_accounts`, admin)).status).toBe(200);
  });
});

describe('project API keys', () => {
  it('list with cursor pagination, user owner, delete a user key', async () => {
    const p = 'proj_list';
    emu.addProject(p);
    const ids = Array.from({ length: 5 }, () => emu.addUserKey(p, testKey()));
    const page1 = await call('GET', `/v1/organization/projects/${p}/api_keys?limit=2`, admin);
    expect(page1.body).toMatchObject({ object: 'list', first_id: ids[0], last_id: ids[1], has_more: true });
    expect(page1.body.data[0].owner).toMatchObject({ type: 'user', user: { email: expect.any(String) } });
    expect(page1.body.data[0].owner_project_access).toBe('active');
    const page3 = await call('GET', `/v1/organization/projects/${p}/api_keys?limit=2&after=${ids[3]}`, admin);
    expect(page3.body).toMatchObject({ first_id: ids[4], last_id: ids[4], has_more: false });
    expect((await call('GET', `/v1/organization/projects/${p}/api_keys?limit=101`, admin)).status).toBe(400);
    const del = await call('DELETE', `/v1/organization/projects/${p}/api_keys/${ids[0]}`, admin);
    expect(del.body).toEqual({ object: 'organization.project.api_key.deleted', id: ids[0], deleted: true });
    expect((await call('GET', `/v1/organization/projects/${p}/api_keys/${ids[0]}`, admin)).status).toBe(404);
  });

  it('unknown project: 404 in the OpenAI error shape', async () => {
    const r = await call('GET', '/v1/organization/projects/proj_nope/api_keys', admin);
    expect(r.status).toBe(404);
    expect(Object.keys(r.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  });
});

describe('usage/completions', () => {
  it('buckets per day, grouped by key and model, bracketed arrays, paginated', async () => {
    const v = testKey();
    const id = emu.addUserKey(P, v);
    const day = 86_400;
    const t0 = Math.floor(now / 1000 / day) * day - 10 * day; // midnight, 10 days ago
    emu.useKey(v, (t0 + 3600) * 1000, { model: 'gpt-4o', requests: 2, inputTokens: 20, outputTokens: 4 });
    emu.useKey(v, (t0 + 7200) * 1000, { model: 'gpt-4o-mini', requests: 1 });
    emu.useKey(v, (t0 + 5 * day) * 1000, { model: 'gpt-4o', requests: 4 });
    const q = `start_time=${t0}&end_time=${t0 + 10 * day}&bucket_width=1d&limit=4&group_by[]=api_key_id&group_by[]=model&api_key_ids[]=${id}`;
    const p1 = await call('GET', `/v1/organization/usage/completions?${q}`, admin);
    expect(p1.body).toMatchObject({ object: 'page', has_more: true });
    expect(p1.body.data).toHaveLength(4);
    expect(p1.body.data[0]).toMatchObject({ object: 'bucket', start_time: t0, end_time: t0 + day });
    const r0 = p1.body.data[0].results;
    expect(r0).toHaveLength(2);
    expect(r0.find((r: any) => r.model === 'gpt-4o')).toMatchObject({
      object: 'organization.usage.completions.result', api_key_id: id, num_model_requests: 2, input_tokens: 20, output_tokens: 4,
    });
    const p2 = await call('GET', `/v1/organization/usage/completions?${q}&page=${p1.body.next_page}`, admin);
    expect(p2.body.data[1]).toMatchObject({ start_time: t0 + 5 * day });
    expect(p2.body.data[1].results[0].num_model_requests).toBe(4);
    const p3 = await call('GET', `/v1/organization/usage/completions?${q}&page=${p2.body.next_page}`, admin);
    expect(p3.body).toMatchObject({ has_more: false, next_page: null });
    expect(p3.body.data).toHaveLength(2);
    // Ungrouped: one aggregate result with null dimensions.
    const flat = await call('GET', `/v1/organization/usage/completions?start_time=${t0}&end_time=${t0 + day}&api_key_ids=${id}`, admin);
    expect(flat.body.data[0].results).toEqual([expect.objectContaining({ num_model_requests: 3, api_key_id: null, model: null })]);
    expect((await call('GET', '/v1/organization/usage/completions?bucket_width=1d', admin)).body.error.param).toBe('start_time');
    expect((await call('GET', `/v1/organization/usage/completions?start_time=${t0}&limit=32`, admin)).status).toBe(400);
  });
});

describe('organization/costs', () => {
  it('1d buckets of organization.costs.result, grouped by project_id and line_item, paged by next_page, admin key only', async () => {
    const day = 86_400;
    const t0 = Math.floor(now / 1000 / day) * day - 2 * day; // two days before "today", UTC midnight
    emu.addCost('proj_costs_a', 'gpt-4o, input', (t0 + 3600) * 1000, 1.25);
    emu.addCost('proj_costs_a', 'gpt-4o, output', (t0 + 7200) * 1000, 0.5);
    emu.addCost('proj_costs_b', 'gpt-4o, input', (t0 + day + 60) * 1000, 2);
    const q = `start_time=${t0}&end_time=${t0 + 3 * day}&bucket_width=1d&limit=2&group_by[]=project_id&group_by[]=line_item`;

    const p1 = await call('GET', `/v1/organization/costs?${q}`, admin);
    expect(p1.status).toBe(200);
    expect(p1.body).toMatchObject({ object: 'page', has_more: true });
    expect(p1.body.data).toHaveLength(2);
    expect(p1.body.data[0]).toMatchObject({ object: 'bucket', start_time: t0, end_time: t0 + day });
    expect(p1.body.data[0].results).toEqual([
      { object: 'organization.costs.result', amount: { value: 1.25, currency: 'usd' }, line_item: 'gpt-4o, input', project_id: 'proj_costs_a' },
      { object: 'organization.costs.result', amount: { value: 0.5, currency: 'usd' }, line_item: 'gpt-4o, output', project_id: 'proj_costs_a' },
    ]);
    expect(p1.body.data[1].results[0]).toMatchObject({ amount: { value: 2 }, project_id: 'proj_costs_b' });
    const p2 = await call('GET', `/v1/organization/costs?${q}&page=${p1.body.next_page}`, admin);
    expect(p2.body).toMatchObject({ has_more: false, next_page: null });
    expect(p2.body.data).toHaveLength(1);

    // Ungrouped: one result per bucket with null project_id / line_item.
    const flat = await call('GET', `/v1/organization/costs?start_time=${t0}&end_time=${t0 + day}`, admin);
    expect(flat.body.data[0].results).toEqual([{ object: 'organization.costs.result', amount: { value: 1.75, currency: 'usd' }, line_item: null, project_id: null }]);

    expect((await call('GET', `/v1/organization/costs?start_time=${t0}&limit=181`, admin)).status).toBe(400);
    expect((await call('GET', `/v1/organization/costs?start_time=${t0}&bucket_width=1h`, admin)).body.error.param).toBe('bucket_width');
    expect((await call('GET', `/v1/organization/costs?start_time=${t0}`, undefined)).status).toBe(401);
    expect((await call('GET', `/v1/organization/costs?start_time=${t0}`, testKey())).status).toBe(401);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { CF_LIMIT, CloudflareEmulator } from '../../emulators/cloudflare-workers/emulator.ts';
import { testKey } from '../helpers/keys.ts';

/** The emulator itself behaves like Cloudflare's v4 API where the adapter relies on it (raw fetch, no adapter). */
let emu: CloudflareEmulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

const ACCOUNT = 'a1b2c3';

async function start(): Promise<CloudflareEmulator> {
  emu = new CloudflareEmulator();
  await emu.start();
  return emu;
}

async function api(path: string, init: { token?: string; method?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${emu!.url}${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: JSON.parse(text) as Record<string, any> };
}

const worker = `/accounts/${ACCOUNT}/workers/scripts/api-worker`;

describe('cloudflare emulator', () => {
  it('answers in the v4 envelope; an unknown token, or one for another account, is code 10000', async () => {
    const e = await start();
    e.seedWorker(ACCOUNT, 'api-worker');
    const token = e.addToken({ accounts: [ACCOUNT] });
    const ok = await api(`${worker}/secrets`, { token });
    expect(ok.body).toEqual({ success: true, errors: [], messages: [], result: [] });
    const unknown = await api(`${worker}/secrets`, { token: 'nope' });
    expect([unknown.status, unknown.body.errors]).toEqual([401, [{ code: 10000, message: 'Authentication error' }]]);
    e.seedAccount('other');
    const elsewhere = await api('/accounts/other/workers/scripts', { token });
    expect([elsewhere.status, elsewhere.body.errors[0].code]).toEqual([403, 10000]);
    const missing = await api(`/accounts/${ACCOUNT}/workers/scripts/nope/secrets`, { token });
    expect([missing.status, missing.body.errors]).toEqual([404, [{ code: 10007, message: 'This Worker does not exist on your account.' }]]);
  });

  it('a secret change is a new version deployed to all traffic; secrets and versions never show the text', async () => {
    const e = await start();
    const old = testKey();
    e.seedWorker(ACCOUNT, 'api-worker', { secrets: { OPENAI_API_KEY: old }, vars: { MODE: 'prod' } });
    const token = e.addToken();
    const next = testKey();
    const put = await api(`${worker}/secrets`, { token, method: 'PUT', body: { name: 'OPENAI_API_KEY', text: next, type: 'secret_text' } });
    expect(put.body.result).toEqual({ name: 'OPENAI_API_KEY', type: 'secret_text' });
    expect(e.versions(ACCOUNT, 'api-worker').map((v) => [v.number, v.triggeredBy])).toEqual([[1, 'upload'], [2, 'secret']]);
    const deployments = (await api(`${worker}/deployments`, { token })).body.result.deployments;
    expect(deployments[0]).toMatchObject({ strategy: 'percentage', annotations: { 'workers/triggered_by': 'secret' } });
    const versions = (await api(`${worker}/versions?per_page=1`, { token })).body.result.items;
    expect(versions).toHaveLength(1);
    expect(deployments[0].versions).toEqual([{ version_id: versions[0].id, percentage: 100 }]);
    const detail = (await api(`${worker}/versions/${versions[0].id}`, { token })).body.result;
    expect(detail.resources.bindings).toEqual([{ name: 'MODE', type: 'plain_text', text: 'prod' }, { name: 'OPENAI_API_KEY', type: 'secret_text' }]);
    expect(e.peekSecret(ACCOUNT, 'api-worker', 'OPENAI_API_KEY')).toBe(next);
    const list = await api(`${worker}/secrets`, { token });
    for (const r of [put, list]) for (const k of [old, next]) expect(r.text).not.toContain(k);
    expect((await api(`${worker}/secrets/OPENAI_API_KEY`, { token, method: 'DELETE' })).body.result).toBeNull();
    expect(e.versions(ACCOUNT, 'api-worker')).toHaveLength(3);
    expect((await api(`${worker}/secrets`, { token })).body.result).toEqual([]);
  });

  it('refuses a secret change (10215) while the latest version is not the one serving all traffic', async () => {
    const e = await start();
    e.seedWorker(ACCOUNT, 'api-worker');
    const token = e.addToken();
    const first = e.versions(ACCOUNT, 'api-worker')[0]!.id;
    const uploaded = e.uploadVersion(ACCOUNT, 'api-worker');
    const body = { name: 'K', text: 'v', type: 'secret_text' };
    expect((await api(`${worker}/secrets`, { token, method: 'PUT', body })).body.errors[0].code).toBe(10215);
    e.deployVersions(ACCOUNT, 'api-worker', [{ version_id: uploaded, percentage: 10 }, { version_id: first, percentage: 90 }]);
    expect((await api(`${worker}/secrets`, { token, method: 'PUT', body })).body.errors[0].code).toBe(10215);
    e.deployVersions(ACCOUNT, 'api-worker', [{ version_id: uploaded, percentage: 100 }]);
    expect((await api(`${worker}/secrets`, { token, method: 'PUT', body })).status).toBe(200);
  });

  it('a read-only token cannot change secrets; the rate limit is on every answer, 429 with retry-after when spent', async () => {
    const e = await start();
    e.seedWorker(ACCOUNT, 'api-worker');
    const reader = e.addToken({ access: 'read' });
    expect((await api(`${worker}/secrets`, { token: reader, method: 'PUT', body: { name: 'K', text: 'v', type: 'secret_text' } })).status).toBe(403);
    const ok = await api(`${worker}/secrets`, { token: reader });
    expect(ok.headers.get('ratelimit')).toMatch(new RegExp(`^"default";r=${CF_LIMIT - 2};t=\\d+$`));
    expect(ok.headers.get('ratelimit-policy')).toBe(`"default";q=${CF_LIMIT};w=300`);
    e.setRemaining(reader, 0, 90_000);
    const limited = await api(`${worker}/secrets`, { token: reader });
    expect([limited.status, limited.body.errors[0].code, limited.headers.get('retry-after')]).toEqual([429, 971, '90']);
  });

  it('lists accounts page by page and an account’s Workers', async () => {
    const e = await start();
    for (const id of ['acc1', 'acc2', 'acc3']) e.seedWorker(id, `w-${id}`);
    const token = e.addToken({ accounts: ['acc1', 'acc3'] });
    const p1 = await api('/accounts?per_page=1', { token });
    expect(p1.body.result.map((a: { id: string }) => a.id)).toEqual(['acc1']);
    expect(p1.body.result_info).toMatchObject({ page: 1, per_page: 1, total_count: 2 });
    expect((await api('/accounts?per_page=1&page=3', { token })).body.result).toEqual([]);
    expect((await api('/accounts/acc3/workers/scripts', { token })).body.result.map((w: { id: string }) => w.id)).toEqual(['w-acc3']);
  });
});

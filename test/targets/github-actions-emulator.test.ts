import { afterEach, describe, expect, it } from 'vitest';
import sodium from 'libsodium-wrappers';
import { GitHubEmulator, type GitHubEmulatorOptions } from '../../emulators/github-actions/emulator.ts';
import { testKey } from '../helpers/keys.ts';

/** The emulator itself behaves like GitHub's REST API where the adapter relies on it (raw fetch, no adapter). */
let emu: GitHubEmulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

async function start(opts: GitHubEmulatorOptions = {}): Promise<GitHubEmulator> {
  emu = new GitHubEmulator(opts);
  await emu.start();
  return emu;
}

async function api(path: string, init: { token?: string; scheme?: string; method?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = { accept: 'application/vnd.github+json' };
  if (init.token) headers.authorization = `${init.scheme ?? 'token'} ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(emu!.url + path, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}

/** Seals as GitHub's guide does (libsodium-wrappers, Base64 ORIGINAL). */
async function seal(value: string, key: string): Promise<string> {
  await sodium.ready;
  return sodium.to_base64(sodium.crypto_box_seal(sodium.from_string(value), sodium.from_base64(key, sodium.base64_variants.ORIGINAL)), sodium.base64_variants.ORIGINAL);
}

describe('github emulator', () => {
  it('answers GitHub’s 401s, accepts both `token` and `Bearer`, and puts the rate limit on every answer', async () => {
    const e = await start();
    const token = e.addToken();
    e.seedRepo('acme/api');
    const none = await api('/repos/acme/api/actions/secrets');
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ message: 'Requires authentication', documentation_url: 'https://docs.github.com/rest', status: '401' });
    expect((await api('/repos/acme/api/actions/secrets', { token: 'nope' })).body?.message).toBe('Bad credentials');
    for (const scheme of ['token', 'Bearer']) {
      const ok = await api('/repos/acme/api/actions/secrets', { token, scheme });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-ratelimit-limit')).toBe('5000');
      expect(ok.headers.get('x-ratelimit-resource')).toBe('core');
      expect(Number(ok.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    }
    expect(Number((await api('/repos/acme/api', { token })).headers.get('x-ratelimit-remaining'))).toBe(4997);
  });

  it('a spent primary limit is a 403 with x-ratelimit-remaining 0; a secondary limit a 403 with retry-after', async () => {
    const e = await start();
    const token = e.addToken();
    e.seedRepo('acme/api');
    e.failNextWithSecondaryLimit({ retryAfterSeconds: 7 });
    const secondary = await api('/repos/acme/api', { token });
    expect(secondary.status).toBe(403);
    expect(secondary.headers.get('retry-after')).toBe('7');
    expect(secondary.body?.message).toMatch(/secondary rate limit/);
    e.exhaustRateLimit(token, 30_000);
    const primary = await api('/repos/acme/api', { token });
    expect(primary.status).toBe(403);
    expect(primary.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(primary.body?.message).toMatch(/^API rate limit exceeded for user ID \d+\./);
    expect(Number(primary.headers.get('x-ratelimit-reset')) * 1000).toBeGreaterThan(Date.now() + 20_000);
  });

  it('secrets are sealed to the store’s public key: 201 created, 204 updated, metadata only, never a value', async () => {
    const e = await start();
    const token = e.addToken();
    e.seedRepo('acme/api');
    const key = (await api('/repos/acme/api/actions/secrets/public-key', { token })).body!;
    expect(key.key_id).toMatch(/^\d{18}$/);
    expect(Buffer.from(key.key, 'base64')).toHaveLength(32);
    const v1 = testKey();
    const created = await api('/repos/acme/api/actions/secrets/openai_api_key', { token, method: 'PUT', body: { encrypted_value: await seal(v1, key.key), key_id: key.key_id } });
    expect([created.status, created.body]).toEqual([201, {}]);
    const v2 = testKey();
    const updated = await api('/repos/acme/api/actions/secrets/OPENAI_API_KEY', { token, method: 'PUT', body: { encrypted_value: await seal(v2, key.key), key_id: key.key_id } });
    expect([updated.status, updated.text]).toEqual([204, '']);
    expect(e.peekSecret({ repo: 'acme/api' }, 'OPENAI_API_KEY')?.value).toBe(v2);
    const one = await api('/repos/acme/api/actions/secrets/OPENAI_API_KEY', { token });
    expect(Object.keys(one.body!).sort()).toEqual(['created_at', 'name', 'updated_at']);
    expect(one.body!.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const list = await api('/repos/acme/api/actions/secrets', { token });
    expect(list.body).toMatchObject({ total_count: 1, secrets: [{ name: 'OPENAI_API_KEY' }] });
    for (const r of [created, updated, one, list]) for (const v of [v1, v2]) expect(r.text).not.toContain(v);
    expect((await api('/repos/acme/api/actions/secrets/OPENAI_API_KEY', { token, method: 'DELETE' })).status).toBe(204);
    expect((await api('/repos/acme/api/actions/secrets/OPENAI_API_KEY', { token })).status).toBe(404);
  });

  it('refuses a stale key id, a value that does not open, and names GitHub does not allow (422)', async () => {
    const e = await start();
    const token = e.addToken();
    e.seedRepo('acme/api');
    const key = (await api('/repos/acme/api/actions/secrets/public-key', { token })).body!;
    const sealed = await seal(testKey(), key.key);
    e.rotatePublicKey({ repo: 'acme/api' });
    expect((await api('/repos/acme/api/actions/secrets/A', { token, method: 'PUT', body: { encrypted_value: sealed, key_id: key.key_id } })).status).toBe(422);
    const fresh = (await api('/repos/acme/api/actions/secrets/public-key', { token })).body!;
    expect((await api('/repos/acme/api/actions/secrets/A', { token, method: 'PUT', body: { encrypted_value: sealed, key_id: fresh.key_id } })).status).toBe(422);
    for (const name of ['GITHUB_TOKEN_X', '1ABC', 'A-B']) {
      const r = await api(`/repos/acme/api/actions/secrets/${name}`, { token, method: 'PUT', body: { encrypted_value: await seal('x', fresh.key), key_id: fresh.key_id } });
      expect(r.status, name).toBe(422);
    }
    expect((await api('/repos/acme/api/actions/secrets/A', { token, method: 'PUT', body: { key_id: fresh.key_id } })).body?.message).toMatch(/"encrypted_value" wasn't supplied/);
  });

  it('fine-grained permissions: 403 naming the permission GitHub accepts; 404 for what the token cannot see', async () => {
    const e = await start();
    e.seedRepo('acme/api', { environments: ['production'] });
    e.seedRepo('acme/private');
    const readOnly = e.addToken({ repos: ['acme/api'], permissions: { secrets: 'read', environments: 'read' } });
    const key = (await api('/repos/acme/api/actions/secrets/public-key', { token: readOnly })).body!;
    const denied = await api('/repos/acme/api/actions/secrets/A', { token: readOnly, method: 'PUT', body: { encrypted_value: await seal('x', key.key), key_id: key.key_id } });
    expect(denied.status).toBe(403);
    expect(denied.body?.message).toBe('Resource not accessible by personal access token');
    expect(denied.headers.get('x-accepted-github-permissions')).toBe('secrets=write');
    expect((await api('/repos/acme/private/actions/secrets', { token: readOnly })).status).toBe(404);
    const noEnv = e.addToken({ permissions: { secrets: 'write' } });
    expect((await api('/repos/acme/api/environments/production/secrets', { token: noEnv })).headers.get('x-accepted-github-permissions')).toBe('environments=read');
    expect((await api('/repos/acme/api/environments/staging/secrets', { token: e.addToken() })).status).toBe(404);
  });

  it('organisation secrets need a visibility; `selected` keeps the repository ids', async () => {
    const e = await start();
    const token = e.addToken();
    e.seedOrg('acme');
    const api1 = e.seedRepo('acme/api');
    const key = (await api('/orgs/acme/actions/secrets/public-key', { token })).body!;
    const sealed = await seal(testKey(), key.key);
    expect((await api('/orgs/acme/actions/secrets/K', { token, method: 'PUT', body: { encrypted_value: sealed, key_id: key.key_id } })).status).toBe(422);
    const put = await api('/orgs/acme/actions/secrets/K', { token, method: 'PUT', body: { encrypted_value: sealed, key_id: key.key_id, visibility: 'selected', selected_repository_ids: [api1.id] } });
    expect(put.status).toBe(201);
    const got = await api('/orgs/acme/actions/secrets/K', { token });
    expect(got.body).toMatchObject({ name: 'K', visibility: 'selected' });
    expect(got.body!.selected_repositories_url).toMatch(/\/orgs\/acme\/actions\/secrets\/K\/repositories$/);
    expect((await api('/orgs/acme/actions/secrets/K/repositories', { token })).body).toMatchObject({ total_count: 1, repositories: [{ id: api1.id, full_name: 'acme/api' }] });
  });

  it('lists page by page with a Link header', async () => {
    const e = await start();
    const token = e.addToken();
    e.seedRepo('acme/api');
    for (let i = 0; i < 5; i++) e.setSecret({ repo: 'acme/api' }, `S${i}`, 'v');
    const p1 = await api('/repos/acme/api/actions/secrets?per_page=2', { token });
    expect(p1.body?.total_count).toBe(5);
    expect(p1.body?.secrets.map((s: { name: string }) => s.name)).toEqual(['S0', 'S1']);
    expect(p1.headers.get('link')).toMatch(/per_page=2&page=2>; rel="next", <.*per_page=2&page=3>; rel="last"/);
    const p3 = await api('/repos/acme/api/actions/secrets?per_page=2&page=3', { token });
    expect(p3.body?.secrets.map((s: { name: string }) => s.name)).toEqual(['S4']);
    expect(p3.headers.get('link')).toBeNull();
  });

  it('dispatches: 422 without the trigger or the ref, the run id on request, runs that complete seeing the secrets', async () => {
    const e = await start({ runMs: 60 });
    const token = e.addToken();
    e.seedRepo('acme/api', { workflows: [{ file: 'smoke.yml' }, { file: 'build.yml', dispatchable: false }] });
    const v = testKey();
    e.setSecret({ repo: 'acme/api' }, 'OPENAI_API_KEY', v);
    const dispatch = (wf: string, body: unknown) => api(`/repos/acme/api/actions/workflows/${wf}/dispatches`, { token, method: 'POST', body });
    expect((await dispatch('build.yml', { ref: 'main' })).body?.message).toBe("Workflow does not have 'workflow_dispatch' trigger");
    expect((await dispatch('smoke.yml', { ref: 'nope' })).body?.message).toBe('No ref found for: nope');
    expect((await dispatch('smoke.yml', { ref: 'main' })).status).toBe(204);
    const detailed = await dispatch('smoke.yml', { ref: 'main', return_run_details: true });
    expect(detailed.status).toBe(200);
    const id = detailed.body!.workflow_run_id;
    expect(detailed.body!.run_url).toBe(`${e.url}/repos/acme/api/actions/runs/${id}`);
    expect((await api(`/repos/acme/api/actions/runs/${id}`, { token })).body?.status).toMatch(/queued|in_progress/);
    await new Promise((r) => setTimeout(r, 80));
    expect((await api(`/repos/acme/api/actions/runs/${id}`, { token })).body).toMatchObject({ status: 'completed', conclusion: 'success', event: 'workflow_dispatch' });
    const runs = await api('/repos/acme/api/actions/workflows/smoke.yml/runs?event=workflow_dispatch&branch=main', { token });
    expect(runs.body?.workflow_runs.map((r: { id: number }) => r.id)[0]).toBe(id);
    expect(e.runs('acme/api').at(-1)!.secretsSeen.OPENAI_API_KEY).toBe(v);
  });

  it('serves the API under /api/v3 like GitHub Enterprise Server, whose older releases refuse `return_run_details` and answer a dispatch 204', async () => {
    const e = await start({ prefix: '/api/v3', runDetails: false });
    const token = e.addToken();
    e.seedRepo('acme/api', { workflows: [{ file: 'smoke.yml' }] });
    expect(e.url).toMatch(/\/api\/v3$/);
    expect((await api('/repos/acme/api', { token })).body?.full_name).toBe('acme/api');
    const refused = await api('/repos/acme/api/actions/workflows/smoke.yml/dispatches', { token, method: 'POST', body: { ref: 'main', return_run_details: true } });
    expect([refused.status, refused.body?.message]).toEqual([422, 'Invalid request.\n\n"return_run_details" is not a permitted key.']);
    expect(e.runs('acme/api')).toEqual([]);
    expect((await api('/repos/acme/api/actions/workflows/smoke.yml/dispatches', { token, method: 'POST', body: { ref: 'main' } })).status).toBe(204);
    expect(e.runs('acme/api')).toHaveLength(1);
  });
});

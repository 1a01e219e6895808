import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SupabaseEmulator } from '../../emulators/supabase/emulator.ts';
import { demo } from '../../emulators/supabase/demo.ts';
import { supabase } from '../../src/targets/supabase/index.ts';
import { testKey } from '../helpers/keys.ts';
import { rotateDemoEntry } from '../helpers/demo-rotation.ts';

/** The emulator itself answers like the Management API where the adapter relies on it (raw fetch, no adapter). */
let emu: SupabaseEmulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

async function api(path: string, init: { method?: string; token?: string; body?: unknown } = {}) {
  const res = await fetch(emu!.url + path, {
    method: init.method ?? 'GET',
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

describe('supabase emulator', () => {
  it('lists each secret with the SHA-256 hex of its value (never the value), the SUPABASE_ defaults included', async () => {
    emu = new SupabaseEmulator();
    await emu.start();
    const token = emu.addToken();
    const key = testKey();
    const ref = emu.seedProject({ secrets: { OPENAI_API_KEY: key } });
    const list = await api(`/v1/projects/${ref}/secrets`, { token });
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain(key);
    const entry = list.body.find((s: { name: string }) => s.name === 'OPENAI_API_KEY');
    expect(entry.value).toBe(createHash('sha256').update(key).digest('hex'));
    expect(list.body.map((s: { name: string }) => s.name)).toContain('SUPABASE_URL');
  });

  it('POST upserts (201, no body), DELETE removes by name (200); SUPABASE_ names and bad bodies are refused', async () => {
    emu = new SupabaseEmulator();
    await emu.start();
    const token = emu.addToken();
    const ref = emu.seedProject();
    const v = testKey();
    const created = await api(`/v1/projects/${ref}/secrets`, { method: 'POST', token, body: [{ name: 'K', value: v }] });
    expect(created).toMatchObject({ status: 201, body: undefined });
    expect(emu.secret(ref, 'K')).toBe(v);
    expect((await api(`/v1/projects/${ref}/secrets`, { method: 'POST', token, body: [{ name: 'SUPABASE_X', value: 'x' }] })).status).toBe(422);
    expect((await api(`/v1/projects/${ref}/secrets`, { method: 'POST', token, body: { name: 'K' } })).status).toBe(400);
    expect((await api(`/v1/projects/${ref}/secrets`, { method: 'DELETE', token, body: ['K'] })).status).toBe(200);
    expect(emu.secret(ref, 'K')).toBeUndefined();
  });

  it('401 without a known token, 403 without the scope, 404 for a project the token does not reach; errors are {message}', async () => {
    emu = new SupabaseEmulator();
    await emu.start();
    const ref = emu.seedProject();
    expect(await api(`/v1/projects/${ref}/secrets`)).toMatchObject({ status: 401, body: { message: 'Unauthorized' } });
    const readOnly = emu.addToken({ scopes: ['secrets:read', 'projects:read'] });
    const denied = await api(`/v1/projects/${ref}/secrets`, { method: 'POST', token: readOnly, body: [{ name: 'K', value: 'v' }] });
    expect(denied.status).toBe(403);
    expect(typeof denied.body.message).toBe('string');
    const elsewhere = emu.addToken({ projects: ['otherref'] });
    expect(await api(`/v1/projects/${ref}`, { token: elsewhere })).toMatchObject({ status: 404, body: { message: 'Project not found' } });
    expect((await api('/v1/projects', { token: elsewhere })).body).toEqual([]);
  });

  it('counts 120 requests a minute per token and project, with X-RateLimit-* headers, then 429', async () => {
    emu = new SupabaseEmulator({ requestsPerMinute: 3 });
    await emu.start();
    const token = emu.addToken();
    const ref = emu.seedProject();
    const first = await api(`/v1/projects/${ref}/secrets`, { token });
    expect(first.headers.get('x-ratelimit-limit')).toBe('3');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('2');
    expect(Number(first.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    await api(`/v1/projects/${ref}/secrets`, { token });
    await api(`/v1/projects/${ref}/secrets`, { token });
    const limited = await api(`/v1/projects/${ref}/secrets`, { token });
    expect(limited).toMatchObject({ status: 429, body: { message: 'Too Many Requests' } });
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    // Another project has its own window.
    expect((await api(`/v1/projects/${emu.seedProject()}/secrets`, { token })).status).toBe(200);
  });

  it('the demo entry parses and rotates end to end against the emulator', async () => {
    await rotateDemoEntry(demo, supabase, 'metadata');
  });
});

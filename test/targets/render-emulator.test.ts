import { afterEach, describe, expect, it } from 'vitest';
import { RenderEmulator } from '../../emulators/render/emulator.ts';
import { demo } from '../../emulators/render/demo.ts';
import { render } from '../../src/targets/render/index.ts';
import { testKey } from '../helpers/keys.ts';
import { rotateDemoEntry } from '../helpers/demo-rotation.ts';

/** The emulator itself answers like Render's REST API where the adapter relies on it (raw fetch, no adapter). */
let emu: RenderEmulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

async function api(path: string, init: { method?: string; token?: string; body?: unknown } = {}) {
  const res = await fetch(`${emu!.url}/v1${path}`, {
    method: init.method ?? 'GET',
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

describe('render emulator', () => {
  it('401 {message} without a known key; a service of another workspace is 404 "not found: <id>"', async () => {
    emu = new RenderEmulator();
    await emu.start();
    const svc = emu.seedService({ owner: 'tea-a' });
    expect(await api(`/services/${svc}`)).toMatchObject({ status: 401, body: { message: 'unauthorized' } });
    const other = emu.addToken({ owners: ['tea-b'] });
    expect(await api(`/services/${svc}`, { token: other })).toMatchObject({ status: 404, body: { message: `not found: ${svc}` } });
    const mine = emu.addToken({ owners: ['tea-a'] });
    expect((await api(`/services/${svc}`, { token: mine })).body).toMatchObject({ id: svc, suspended: 'not_suspended' });
  });

  it('pages lists with limit (default 20, max 100) and the last item’s cursor, items wrapped as {cursor, envVar}', async () => {
    emu = new RenderEmulator();
    await emu.start();
    const token = emu.addToken();
    const env = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`V${i}`, String(i)]));
    const svc = emu.seedService({ env });
    const first = await api(`/services/${svc}/env-vars`, { token });
    expect(first.body).toHaveLength(20);
    expect(first.body[0]).toEqual({ cursor: expect.any(String), envVar: { key: 'V0', value: '0' } });
    const rest = await api(`/services/${svc}/env-vars?limit=100&cursor=${first.body.at(-1).cursor}`, { token });
    expect(rest.body.map((x: { envVar: { key: string } }) => x.envVar.key)).toEqual(['V20', 'V21', 'V22', 'V23', 'V24']);
    expect((await api(`/services/${svc}/env-vars?limit=101`, { token })).status).toBe(400);
  });

  it('one variable: GET 404 when absent, PUT upserts and echoes it, DELETE 204; the list PUT replaces all', async () => {
    emu = new RenderEmulator();
    await emu.start();
    const token = emu.addToken();
    const svc = emu.seedService({ env: { A: '1' } });
    expect((await api(`/services/${svc}/env-vars/K`, { token })).status).toBe(404);
    const v = testKey();
    expect(await api(`/services/${svc}/env-vars/K`, { method: 'PUT', token, body: { value: v } })).toMatchObject({ status: 200, body: { key: 'K', value: v } });
    expect(emu.vars(svc)).toEqual({ A: '1', K: v });
    expect((await api(`/services/${svc}/env-vars/K`, { method: 'DELETE', token })).status).toBe(204);
    await api(`/services/${svc}/env-vars`, { method: 'PUT', token, body: [{ key: 'B', value: '2' }] });
    expect(emu.vars(svc)).toEqual({ B: '2' });
  });

  it('a deploy is 201 with its body, or 202 without one while another runs; it runs the variables as they were when triggered', async () => {
    emu = new RenderEmulator({ phaseMs: 10_000 });
    await emu.start();
    const token = emu.addToken();
    const svc = emu.seedService({ env: { K: 'one' } });
    const first = await api(`/services/${svc}/deploys`, { method: 'POST', token, body: { deployMode: 'deploy_only' } });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ id: expect.stringMatching(/^dep-/), status: 'update_in_progress', trigger: 'api' });
    emu.setVar(svc, 'K', 'two');
    const second = await api(`/services/${svc}/deploys`, { method: 'POST', token, body: {} });
    expect(second).toMatchObject({ status: 202, body: undefined });
    const queued = await api(`/services/${svc}/deploys?status=queued&limit=1`, { token });
    expect(queued.body[0].deploy.status).toBe('queued');
    expect(emu.deploys(svc).map((d) => d.env.K)).toEqual(['one', 'one', 'two']);
  });

  it('rate limits per API key with Ratelimit-Limit/Remaining/Reset (a delta in seconds), 429 past them', async () => {
    emu = new RenderEmulator();
    await emu.start();
    const token = emu.addToken();
    const svc = emu.seedService();
    const ok = await api(`/services/${svc}`, { token });
    expect(ok.headers.get('ratelimit-limit')).toBe('400');
    expect(ok.headers.get('ratelimit-remaining')).toBe('399');
    expect(Number(ok.headers.get('ratelimit-reset'))).toBeLessThanOrEqual(60);
    emu.setReadsRemaining(token, 0);
    expect(await api(`/services/${svc}`, { token })).toMatchObject({ status: 429, body: { message: 'rate limit exceeded' } });
    // Writes count in their own window of 30.
    expect((await api(`/services/${svc}/env-vars/K`, { method: 'PUT', token, body: { value: 'v' } })).headers.get('ratelimit-limit')).toBe('30');
  });

  it('the demo entry parses and rotates end to end against the emulator', async () => {
    await rotateDemoEntry(demo, render, 'read-back');
  });
});

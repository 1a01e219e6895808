import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FlyEmulator } from '../../emulators/fly/emulator.ts';
import { demo } from '../../emulators/fly/demo.ts';
import { fly } from '../../src/targets/fly/index.ts';
import { testKey } from '../helpers/keys.ts';
import { rotateDemoEntry } from '../helpers/demo-rotation.ts';

/** The emulator itself answers like the Machines API where the adapter relies on it (raw fetch, no adapter). */
let emu: FlyEmulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

async function api(path: string, init: { method?: string; auth?: string; body?: unknown } = {}) {
  const res = await fetch(`${emu!.url}/v1${path}`, {
    method: init.method ?? 'GET',
    headers: { ...(init.auth ? { authorization: init.auth } : {}), 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('fly emulator', () => {
  it('a macaroon token must come as FlyV1 (not Bearer); errors are {error}; a deploy token reaches only its app', async () => {
    emu = new FlyEmulator();
    await emu.start();
    emu.seedApp('a');
    emu.seedApp('b');
    const token = emu.addToken({ apps: ['a'] });
    expect(await api('/apps/a')).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    expect((await api('/apps/a', { auth: token.replace('FlyV1', 'Bearer') })).status).toBe(401);
    expect(await api('/apps/a', { auth: token })).toMatchObject({ status: 200, body: { name: 'a', organization: { slug: 'personal' } } });
    expect((await api('/apps/b', { auth: token })).status).toBe(404);
    expect((await api('/apps?org_slug=personal', { auth: token })).status).toBe(403);
    const org = emu.addToken({ orgs: ['personal'] });
    expect((await api('/apps?org_slug=personal', { auth: org })).body).toMatchObject({ total_apps: 2 });
  });

  it('lists secrets by name and digest (the MD5 hex of Fly’s docs example), never the value; every change bumps the version', async () => {
    emu = new FlyEmulator();
    await emu.start();
    const key = testKey();
    emu.seedApp('a', { secrets: { OPENAI_API_KEY: key } });
    const auth = emu.addToken();
    const list = await api('/apps/a/secrets', { auth });
    expect(JSON.stringify(list.body)).not.toContain(key);
    expect(list.body.secrets[0]).toMatchObject({ name: 'OPENAI_API_KEY', digest: createHash('md5').update(key).digest('hex') });
    const v = emu.secretsVersion('a');
    const set = await api('/apps/a/secrets', { method: 'POST', auth, body: { values: { K: 'x', OPENAI_API_KEY: null } } });
    expect(set.body).toMatchObject({ version: v + 1, secrets: [{ name: 'K' }] });
    expect(emu.secret('a', 'OPENAI_API_KEY')).toBeUndefined();
    expect((await api('/apps/a/secrets', { method: 'POST', auth, body: { values: { 'bad-name': 'x' } } })).status).toBe(400);
  });

  it('a machine boots with the secrets of min_secrets_version (an older replica without it), as a new instance; a leased one refuses (409)', async () => {
    emu = new FlyEmulator({ phaseMs: 10_000, staleReplicas: true, actionBurst: 100 });
    await emu.start();
    emu.seedApp('a', { secrets: { K: 'one' }, machines: 1 });
    const auth = emu.addToken();
    emu.setSecret('a', 'K', 'two');
    const [m] = emu.machines('a');
    const stale = await api(`/apps/a/machines/${m!.id}`, { method: 'POST', auth, body: { config: {} } });
    expect(stale.body.state).toBe('replacing');
    expect(stale.body.instance_id).not.toBe(m!.instanceId);
    expect(emu.machines('a')[0]!.env.K).toBe('one');
    await api(`/apps/a/machines/${m!.id}`, { method: 'POST', auth, body: { config: {}, min_secrets_version: emu.secretsVersion('a') } });
    expect(emu.machines('a')[0]!.env.K).toBe('two');
    expect((await api(`/apps/a/machines/${m!.id}`, { method: 'POST', auth, body: { config: {}, min_secrets_version: 99 } })).status).toBe(400);
    emu.leaseMachine('a', m!.id);
    expect((await api(`/apps/a/machines/${m!.id}`, { method: 'POST', auth, body: { config: {} } })).status).toBe(409);
  });

  it('1 request a second per action and app, bursts of 3: the 4th answers 429', async () => {
    emu = new FlyEmulator();
    await emu.start();
    emu.seedApp('a');
    const auth = emu.addToken();
    for (let i = 0; i < 3; i++) expect((await api('/apps/a/secrets', { auth })).status).toBe(200);
    expect(await api('/apps/a/secrets', { auth })).toMatchObject({ status: 429, body: { error: 'rate limit exceeded' } });
    // Another action has its own budget.
    expect((await api('/apps/a', { auth })).status).toBe(200);
  });

  it('the demo entry parses and rotates end to end against the emulator', async () => {
    await rotateDemoEntry(demo, fly, 'metadata');
  });
});

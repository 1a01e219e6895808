import { afterEach, describe, expect, it, vi } from 'vitest';
import { VercelEmulator } from '../../emulators/vercel/server.ts';
import { demo } from '../../emulators/vercel/demo.ts';
import { vercel } from '../../src/targets/vercel/index.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';

/** The emulator itself behaves like the API where the adapter relies on it (raw fetch, no adapter). */
let emu: VercelEmulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

async function api(path: string, init: RequestInit & { token?: string } = {}) {
  const res = await fetch(emu!.url + path, {
    ...init,
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), 'content-type': 'application/json' },
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

describe('vercel emulator', () => {
  it('answers Vercel’s 403 forbidden shape for a missing or unknown token, with rate-limit headers', async () => {
    emu = await VercelEmulator.start();
    emu.addToken('good');
    emu.seedProject({ name: 'app' });
    const none = await api('/v9/projects/app');
    expect(none.status).toBe(403);
    expect(none.body).toEqual({ error: { code: 'forbidden', message: 'The request is missing an authentication token', missingToken: true } });
    const bad = await api('/v9/projects/app', { token: 'nope' });
    expect(bad.body.error).toMatchObject({ code: 'forbidden', message: 'Not authorized' });
    const ok = await api('/v9/projects/app', { token: 'good' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-ratelimit-limit')).toBe('1000');
    expect(Number(ok.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    const missing = await api('/v9/projects/other', { token: 'good' });
    expect(missing.body).toEqual({ error: { code: 'not_found', message: 'Project not found' } });
  });

  it('never returns a sensitive value, lists ciphertext, decrypts encrypted ones one at a time', async () => {
    emu = await VercelEmulator.start();
    emu.addToken('t');
    const secret = testKey();
    const plain = testKey();
    emu.seedProject({
      name: 'app',
      envs: [
        { key: 'S', value: secret, type: 'sensitive', target: ['production'] },
        { key: 'E', value: plain, type: 'encrypted', target: ['production'] },
      ],
    });
    const list = await api('/v10/projects/app/env?decrypt=true', { token: 't' });
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(JSON.stringify(list.body)).not.toContain(plain);
    const [s, e] = ['S', 'E'].map((k) => list.body.envs.find((x: { key: string }) => x.key === k));
    const one = await api(`/v1/projects/app/env/${e.id}`, { token: 't' });
    expect(one.body).toMatchObject({ value: plain, decrypted: true });
    const hidden = await api(`/v1/projects/app/env/${s.id}`, { token: 't' });
    expect(hidden.body.value).toBeUndefined();
    expect(hidden.body.decrypted).toBe(false);
    // Every other shape carries a `value` string, sensitive included (the SDK's list, create and edit
    // response schemas require it): ciphertext, never the plaintext.
    expect(typeof s.value).toBe('string');
    expect(s.decrypted).toBe(false);
    const next = testKey();
    const edited = await api(`/v9/projects/app/env/${s.id}`, { token: 't', method: 'PATCH', body: JSON.stringify({ value: next }) });
    expect(edited.status).toBe(200);
    expect(typeof edited.body.value).toBe('string');
    expect(edited.body.value).not.toBe(next);
    expect(edited.body.updatedAt).toBeGreaterThan(s.updatedAt);
    const made = await api('/v10/projects/app/env', { token: 't', method: 'POST', body: JSON.stringify({ key: 'S2', value: next, type: 'sensitive', target: ['preview'] }) });
    expect(made.status).toBe(201);
    expect(typeof made.body.created.value).toBe('string');
    expect(JSON.stringify([edited.body, made.body])).not.toContain(next);
  });

  it('rejects partial target overlaps (ENV_CONFLICT) and sensitive development entries', async () => {
    emu = await VercelEmulator.start();
    emu.addToken('t');
    emu.seedProject({ name: 'app', envs: [{ key: 'K', value: 'a', target: ['production', 'preview'] }] });
    const clash = await api('/v10/projects/app/env?upsert=true', { token: 't', method: 'POST', body: JSON.stringify({ key: 'K', value: 'b', type: 'encrypted', target: ['production'] }) });
    expect(clash.status).toBe(400);
    expect(clash.body.error.code).toBe('ENV_CONFLICT');
    const dev = await api('/v10/projects/app/env', { token: 't', method: 'POST', body: JSON.stringify({ key: 'D', value: 'b', type: 'sensitive', target: ['development'] }) });
    expect(dev.status).toBe(400);
    const many = await api('/v10/projects/app/env', {
      token: 't',
      method: 'POST',
      body: JSON.stringify([
        { key: 'N', value: 'n', type: 'encrypted', target: ['development'] },
        { key: 'K', value: 'c', type: 'encrypted', target: ['preview'] },
      ]),
    });
    expect(many.status).toBe(201);
    expect(many.body.created).toHaveLength(1);
    expect(many.body.failed[0].error.code).toBe('ENV_ALREADY_EXISTS');
  });

  it('deployments go QUEUED → BUILDING → READY and keep the environment they were created with', async () => {
    // Only Date is faked: the emulator derives a deployment's state from its age, and the test
    // moves time itself instead of polling against a loaded machine's scheduler.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      emu = await VercelEmulator.start({ queuedMs: 100, buildingMs: 100 });
      emu.addToken('t');
      const p = emu.seedProject({ name: 'app', envs: [{ key: 'K', value: 'one', target: ['production'] }] });
      const [src] = emu.deployments('app');
      const created = await api('/v13/deployments?forceNew=1', { token: 't', method: 'POST', body: JSON.stringify({ name: 'app', deploymentId: src!.id, target: 'production' }) });
      expect(created.body.readyState).toBe('QUEUED');
      emu.putEnv(p.id, { key: 'K', value: 'two', target: ['production'] });
      const state = async () => (await api(`/v13/deployments/${created.body.id}`, { token: 't' })).body.readyState;
      const seen = [await state()];
      vi.setSystemTime(Date.now() + 100);
      seen.push(await state());
      vi.setSystemTime(Date.now() + 100);
      seen.push(await state());
      expect(seen).toEqual(['QUEUED', 'BUILDING', 'READY']);
      expect(emu.deployments('app')[0]!.snapshot.K).toBe('one');
    } finally {
      vi.useRealTimers();
    }
  });

  it('a BLOCKED deployment stays BLOCKED after QUEUED and never builds', async () => {
    emu = await VercelEmulator.start({ queuedMs: 20, buildingMs: 20 });
    emu.addToken('t');
    emu.seedProject({ name: 'app' });
    const [src] = emu.deployments('app');
    emu.failNextDeploy('BLOCKED');
    const created = await api('/v13/deployments?forceNew=1', { token: 't', method: 'POST', body: JSON.stringify({ name: 'app', deploymentId: src!.id, target: 'production' }) });
    expect(created.body.readyState).toBe('QUEUED');
    await new Promise((r) => setTimeout(r, 80));
    const now = await api(`/v13/deployments/${created.body.id}`, { token: 't' });
    expect(now.body.readyState).toBe('BLOCKED');
    expect(now.body.aliasAssigned).toBe(false);
  });

  it('the demo entry is a working target', async () => {
    const oldKey = testKey();
    const d = await demo({ oldKey, workDir: '/tmp', varName: 'OPENAI_API_KEY' });
    if ('skip' in d) throw new Error(d.skip);
    try {
      const { type, token, ...rest } = d.targets[0]!;
      expect(type).toBe('vercel');
      const config = vercel.schema.parse(rest);
      const target = await vercel.create({ ...config, endpoint: rest.endpoint as string, token: parseCredentialRef(token as string)! }, testContext({ env: d.env, name: 'vercel-demo' }));
      const pf = await target.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.current.kind).toBe('unreadable');
    } finally {
      await d.stop();
    }
  });
});

import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { SupabaseEmulator } from '../../emulators/supabase/emulator.ts';
import { supabase } from '../../src/targets/supabase/index.ts';
import { Secret } from '../../src/core/secret.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { testContext } from '../helpers/context.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { testKey } from '../helpers/keys.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';

describe('supabase target', () => {
  let emu: SupabaseEmulator;
  let token: string;
  let ref: string;
  const oldKey = testKey();
  const newKey = testKey();
  const op = { rotationId: 'rot_supabase_1', fingerprint: new Secret(newKey).fingerprint };

  async function makeTarget(opts: { env?: NodeJS.ProcessEnv; project?: string; varName?: string } = {}) {
    return supabase.create(
      { project: opts.project ?? ref, endpoint: emu.url },
      // A fake clock: the token's pacing lane waits for a spent budget's reset in virtual time.
      { ...testContext({ env: opts.env ?? { SUPABASE_ACCESS_TOKEN: token }, name: 'supabase-test', varName: opts.varName }), clock: fakeClock(Date.now()) },
    );
  }

  beforeEach(async () => {
    emu = new SupabaseEmulator();
    await emu.start();
    token = emu.addToken();
    ref = emu.seedProject({ name: 'nomora', secrets: { OPENAI_API_KEY: oldKey, STRIPE_KEY: 'stripe-test-value' } });
  });
  afterEach(async () => {
    await emu.stop();
  });

  it('preflight is ready, says the value is write-only and that no redeploy is needed', async () => {
    const t = await makeTarget();
    const pf = await t.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.current.kind).toBe('unreadable');
    expect(pf.notes!.join('\n')).toMatch(/no redeploy needed/);
    expect(pf.notes!.join('\n')).toMatch(/SHA-256 digest/);
    expect(t.redeploy).toBeUndefined();
    for (const r of emu.server.requests) expect(r.headers.authorization).toBe(`Bearer ${token}`);
  });

  it('preflight says plainly when the secret will be created', async () => {
    emu.setSecret(ref, 'OPENAI_API_KEY', null);
    const pf = await (await makeTarget()).preflight();
    expect(pf).toMatchObject({ status: 'ready', willCreate: true, current: { kind: 'absent' } });
    expect(pf.notes!.join('\n')).toMatch(/keyrot will create it/);
  });

  it('writes one secret in one POST, leaves the others alone; the receipt holds no value and no digest', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect(emu.secret(ref, 'OPENAI_API_KEY')).toBe(newKey);
    expect(emu.secret(ref, 'STRIPE_KEY')).toBe('stripe-test-value');
    const posts = emu.server.calls('POST', `/v1/projects/${ref}/secrets`);
    expect(posts).toHaveLength(1);
    expect(JSON.parse(posts[0]!.rawBody)).toEqual([{ name: 'OPENAI_API_KEY', value: newKey }]);
    expect(receipt).toEqual({ project: ref, changed: true, created: false });
  });

  it('a second identical write sends nothing (the listed digest already is the new key’s)', async () => {
    const t = await makeTarget();
    await t.write(new Secret(newKey), op);
    const writes = emu.writeCount(ref);
    expect(await t.write(new Secret(newKey), op)).toMatchObject({ changed: false });
    expect(emu.writeCount(ref)).toBe(writes);
  });

  it('verify compares the listed SHA-256 digest; a value changed behind keyrot is a mismatch naming fingerprints only', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect(await t.verify(new Secret(newKey), op, receipt)).toMatchObject({ method: 'metadata' });
    const intruder = testKey();
    emu.setSecret(ref, 'OPENAI_API_KEY', intruder);
    const err = await targetErrorOf(t.verify(new Secret(newKey), op, receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).toContain(new Secret(newKey).fingerprint);
    expect(err.message).not.toContain(intruder);
    expect(err.message).not.toMatch(/[0-9a-f]{64}/);
  });

  it('restore writes the old value back (with or without a receipt), idempotently', async () => {
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
    expect(emu.secret(ref, 'OPENAI_API_KEY')).toBe(oldKey);
    const writes = emu.writeCount(ref);
    await restoreAndRedeploy(t, new Secret(oldKey), op, undefined);
    expect(emu.writeCount(ref)).toBe(writes);
    await t.write(new Secret(newKey), op);
    await restoreAndRedeploy(t, new Secret(oldKey), op, undefined);
    expect(emu.secret(ref, 'OPENAI_API_KEY')).toBe(oldKey);
  });

  it('restore of a secret keyrot created deletes it (DELETE with its name), and only it', async () => {
    emu.setSecret(ref, 'OPENAI_API_KEY', null);
    const t = await makeTarget();
    const receipt = await t.write(new Secret(newKey), op);
    expect(receipt.created).toBe(true);
    await t.restore(null, op, receipt);
    expect(emu.secret(ref, 'OPENAI_API_KEY')).toBeUndefined();
    expect(emu.secret(ref, 'STRIPE_KEY')).toBe('stripe-test-value');
    const del = emu.server.calls('DELETE', `/v1/projects/${ref}/secrets`);
    expect(JSON.parse(del[0]!.rawBody)).toEqual(['OPENAI_API_KEY']);
    await t.restore(null, op, receipt);
    expect(emu.server.calls('DELETE', `/v1/projects/${ref}/secrets`)).toHaveLength(1);
  });

  it('a SUPABASE_ name is refused before any call; a paused project blocks', async () => {
    const reserved = await (await makeTarget({ varName: 'SUPABASE_OPENAI_KEY' })).preflight();
    expect(reserved.status).toBe('blocked');
    expect(reserved.reason).toMatch(/reserves secret names starting with SUPABASE_/);
    expect(emu.server.requests).toHaveLength(0);
    emu.setStatus(ref, 'INACTIVE');
    const paused = await (await makeTarget()).preflight();
    expect(paused.status).toBe('blocked');
    expect(paused.reason).toMatch(/is INACTIVE.*restore the project/);
  });

  it('401, 403, 404 and a missing token are blocked reasons in product words', async () => {
    const bad = await (await makeTarget({ env: { SUPABASE_ACCESS_TOKEN: 'sbp_0000000000000000000000000000000000000000' } })).preflight();
    expect(bad.reason).toMatch(/^Supabase rejected the access token \(SUPABASE_ACCESS_TOKEN\).*dashboard\/account\/tokens/);
    expect(bad.reason).not.toContain('sbp_0000');
    const missing = await (await makeTarget({ env: {} })).preflight();
    expect(missing.reason).toMatch(/SUPABASE_ACCESS_TOKEN/);
    const readOnly = emu.addToken({ scopes: ['projects:read', 'secrets:read'] });
    const t = await makeTarget({ env: { SUPABASE_ACCESS_TOKEN: readOnly } });
    expect((await t.preflight()).status).toBe('ready');
    const denied = await targetErrorOf(t.write(new Secret(newKey), op));
    expect(denied.kind).toBe('permission');
    expect(denied.message).toMatch(/read and write access to Edge Function secrets/);
    const other = emu.addToken({ projects: ['someoneelsesproj'] });
    const hidden = await (await makeTarget({ env: { SUPABASE_ACCESS_TOKEN: other } })).preflight();
    expect(hidden.reason).toMatch(new RegExp(`^Supabase project ${ref} not found: check \`project:\``));
  });

  it('429 is retryable with the wait X-RateLimit-Reset asks for; withRetry gets through', async () => {
    const t = await makeTarget();
    emu.failNextWithRateLimit();
    const direct = await targetErrorOf(t.read());
    expect(direct).toMatchObject({ kind: 'rate-limited', retryable: true, retryAfterMs: 7000 });
    emu.setRateLimitRemaining(token, ref, 1);
    const clock = fakeClock();
    let attempts = 0;
    await withRetry(
      () => {
        attempts++;
        // The first attempt spends the last request of the window; the emulator's window is real time.
        if (attempts === 2) emu.setRateLimitRemaining(token, ref, 120);
        return t.write(new Secret(newKey), op);
      },
      { clock, random: () => 0 },
    );
    expect(attempts).toBe(2);
    expect(emu.secret(ref, 'OPENAI_API_KEY')).toBe(newKey);
  });

  it('the key never appears in an error, even when Supabase echoes it', async () => {
    const t = await makeTarget();
    emu.server.failNext({ method: 'POST', status: 422, body: { message: `value ${newKey} rejected` } });
    const err = await targetErrorOf(t.write(new Secret(newKey), op));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/Supabase refused to change OPENAI_API_KEY on project/);
    expect(JSON.stringify(err) + err.message).not.toContain(newKey);
    emu.server.failNext({ status: 503, body: { message: `down ${oldKey}` } });
    const down = await targetErrorOf(t.restore(new Secret(oldKey), op, undefined));
    expect(down.retryable).toBe(true);
    expect(down.message).not.toContain(oldKey);
  });

  it('discover finds the secret in every project the token reaches and matches it by digest in memory', async () => {
    const other = emu.seedProject({ name: 'other', secrets: { OPENAI_API_KEY: newKey } });
    emu.seedProject({ name: 'unrelated', secrets: { SOMETHING: 'x' } });
    const res = await supabase.discover!({
      ...testContext({ env: { SUPABASE_ACCESS_TOKEN: token } }),
      varNames: ['OPENAI_API_KEY'],
      configs: [{ endpoint: emu.url }],
    });
    expect(res.scope).toBe('3 Supabase projects the access token reaches');
    expect(res.places.map((p) => p.target)).toEqual([
      { type: 'supabase', project: ref, endpoint: emu.url },
      { type: 'supabase', project: other, endpoint: emu.url },
    ]);
    expect(res.places.every((p) => p.holds.kind === 'unreadable')).toBe(true);
    expect(res.places.map((p) => p.matches!(new Secret(oldKey)))).toEqual([true, false]);
    expect(res.places.map((p) => p.matches!(new Secret(newKey)))).toEqual([false, true]);
    expect(JSON.stringify(res)).not.toContain(oldKey);
  });

  it('discover with a refused token is an auth error (the command reports the provider as skipped)', async () => {
    const err = await targetErrorOf(
      supabase.discover!({ ...testContext({ env: { SUPABASE_ACCESS_TOKEN: 'sbp_nope' } }), varNames: ['OPENAI_API_KEY'], configs: [{ endpoint: emu.url }] }),
    );
    expect(err.kind).toBe('auth');
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CloudflareEmulator } from '../../emulators/cloudflare-workers/emulator.ts';
import { cloudflareWorkers, type CloudflareWorkersReceipt } from '../../src/targets/cloudflare-workers/index.ts';
import { PACE_BELOW } from '../../src/targets/cloudflare-workers/client.ts';
import { Secret } from '../../src/core/secret.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock, systemClock, type Clock } from '../../src/runtime/clock.ts';
import type { Target } from '../../src/targets/types.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';

const ACCOUNT = '0123456789abcdef0123456789abcdef';
const SCRIPT = 'api-worker';
const VAR = 'OPENAI_API_KEY';

describe('cloudflare-workers target', () => {
  let emu: CloudflareEmulator;
  let token: string;
  const oldKey = testKey();
  const newKey = testKey();
  const op = { rotationId: 'rot_cf_1', fingerprint: new Secret(newKey).fingerprint };

  async function makeTarget(opts: { script?: string; env?: NodeJS.ProcessEnv; clock?: Clock; varName?: string } = {}) {
    const ctx = { ...testContext({ env: opts.env ?? { CLOUDFLARE_API_TOKEN: token }, name: 'cf-test', varName: opts.varName }), clock: opts.clock ?? systemClock };
    return (await cloudflareWorkers.create({ account: ACCOUNT, script: opts.script ?? SCRIPT, endpoint: emu.url }, ctx)) as Target<CloudflareWorkersReceipt>;
  }
  const held = () => emu.peekSecret(ACCOUNT, SCRIPT, VAR);
  const versions = () => emu.versions(ACCOUNT, SCRIPT);

  beforeEach(async () => {
    emu = new CloudflareEmulator();
    await emu.start();
    token = emu.addToken({ accounts: [ACCOUNT] });
    emu.seedWorker(ACCOUNT, SCRIPT, { secrets: { [VAR]: oldKey, DATABASE_URL: 'postgres://db' }, vars: { MODE: 'production' } });
  });
  afterEach(async () => {
    await emu.stop();
  });

  describe('preflight', () => {
    it('is ready, says a secret change deploys a new version and how it is verified; only the bearer token is sent', async () => {
      const saved = { ...process.env };
      // The client would read these from the environment; keyrot passes its own token and nulls the rest.
      Object.assign(process.env, { CLOUDFLARE_API_KEY: 'global-key-should-not-be-sent', CLOUDFLARE_EMAIL: 'someone@example.com' });
      try {
        const pf = await (await makeTarget()).preflight();
        expect(pf.status, pf.reason).toBe('ready');
        expect([pf.current.kind, pf.willCreate]).toEqual(['unreadable', false]);
        expect(pf.notes!.join('\n')).toMatch(/setting secret OPENAI_API_KEY creates a new version of Worker api-worker of account \w+ and deploys it to all traffic at once/);
        expect(pf.notes!.join('\n')).toMatch(/verified by the secret's presence and by the new version serving 100% of traffic/);
      } finally {
        process.env = saved;
      }
      for (const r of emu.server.requests) {
        expect(r.headers.authorization).toBe(`Bearer ${token}`);
        expect(r.headers['x-auth-key']).toBeUndefined();
        expect(r.headers['x-auth-email']).toBeUndefined();
      }
    });

    it('says plainly when the secret will be created', async () => {
      emu.seedWorker(ACCOUNT, 'fresh');
      const pf = await (await makeTarget({ script: 'fresh' })).preflight();
      expect([pf.status, pf.current.kind, pf.willCreate]).toEqual(['ready', 'absent', true]);
      expect(pf.notes!.join('\n')).toMatch(/OPENAI_API_KEY is not set on the Worker: keyrot will create it/);
    });

    it('is blocked while the Worker’s latest version does not serve all traffic (Cloudflare would refuse, code 10215)', async () => {
      const first = versions()[0]!.id;
      const uploaded = emu.uploadVersion(ACCOUNT, SCRIPT);
      const pending = await (await makeTarget()).preflight();
      expect(pending.status).toBe('blocked');
      expect(pending.reason).toMatch(new RegExp(`serves version ${first} while version ${uploaded} is newer and not deployed: Cloudflare refuses secret changes until its latest version serves all traffic \\(code 10215\\); finish the deployment \\(\`wrangler versions deploy\`\\)`));
      emu.deployVersions(ACCOUNT, SCRIPT, [{ version_id: uploaded, percentage: 25 }, { version_id: first, percentage: 75 }]);
      expect((await (await makeTarget()).preflight()).reason).toMatch(/serves a deployment split between versions \(.* 25%, .* 75%\)/);
    });

    it('is blocked, in product words, for a missing Worker, a refused token, a name Workers cannot bind', async () => {
      const missing = await (await makeTarget({ script: 'nope' })).preflight();
      expect(missing.reason).toMatch(/Cloudflare could not find Worker nope of account \w+: check `script:` \(the Worker's name\) and `account:`.*\[code 10007\]/);
      const badName = await (await makeTarget({ varName: 'OPENAI-KEY' })).preflight();
      expect(badName.reason).toMatch(/secret names are JavaScript identifiers, not "OPENAI-KEY"/);
      emu.revokeToken(token);
      const refused = await (await makeTarget()).preflight();
      expect(refused.reason).toMatch(/Cloudflare refused the API token in env:CLOUDFLARE_API_TOKEN for Worker api-worker of account \w+: it needs the account permission "Workers Scripts: Edit"/);
      expect(refused.reason).not.toContain(token);
    });
  });

  describe('write and verify', () => {
    it('deploys a new version holding the new key; the receipt names it; verify proves it serves all traffic with the secret bound', async () => {
      const t = await makeTarget();
      const receipt = await t.write(new Secret(newKey), op);
      expect(held()).toBe(newKey);
      expect(versions().map((v) => [v.number, v.triggeredBy])).toEqual([[1, 'upload'], [2, 'secret']]);
      expect(receipt).toMatchObject({ fingerprint: op.fingerprint, created: false, versionBefore: versions()[0]!.id, versionId: versions()[1]!.id, versionNumber: 2 });
      expect(JSON.parse(emu.server.calls('PUT', /\/secrets$/)[0]!.rawBody)).toEqual({ name: VAR, text: newKey, type: 'secret_text' });
      expect(JSON.stringify(receipt)).not.toContain(newKey);
      const v = await t.verify(new Secret(newKey), op, receipt);
      expect(v).toEqual({ method: 'metadata', detail: `version 2 (deployed by keyrot's write) of Worker ${SCRIPT} of account ${ACCOUNT} serves all traffic with secret ${VAR} bound` });
    });

    it('a second write of the same rotation deploys nothing while its version still serves; after a deployment behind it, writes again', async () => {
      const t = await makeTarget();
      const first = await t.write(new Secret(newKey), op);
      expect(await t.write(new Secret(newKey), op)).toEqual(first);
      expect(emu.writeCount()).toBe(1);
      // A code deployment since (it inherits the secret): keyrot cannot tell it holds the key, and writes again.
      emu.deployVersions(ACCOUNT, SCRIPT, [{ version_id: emu.uploadVersion(ACCOUNT, SCRIPT), percentage: 100 }]);
      await t.write(new Secret(newKey), op);
      expect(emu.writeCount()).toBe(2);
      expect(held()).toBe(newKey);
    });

    it('a later code deployment inherits the secret and still verifies; a rollback to an older version does not', async () => {
      const t = await makeTarget();
      const receipt = await t.write(new Secret(newKey), op);
      const later = emu.uploadVersion(ACCOUNT, SCRIPT);
      emu.deployVersions(ACCOUNT, SCRIPT, [{ version_id: later, percentage: 100 }]);
      expect((await t.verify(new Secret(newKey), op, receipt)).detail).toMatch(/^version 3 of Worker/);
      emu.deployVersions(ACCOUNT, SCRIPT, [{ version_id: versions()[0]!.id, percentage: 100 }]);
      const e = await targetErrorOf(t.verify(new Secret(newKey), op, receipt));
      expect([e.kind, e.retryable]).toEqual(['mismatch', true]);
      expect(e.message).toMatch(/still serves version .*, from before keyrot's write/);
    });

    it('a secret change after keyrot\'s write (the old key put back by someone) fails verify: write-only values cannot be compared', async () => {
      const t = await makeTarget();
      const receipt = await t.write(new Secret(newKey), op);
      await fetch(`${emu.url}/accounts/${ACCOUNT}/workers/scripts/${SCRIPT}/secrets`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: VAR, text: oldKey, type: 'secret_text' }),
      });
      expect(held()).toBe(oldKey);
      const e = await targetErrorOf(t.verify(new Secret(newKey), op, receipt));
      expect([e.kind, e.retryable]).toEqual(['mismatch', false]);
      expect(e.message).toMatch(/made by a secret change after keyrot's write .*another writer may have replaced OPENAI_API_KEY/);
      expect(e.message).not.toContain(oldKey);
    });

    it('verify refuses a missing receipt and a deleted secret, naming fingerprints only', async () => {
      const t = await makeTarget();
      const receipt = await t.write(new Secret(newKey), op);
      expect((await targetErrorOf(t.verify(new Secret(newKey), op, undefined))).message).toMatch(/is write-only and keyrot has no record of writing the new key \(\w{12}\) to it: write it again/);
      await fetch(`${emu.url}/accounts/${ACCOUNT}/workers/scripts/${SCRIPT}/secrets/${VAR}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      const gone = await targetErrorOf(t.verify(new Secret(newKey), op, receipt));
      expect(gone.message).toMatch(/is not listed after keyrot wrote the new key/);
      expect(gone.message).not.toContain(newKey);
    });
  });

  describe('restore', () => {
    it('writes the old key again as a new version, idempotently, with or without the receipt', async () => {
      const t = await makeTarget();
      const receipt = await t.write(new Secret(newKey), op);
      await t.restore(new Secret(oldKey), op, receipt);
      expect(held()).toBe(oldKey);
      await t.restore(new Secret(oldKey), op, receipt);
      expect(versions()).toHaveLength(3);
      await t.write(new Secret(newKey), { ...op, rotationId: 'rot_cf_2' });
      await t.restore(new Secret(oldKey), { ...op, rotationId: 'rot_cf_2' }, undefined);
      expect(held()).toBe(oldKey);
    });

    it('deletes a secret keyrot created, also when it is already gone', async () => {
      emu.seedWorker(ACCOUNT, 'fresh');
      const t = await makeTarget({ script: 'fresh' });
      const receipt = await t.write(new Secret(newKey), op);
      expect(receipt.created).toBe(true);
      await t.restore(null, op, receipt);
      expect(emu.peekSecret(ACCOUNT, 'fresh', VAR)).toBeUndefined();
      await t.restore(null, op, receipt);
    });
  });

  describe('errors and pacing', () => {
    it('a token without Workers Scripts Edit: a `permission` error naming what it needs', async () => {
      const reader = emu.addToken({ accounts: [ACCOUNT], access: 'read' });
      const e = await targetErrorOf((await makeTarget({ env: { CLOUDFLARE_API_TOKEN: reader } })).write(new Secret(newKey), op));
      expect([e.kind, e.retryable, e.status]).toEqual(['permission', false, 403]);
      expect(e.message).toMatch(/"Workers Scripts: Edit"/);
      for (const s of [newKey, reader]) expect(JSON.stringify({ m: e.message })).not.toContain(s);
    });

    it('a version uploaded between preflight and write: Cloudflare’s 10215 is a conflict saying what to do, not retried', async () => {
      const t = await makeTarget();
      expect((await t.preflight()).status).toBe('ready');
      emu.uploadVersion(ACCOUNT, SCRIPT);
      const e = await targetErrorOf(t.write(new Secret(newKey), op));
      expect([e.kind, e.retryable]).toEqual(['conflict', false]);
      expect(e.message).toMatch(/Cloudflare refuses to change secret OPENAI_API_KEY of Worker api-worker \(account \w+\) while the Worker's latest version is not the one deployed .* deploy it to 100% \(`wrangler versions deploy`\), then run keyrot again/);
      expect(held()).toBe(oldKey);
    });

    it('429 is rate-limited with its retry-after, 5xx unavailable; the engine’s retry carries a write through both', async () => {
      // A fake clock: after a 429 (Ratelimit r=0) keyrot also paces its next call until the window resets.
      const t = await makeTarget({ clock: fakeClock() });
      emu.failNextWithRateLimit({ retryAfterSeconds: 3 });
      const limited = await targetErrorOf(t.write(new Secret(newKey), op));
      expect([limited.kind, limited.retryable, limited.retryAfterMs]).toEqual(['rate-limited', true, 3_000]);
      emu.server.failNext({ status: 502, body: { success: false, errors: [{ code: 10013, message: 'Bad gateway' }], messages: [], result: null } });
      const down = await targetErrorOf(t.write(new Secret(newKey), op));
      expect([down.kind, down.retryable]).toEqual(['unavailable', true]);
      emu.failNextWithRateLimit();
      emu.server.failNext({ status: 503, body: { success: false, errors: [], messages: [], result: null } });
      let attempts = 0;
      await withRetry(() => (attempts++, t.write(new Secret(newKey), op)), { clock: fakeClock(), random: () => 0.5 });
      expect(attempts).toBe(3);
      expect(held()).toBe(newKey);
    });

    it('Cloudflare’s message is shown on one line without terminal control sequences', async () => {
      const t = await makeTarget();
      emu.server.failNext({ status: 400, body: { success: false, errors: [{ code: 10021, message: 'Bad\x1b[2J\x1b]0;pwned\x07 binding\r\u202eok' }], messages: [], result: null } });
      const e = await targetErrorOf(t.write(new Secret(newKey), op));
      expect(e.message).toContain('(Cloudflare said: Bad binding ok [code 10021])');
      expect(e.message).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202a-\u202e]/);
    });

    it(`pauses before a call when fewer than ${PACE_BELOW} requests are left in the window`, async () => {
      const clock = fakeClock();
      const t = await makeTarget({ clock });
      emu.setRemaining(token, 4, 20_000);
      await t.preflight();
      expect(clock.slept.some((ms) => ms >= 19_000 && ms <= 20_000)).toBe(true);
    });
  });
});

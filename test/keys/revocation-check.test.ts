import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { Secret } from '../../src/core/secret.ts';
import { createOpenAIIssuer, type KeyIssuer, type RefusedRevocation } from '../../src/keys/openai-admin.ts';
import { isKeyrotServiceAccount, redactedMatchesHint, RevocationRefused } from '../../src/keys/revocation-check.ts';
import { newRotationId } from '../../src/state/journal.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * Item 17: `revoke` deletes only what keyrot minted (or looked up) for this environment. The
 * journal names the service account to delete, and whoever can write the state can edit it; the
 * issuer checks the records against the Admin API first. Every refusal deletes nothing: the
 * emulator's request log shows no DELETE.
 */
const clock = fakeClock(Date.parse('2026-03-01T09:00:00Z'));
const emu = new OpenAIEmulator({ now: () => clock.now() });
const PROJECT = 'proj_revocation_checks';
let adminKey: string;
const refusals: RefusedRevocation[] = [];

function issuer(): KeyIssuer {
  return createOpenAIIssuer({
    endpoint: emu.endpoint,
    adminKey: new Secret(adminKey),
    project: PROJECT,
    clock,
    onRefusal: async (r) => {
      refusals.push(r);
    },
  });
}

let n = 0;
const rotation = () => newRotationId(clock.now(), () => `c${++n}`);
const deletes = () => emu.server.calls('DELETE', /^\/v1\/organization\/projects\//);

beforeAll(async () => {
  await emu.start();
  emu.addProject(PROJECT);
  adminKey = emu.addAdminKey();
});
afterAll(() => emu.stop());
beforeEach(() => {
  emu.server.requests.length = 0;
  refusals.length = 0;
});

async function refused(p: Promise<unknown>): Promise<RevocationRefused> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RevocationRefused);
  expect(deletes()).toEqual([]);
  return err as RevocationRefused;
}

describe('revoke checks the journal records before deleting (issuer)', () => {
  it('a service account keyrot did not mint (named by hand) is refused, nothing deleted', async () => {
    const victim = emu.addServiceAccount(PROJECT, 'ci-deploy-bot');
    const hint = new Secret(victim.values[0]!).hint;
    const err = await refused(issuer().revoke({ serviceAccountId: victim.id, keyId: victim.keyIds[0], hint, env: 'production' }));
    expect(err.message).toContain('"ci-deploy-bot"');
    expect(err.message).toMatch(/may have been tampered with/);
    expect(emu.isValid(victim.values[0]!)).toBe(true);
    expect(refusals).toEqual([expect.objectContaining({ serviceAccountId: victim.id, env: 'production', reason: expect.stringContaining('ci-deploy-bot') })]);
  });

  it("keyrot's account of another environment is refused (a prefix of its name is not enough)", async () => {
    const iss = issuer();
    const other = await iss.issue({ env: 'prod-eu', rotationId: rotation() });
    const err = await refused(iss.revoke({ serviceAccountId: other.serviceAccountId, keyId: other.keyId, hint: other.key.hint, env: 'prod' }));
    expect(err.reason).toMatch(/not keyrot-prod-rot_/);
    expect(emu.isValid(other.key.reveal())).toBe(true);
  });

  it("keyrot's account for this environment, with a key id it does not own, is refused", async () => {
    const iss = issuer();
    const ours = await iss.issue({ env: 'production', rotationId: rotation() });
    const userKey = testKey();
    const userKeyId = emu.addUserKey(PROJECT, userKey);
    const err = await refused(iss.revoke({ serviceAccountId: ours.serviceAccountId, keyId: userKeyId, hint: new Secret(userKey).hint, env: 'production' }));
    expect(err.reason).toMatch(/owned by a user, not by it/);
    const missing = await refused(iss.revoke({ serviceAccountId: ours.serviceAccountId, keyId: 'key_00000000', hint: ours.key.hint, env: 'production' }));
    expect(missing.reason).toMatch(/does not own API key key_00000000/);
    expect(emu.isValid(ours.key.reveal()) && emu.isValid(userKey)).toBe(true);
  });

  it("keyrot's account and key with a hint that does not match is refused", async () => {
    const iss = issuer();
    const ours = await iss.issue({ env: 'production', rotationId: rotation() });
    const wrongHint = new Secret(testKey('sk-svcacct-')).hint;
    const err = await refused(iss.revoke({ serviceAccountId: ours.serviceAccountId, keyId: ours.keyId, hint: wrongHint, env: 'production' }));
    expect(err.reason).toContain(`not the recorded key ${wrongHint}`);
  });

  it('a looked-up key (id only) whose redacted value does not match the hint is refused', async () => {
    const userKey = testKey();
    const id = emu.addUserKey(PROJECT, userKey);
    await refused(issuer().revoke({ keyId: id, hint: new Secret(testKey()).hint, env: 'production' }));
    await refused(issuer().revoke({ keyId: id, env: 'production' }));
    expect(emu.isValid(userKey)).toBe(true);
  });

  it('what does check out is deleted: the minted account, the looked-up key', async () => {
    const iss = issuer();
    const ours = await iss.issue({ env: 'production', rotationId: rotation() });
    const r = await iss.revoke({ serviceAccountId: ours.serviceAccountId, keyId: ours.keyId, hint: ours.key.hint, env: 'production' });
    expect(r).toMatchObject({ revoked: true, alreadyGone: false });
    expect(emu.isValid(ours.key.reveal())).toBe(false);
    const userKey = testKey();
    const id = emu.addUserKey(PROJECT, userKey);
    expect(await iss.revoke({ keyId: id, hint: new Secret(userKey).hint, env: 'production' })).toMatchObject({ revoked: true, alreadyGone: false });
    expect(emu.isValid(userKey)).toBe(false);
    expect(refusals).toEqual([]);
  });
});

describe('the checks themselves', () => {
  it('service account names: exactly keyrot-<env>-<rotation id>', () => {
    const id = newRotationId(Date.parse('2026-03-01T09:00:00Z'), () => 'k3j9x2aa');
    expect(isKeyrotServiceAccount(`keyrot-prod-${id}`, 'prod')).toBe(true);
    expect(isKeyrotServiceAccount(`keyrot-prod-eu-${id}`, 'prod')).toBe(false);
    expect(isKeyrotServiceAccount(`keyrot-prod-${id}`, 'prod-eu')).toBe(false);
    expect(isKeyrotServiceAccount(`keyrot-a.b-${id}`, 'a.b')).toBe(true);
    expect(isKeyrotServiceAccount(`keyrot-axb-${id}`, 'a.b')).toBe(false);
    expect(isKeyrotServiceAccount('keyrot-prod-anything', 'prod')).toBe(false);
    expect(isKeyrotServiceAccount(`x-keyrot-prod-${id}`, 'prod')).toBe(false);
    expect(isKeyrotServiceAccount(null, 'prod')).toBe(false);
  });

  it('redacted values against hints: the visible tail and family must agree', () => {
    expect(redactedMatchesHint('sk-proj-abc****WXYZ', 'sk-proj-...WXYZ')).toBe(true);
    // The API reference's example shape, "sk-abc...def": 3 characters either side.
    expect(redactedMatchesHint('sk-pro...XYZ', 'sk-proj-...WXYZ')).toBe(true);
    expect(redactedMatchesHint('sk-abc...XYZ', 'sk-...WXYZ')).toBe(true);
    expect(redactedMatchesHint('sk-abc...XYZ', 'sk-proj-...WXYZ')).toBe(false);
    expect(redactedMatchesHint('sk-proj-abc****WXYQ', 'sk-proj-...WXYZ')).toBe(false);
    expect(redactedMatchesHint('sk-svcacct-abc****WXYZ', 'sk-proj-...WXYZ')).toBe(false);
    expect(redactedMatchesHint('sk-proj-********', 'sk-proj-...WXYZ')).toBe(false);
    expect(redactedMatchesHint('sk-proj-abc****WXYZ', '***')).toBe(false);
    expect(redactedMatchesHint(undefined, 'sk-proj-...WXYZ')).toBe(false);
  });
});

describe('keyrot revoke on an edited journal (CLI, openai-admin mode)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyrot-revoke-check-'));
    return () => rm(dir, { recursive: true, force: true });
  });

  /**
   * A state written before authentication existed (legacy lines, accepted as such), awaiting the
   * revocation of its old key, edited to name a service account that is not keyrot's.
   */
  async function pendingRevocationNaming(victim: { id: string; keyId: string; hint: string }): Promise<void> {
    const held = testKey();
    await writeFile(join(dir, 'openai_api_key'), held, { mode: 0o600 });
    await writeFile(
      join(dir, 'targets.yaml'),
      `version: 1
key:
  endpoint: ${emu.endpoint}
  admin:
    project: ${PROJECT}
    token: env:OPENAI_ADMIN_KEY
    endpoint: ${emu.endpoint}
revoke:
  mode: openai-admin
  disuse: { margin: 0s, limit: 1s, poll: 100ms }
environments:
  production:
    targets:
      - type: file
        name: key-file
        path: openai_api_key
`,
    );
    const rot = newRotationId(Date.now() - 60_000, () => 'edited1');
    const at = new Date(Date.now() - 60_000).toISOString();
    const base = { v: 1, rotation: rot, env: 'production', at };
    const newKey = new Secret(held);
    const lines = [
      {
        ...base,
        step: 'start',
        outcome: 'ok',
        mode: 'rotate',
        source: 'stdin',
        oldFingerprint: 'aaaaaaaaaaaa',
        oldHint: victim.hint,
        oldKeyId: victim.keyId,
        oldServiceAccountId: victim.id,
        alsoRevoke: [],
        targets: [{ name: 'key-file', type: 'file', location: 'openai_api_key', old: 'aaaaaaaaaaaa', readBack: true }],
      },
      { ...base, step: 'key', outcome: 'ok', fingerprint: newKey.fingerprint, hint: newKey.hint },
      { ...base, step: 'write', outcome: 'ok', target: 'key-file', fingerprint: newKey.fingerprint },
      { ...base, step: 'verify', outcome: 'ok', target: 'key-file', fingerprint: newKey.fingerprint, method: 'read-back' },
      { ...base, step: 'verified-all', outcome: 'ok', fingerprint: newKey.fingerprint },
      { ...base, step: 'end', outcome: 'awaiting-revocation' },
    ];
    await mkdir(join(dir, '.keyrot', 'journal'), { recursive: true });
    await writeFile(join(dir, '.keyrot', 'journal', 'production.ndjson'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  }

  it("a journal naming someone else's service account: exit 1, tampering said, refusal audited, no DELETE", async () => {
    const victim = emu.addServiceAccount(PROJECT, 'payments-prod');
    await pendingRevocationNaming({ id: victim.id, keyId: victim.keyIds[0]!, hint: new Secret(victim.values[0]!).hint });
    const r = await runCli(['revoke', '-e', 'production', '--yes'], { cwd: dir, env: { OPENAI_ADMIN_KEY: adminKey } });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/refusing to revoke service account svc_acct_\w+: it is named "payments-prod"/);
    expect(r.stderr).toMatch(/may have been tampered with/);
    expect(deletes()).toEqual([]);
    expect(emu.isValid(victim.values[0]!)).toBe(true);
    const audit = (await readFile(join(dir, '.keyrot', 'audit.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string; details?: Record<string, unknown> });
    expect(audit.find((e) => e.event === 'revocation.refused')?.details).toMatchObject({ serviceAccountId: victim.id, reason: expect.stringContaining('payments-prod') });
  }, 30_000);
});

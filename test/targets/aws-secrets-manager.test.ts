import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import type { AwsSecretsManagerEmulator } from '../../emulators/aws-secrets-manager/emulator.ts';
import { versionTokenFor } from '../../src/targets/aws-secrets-manager/version-token.ts';
import type { Target } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { SECRET, awsEnv, makeTarget, startEmulator } from '../helpers/aws-secrets-manager-fixture.ts';
import { awsSecretsManager, type AwsSecretsManagerReceipt } from '../../src/targets/aws-secrets-manager/index.ts';

let emu: AwsSecretsManagerEmulator;
let n = 0;
/** A fresh secret name per test (the emulator is shared by the file). */
let name: string;
const targets: Target<AwsSecretsManagerReceipt>[] = [];

beforeAll(async () => {
  emu = await startEmulator();
});
afterAll(async () => {
  await emu.stop();
});
beforeEach(() => {
  name = `${SECRET}-${++n}`;
});
afterEach(async () => {
  emu.clearFaults();
  while (targets.length) await targets.pop()!.close?.();
  vi.unstubAllEnvs();
});

async function target(config: Parameters<typeof makeTarget>[1] = {}, env?: NodeJS.ProcessEnv): Promise<Target<AwsSecretsManagerReceipt>> {
  const t = await makeTarget(emu, { secret: name, ...config }, env);
  targets.push(t);
  return t;
}

function op(rotationId = `rot_test_${n}`, key?: string) {
  return { rotationId, fingerprint: key ? new Secret(key).fingerprint : 'x' };
}

async function caught(p: Promise<unknown>): Promise<TargetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TargetError);
  return err as TargetError;
}

function noPending(): void {
  expect(emu.stages(name).AWSPENDING).toBeUndefined();
}

/**
 * AWS's "no rotation in progress": AWSPENDING on the AWSCURRENT version or on none (RotateSecret
 * API reference). keyrot leaves it on the version it promoted rather than spend a third write.
 */
function finishedRotation(): void {
  const { AWSPENDING, AWSCURRENT } = emu.stages(name);
  expect(AWSPENDING === undefined || AWSPENDING === AWSCURRENT).toBe(true);
}

describe('aws-secrets-manager: staging and promotion', () => {
  it('preflight is ready, reads AWSCURRENT, and explains the two phases', async () => {
    const oldKey = testKey();
    emu.seed(name, oldKey);
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind === 'value' && pf.current.value.reveal()).toBe(oldKey);
    expect(pf.notes?.join('\n')).toMatch(/AWSPENDING.*AWSCURRENT/);
    expect(awsSecretsManager.capabilities).toEqual({ readBack: 'always', versioned: true });
    expect(t.redeploy).toBeUndefined();
    expect(t.finalize).toBeUndefined();
    expect(t.location).toBe(name);
  });

  it('write stages AWSPENDING with the rotation token; verify promotes; the old version becomes AWSPREVIOUS', async () => {
    const oldKey = testKey();
    const newKey = testKey();
    const v1 = emu.seed(name, oldKey);
    const t = await target();
    const o = op(undefined, newKey);
    const token = versionTokenFor(o.rotationId);

    const receipt = await t.write(new Secret(newKey), o);
    expect(receipt).toMatchObject({ versionId: token, previousVersionId: v1, promoted: false, secretArn: emu.arnOf(name) });
    expect(JSON.stringify(receipt)).not.toContain(newKey);
    // Staged only: consumers still read the old key.
    expect(emu.stages(name)).toEqual({ AWSCURRENT: v1, AWSPENDING: token });
    expect(emu.value(name)).toBe(oldKey);
    const put = emu.calls('PutSecretValue').at(-1)!;
    expect(put.input).toMatchObject({ ClientRequestToken: token, VersionStages: ['AWSPENDING'] });

    const v = await t.verify(new Secret(newKey), o, receipt);
    expect(v.method).toBe('read-back');
    expect(v.detail).toContain(token);
    // AWSPENDING stays on the promoted version: AWS's "rotation finished" state, one write fewer.
    expect(emu.stages(name)).toEqual({ AWSCURRENT: token, AWSPENDING: token, AWSPREVIOUS: v1 });
    expect(emu.value(name)).toBe(newKey);
    expect(emu.value(name, 'AWSPREVIOUS')).toBe(oldKey);
    // Promotion named the old current as RemoveFromVersionId (AWS requires it).
    const promote = emu.calls('UpdateSecretVersionStage').find((c) => c.input.VersionStage === 'AWSCURRENT')!;
    expect(promote.input).toMatchObject({ MoveToVersionId: token, RemoveFromVersionId: v1 });
  });

  it('a retried write of the same rotation creates no second version, before or after promotion', async () => {
    const newKey = testKey();
    const v1 = emu.seed(name, testKey());
    const t = await target();
    const o = op(undefined, newKey);
    const r1 = await t.write(new Secret(newKey), o);
    const puts = emu.calls('PutSecretValue').length;
    const r2 = await t.write(new Secret(newKey), o);
    expect(r2).toEqual(r1);
    expect(emu.calls('PutSecretValue').length).toBe(puts);
    expect(emu.versions(name)).toHaveLength(2);

    await t.verify(new Secret(newKey), o, r1);
    await t.verify(new Secret(newKey), o, r1); // verify is re-entrant too
    const r3 = await t.write(new Secret(newKey), o);
    expect(r3).toMatchObject({ versionId: versionTokenFor(o.rotationId), previousVersionId: v1, promoted: true });
    expect(emu.versions(name)).toHaveLength(2);
    const token = versionTokenFor(o.rotationId);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: token, AWSPENDING: token, AWSPREVIOUS: v1 });
  });

  // Issue 12: PutSecretValue and UpdateSecretVersionStage share 50 writes a second per account and
  // region; a rotation used to spend 3 of them per secret (the third removed AWSPENDING from the
  // promoted version, a state AWS itself calls finished). Now 2: 250 secrets take 10 s, not 15.
  it('a rotation costs 5 calls, 2 of them writes: preflight 2 (DescribeSecret, GetSecretValue), write 1 (PutSecretValue), verify 2 (GetSecretValue of the version, promote)', async () => {
    const newKey = testKey();
    const v1 = emu.seed(name, testKey());
    const t = await target();
    const o = op(undefined, newKey);
    const before = emu.calls().length;
    expect((await t.preflight()).status).toBe('ready');
    const receipt = await t.write(new Secret(newKey), o);
    await t.verify(new Secret(newKey), o, receipt);
    expect(emu.calls().slice(before).map((c) => c.action)).toEqual([
      'DescribeSecret',
      'GetSecretValue',
      'PutSecretValue',
      'GetSecretValue',
      'UpdateSecretVersionStage',
    ]);
    const token = versionTokenFor(o.rotationId);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: token, AWSPENDING: token, AWSPREVIOUS: v1 });
  });

  it('a resumed run whose preflight already sees this rotation\'s promoted version writes nothing and keeps the replaced version in its receipt', async () => {
    const newKey = testKey();
    const v1 = emu.seed(name, testKey());
    const o = op(undefined, newKey);
    const first = await target();
    await first.verify(new Secret(newKey), o, await first.write(new Secret(newKey), o));
    // Another process (keyrot resume): preflight, then the write of the same rotation.
    const t = await target();
    expect((await t.preflight()).status).toBe('ready');
    const puts = emu.calls('PutSecretValue').length;
    const receipt = await t.write(new Secret(newKey), o);
    expect(receipt).toMatchObject({ versionId: versionTokenFor(o.rotationId), previousVersionId: v1, promoted: true });
    expect(emu.calls('PutSecretValue')).toHaveLength(puts);
  });

  it('targets of one account share an SDK client: closing one (twice) leaves the others working; a target made after all closed works', async () => {
    const key = testKey();
    emu.seed(name, key);
    const a = await target();
    const b = await target();
    await a.close?.();
    await a.close?.(); // idempotent: it does not release b's use
    const r = await b.read();
    expect(r.kind === 'value' && r.value.equals(new Secret(key))).toBe(true);
    await b.close?.();
    // A target made after every user closed gets a fresh client.
    const c = await target();
    expect((await c.read()).kind).toBe('value');
  });

  it('the same rotation with a different key is a conflict, not a second version', async () => {
    emu.seed(name, testKey());
    const t = await target();
    const o = op();
    await t.write(new Secret(testKey()), o);
    const other = testKey();
    const err = await caught(t.write(new Secret(other), o));
    expect(err.kind).toBe('conflict');
    expect(err.message).toMatch(/rotation id was reused/);
    expect(err.message).not.toContain(other);
    expect(emu.versions(name)).toHaveLength(2);
  });

  it('verify refuses a staged version that does not hold the key, and promotes nothing', async () => {
    const v1 = emu.seed(name, testKey());
    const t = await target();
    const o = op();
    const receipt = await t.write(new Secret(testKey()), o);
    const wrong = testKey();
    const err = await caught(t.verify(new Secret(wrong), o, receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).not.toContain(wrong);
    expect(emu.stages(name).AWSCURRENT).toBe(v1);
  });

  it('verify does not promote over someone else’s change to AWSCURRENT (label compare-and-swap)', async () => {
    const newKey = testKey();
    emu.seed(name, testKey());
    const t = await target();
    const o = op(undefined, newKey);
    const receipt = await t.write(new Secret(newKey), o);
    const theirs = emu.seed(name, testKey()); // someone rotates meanwhile
    const err = await caught(t.verify(new Secret(newKey), o, receipt));
    expect(err.kind).toBe('conflict');
    expect(err.message).toMatch(/AWSCURRENT .* moved/);
    await t.restore(null, o, receipt);
    expect(emu.stages(name).AWSCURRENT).toBe(theirs);
    noPending();
  });

  it('a secret without any value gets its first version (no RemoveFromVersionId)', async () => {
    emu.createEmpty(name);
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind).toBe('absent');
    expect(pf.willCreate).toBe(true);
    const newKey = testKey();
    const o = op(undefined, newKey);
    const receipt = await t.write(new Secret(newKey), o);
    expect(receipt.previousVersionId).toBeNull();
    // AWS gives the first version of a secret AWSCURRENT even when asked for AWSPENDING only.
    await t.verify(new Secret(newKey), o, receipt);
    expect(emu.value(name)).toBe(newKey);
    finishedRotation();
    const err = await caught(t.restore(null, o, receipt));
    expect(err.kind).toBe('unsupported');
    expect(err.message).toMatch(/had no value before/);
  });
});

describe('aws-secrets-manager: restore', () => {
  it('before promotion: removes AWSPENDING and leaves AWSCURRENT exactly as it was', async () => {
    const oldKey = testKey();
    const v0 = emu.seed(name, testKey());
    const v1 = emu.seed(name, oldKey);
    const before = emu.stages(name);
    const t = await target();
    const o = op();
    const receipt = await t.write(new Secret(testKey()), o);
    await t.restore(new Secret(oldKey), o, receipt);
    expect(emu.stages(name)).toEqual(before);
    expect(before).toEqual({ AWSCURRENT: v1, AWSPREVIOUS: v0 });
    await t.restore(new Secret(oldKey), o, receipt); // idempotent
    expect(emu.stages(name)).toEqual(before);
  });

  it('after promotion: AWSCURRENT goes back to the old version id (same bytes), no AWSPENDING left', async () => {
    const oldKey = testKey();
    const newKey = testKey();
    const v1 = emu.seed(name, oldKey);
    const t = await target();
    const o = op(undefined, newKey);
    const receipt = await t.write(new Secret(newKey), o);
    await t.verify(new Secret(newKey), o, receipt);
    await t.restore(new Secret(oldKey), o, receipt);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: v1, AWSPREVIOUS: versionTokenFor(o.rotationId) });
    expect(emu.value(name)).toBe(oldKey);
    await t.restore(new Secret(oldKey), o, receipt);
    expect(emu.stages(name).AWSCURRENT).toBe(v1);
    // Restore re-used the old version: no value was re-sent.
    expect(emu.versions(name)).toHaveLength(2);
  });

  it('without a receipt (crash before the journal) it finds the versions from the rotation id and AWSPREVIOUS', async () => {
    const oldKey = testKey();
    const newKey = testKey();
    const v1 = emu.seed(name, oldKey);
    const t = await target();
    const o = op(undefined, newKey);
    await t.write(new Secret(newKey), o);
    await t.verify(new Secret(newKey), o, undefined);
    expect(emu.stages(name).AWSCURRENT).toBe(versionTokenFor(o.rotationId));
    await t.restore(new Secret(oldKey), o, undefined);
    expect(emu.stages(name).AWSCURRENT).toBe(v1);
    noPending();
  });

  it('without a receipt it refuses to restore an AWSPREVIOUS that is not the replaced key', async () => {
    const newKey = testKey();
    emu.seed(name, testKey());
    const t = await target();
    const o = op(undefined, newKey);
    await t.write(new Secret(newKey), o);
    await t.verify(new Secret(newKey), o, undefined);
    const err = await caught(t.restore(new Secret(testKey()), o, undefined));
    expect(err.kind).toBe('conflict');
    expect(emu.stages(name).AWSCURRENT).toBe(versionTokenFor(o.rotationId));
  });
});

describe('aws-secrets-manager: AWSPENDING left by others', () => {
  /** The write calls (PutSecretValue, UpdateSecretVersionStage) since `from`, with their labels. */
  const writesSince = (from: number) =>
    emu
      .calls()
      .slice(from)
      .filter((c) => c.action === 'PutSecretValue' || c.action === 'UpdateSecretVersionStage')
      .map((c) => [c.action, c.input.VersionStages ?? c.input.VersionStage]);

  it('preflight reports a stuck keyrot AWSPENDING with its version id; the write moves it in its one PutSecretValue', async () => {
    const v1 = emu.seed(name, testKey());
    const stale = versionTokenFor('rot_crashed_earlier');
    emu.seed(name, testKey(), { versionId: stale, stages: ['AWSPENDING'] });
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.notes?.join('\n')).toContain(stale);
    const newKey = testKey();
    const o = op(undefined, newKey);
    const before = emu.calls().length;
    const receipt = await t.write(new Secret(newKey), o);
    expect(writesSince(before)).toEqual([['PutSecretValue', ['AWSPENDING']]]);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: v1, AWSPENDING: versionTokenFor(o.rotationId) });
    await t.verify(new Secret(newKey), o, receipt);
    finishedRotation();
  });

  it('re-staging this rotation\'s unlabeled version takes AWSPENDING from a stuck keyrot version in one call (RemoveFromVersionId)', async () => {
    const v1 = emu.seed(name, testKey());
    const stale = versionTokenFor('rot_crashed_earlier');
    emu.seed(name, testKey(), { versionId: stale, stages: ['AWSPENDING'] });
    const newKey = testKey();
    const o = op(undefined, newKey);
    const token = versionTokenFor(o.rotationId);
    emu.seed(name, newKey, { versionId: token, stages: [] }); // staged, then its label lost (a restore before a resume forward)
    const t = await target();
    const before = emu.calls().length;
    const receipt = await t.write(new Secret(newKey), o);
    expect(writesSince(before)).toEqual([['UpdateSecretVersionStage', 'AWSPENDING']]);
    expect(emu.calls('UpdateSecretVersionStage').at(-1)!.input).toMatchObject({ MoveToVersionId: token, RemoveFromVersionId: stale });
    expect(emu.stages(name)).toEqual({ AWSCURRENT: v1, AWSPENDING: token });
    await t.verify(new Secret(newKey), o, receipt);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: token, AWSPENDING: token, AWSPREVIOUS: v1 });
  });

  it('refuses an AWSPENDING that keyrot did not create (a rotation Lambda in progress), changing nothing', async () => {
    const v1 = emu.seed(name, testKey());
    const foreign = '0c0ffee0-0000-4000-8000-000000000001';
    emu.seed(name, testKey(), { versionId: foreign, stages: ['AWSPENDING'] });
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain(foreign);
    const err = await caught(t.write(new Secret(testKey()), op()));
    expect(err.kind).toBe('conflict');
    expect(err.message).toContain(foreign);
    expect(err.message).toContain('update-secret-version-stage');
    expect(emu.stages(name)).toEqual({ AWSCURRENT: v1, AWSPENDING: foreign });
    expect(emu.versions(name)).toHaveLength(2);
  });

  it('AWSPENDING on the AWSCURRENT version (a finished AWS rotation) does not block', async () => {
    const v1 = emu.seed(name, testKey(), { stages: ['AWSCURRENT', 'AWSPENDING'] });
    const t = await target();
    expect((await t.preflight()).status).toBe('ready');
    const newKey = testKey();
    const o = op(undefined, newKey);
    const receipt = await t.write(new Secret(newKey), o);
    await t.verify(new Secret(newKey), o, receipt);
    const token = versionTokenFor(o.rotationId);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: token, AWSPENDING: token, AWSPREVIOUS: v1 });
  });
});

describe('aws-secrets-manager: the labels keyrot leaves (AWSPENDING on AWSCURRENT)', () => {
  /** One whole rotation by a fresh target (a fresh process): preflight, write, verify. */
  async function rotateOnce(key: string, rotationId: string): Promise<AwsSecretsManagerReceipt> {
    const t = await target();
    expect((await t.preflight()).status).toBe('ready');
    const o = op(rotationId, key);
    const receipt = await t.write(new Secret(key), o);
    await t.verify(new Secret(key), o, receipt);
    return receipt;
  }

  it('the next rotation\'s PutSecretValue moves AWSPENDING off the last one\'s version: 2 writes each, no clean-up call', async () => {
    const v1 = emu.seed(name, testKey());
    const first = testKey();
    await rotateOnce(first, `rot_first_${n}`);
    const t1 = versionTokenFor(`rot_first_${n}`);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: t1, AWSPENDING: t1, AWSPREVIOUS: v1 });

    const before = emu.calls().length;
    const second = testKey();
    await rotateOnce(second, `rot_second_${n}`);
    const t2 = versionTokenFor(`rot_second_${n}`);
    const writes = emu.calls().slice(before).filter((c) => c.action === 'PutSecretValue' || c.action === 'UpdateSecretVersionStage');
    expect(writes.map((c) => [c.action, c.input.VersionStages ?? c.input.VersionStage])).toEqual([
      ['PutSecretValue', ['AWSPENDING']],
      ['UpdateSecretVersionStage', 'AWSCURRENT'],
    ]);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: t2, AWSPENDING: t2, AWSPREVIOUS: t1 });
    expect(emu.value(name)).toBe(second);
  });

  it('a verify run again by another process (resume) on the promoted version writes nothing and leaves AWSPENDING where it is', async () => {
    emu.seed(name, testKey());
    const newKey = testKey();
    const receipt = await rotateOnce(newKey, `rot_resumed_${n}`);
    const stages = emu.stages(name);
    const t = await target();
    const writes = () => emu.calls().filter((c) => c.action === 'PutSecretValue' || c.action === 'UpdateSecretVersionStage').length;
    const before = writes();
    const v = await t.verify(new Secret(newKey), op(`rot_resumed_${n}`, newKey), receipt);
    expect(v.method).toBe('read-back');
    expect(writes()).toBe(before);
    expect(emu.stages(name)).toEqual(stages);
  });

  it('after a change outside keyrot (AWSPENDING left on keyrot\'s version, now AWSPREVIOUS), preflight says so and the next rotation moves the label', async () => {
    emu.seed(name, testKey());
    await rotateOnce(testKey(), `rot_before_${n}`);
    const theirs = emu.seed(name, testKey()); // PutSecretValue without VersionStages: only AWSCURRENT moves
    const mine = versionTokenFor(`rot_before_${n}`);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: theirs, AWSPENDING: mine, AWSPREVIOUS: mine });
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.notes?.join('\n')).toContain(`AWSPENDING is on version ${mine}, not on AWSCURRENT`);
    expect(pf.notes?.join('\n')).toMatch(/changed outside keyrot/);
    const newKey = testKey();
    const o = op(`rot_after_${n}`, newKey);
    await t.verify(new Secret(newKey), o, await t.write(new Secret(newKey), o));
    const next = versionTokenFor(o.rotationId);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: next, AWSPENDING: next, AWSPREVIOUS: theirs });
  });

  it('a rollback cut short after AWSCURRENT went back (AWSPENDING still on the new version) is finished by restore again', async () => {
    const oldKey = testKey();
    const newKey = testKey();
    const v1 = emu.seed(name, oldKey);
    const o = op(`rot_rollback_${n}`, newKey);
    const token = versionTokenFor(o.rotationId);
    // The state between restore's two writes: AWSCURRENT moved back (AWSPREVIOUS followed), AWSPENDING not removed yet.
    emu.seed(name, newKey, { versionId: token, stages: ['AWSPENDING', 'AWSPREVIOUS'] });
    const t = await target();
    await t.restore(new Secret(oldKey), o, { secretArn: emu.arnOf(name), versionId: token, previousVersionId: v1, promoted: true });
    expect(emu.stages(name)).toEqual({ AWSCURRENT: v1, AWSPREVIOUS: token });
    expect(emu.value(name)).toBe(oldKey);
  });
});

describe('aws-secrets-manager: field of a JSON SecretString', () => {
  const odd = (key: string) =>
    '{\n' +
    '    "DB_URL" : "postgres://u@db:5432/app",\r\n' +
    '\t"OPENAI_API_KEY":   "' +
    key +
    '",\n' +
    '  "greeting": "Grüße \\u00e9 😀 \\/ done",\n' +
    '  "n": 1.50, "nested": {"OPENAI_API_KEY": "keep"}\n' +
    '}';

  it('only the field changes: the rest of the SecretString is byte-identical; restore is exact', async () => {
    const oldKey = testKey();
    const newKey = testKey();
    const original = odd(oldKey);
    const v1 = emu.seed(name, original);
    const t = await target({ field: 'OPENAI_API_KEY' });
    expect(t.location).toBe(`${name}[OPENAI_API_KEY]`);
    const pf = await t.preflight();
    expect(pf.current.kind === 'value' && pf.current.value.reveal()).toBe(oldKey);
    const o = op(undefined, newKey);
    const receipt = await t.write(new Secret(newKey), o);
    await t.verify(new Secret(newKey), o, receipt);
    expect(emu.value(name)).toBe(odd(newKey));
    await t.restore(new Secret(oldKey), o, receipt);
    expect(emu.stages(name).AWSCURRENT).toBe(v1);
    expect(emu.value(name)).toBe(original);
  });

  it('an absent field is added; the other fields keep their bytes', async () => {
    emu.seed(name, '{\n  "A": "1",\n  "B": "ü"\n}');
    const t = await target({ field: 'OPENAI_API_KEY' });
    const pf = await t.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.willCreate).toBe(true);
    const newKey = testKey();
    const o = op(undefined, newKey);
    await t.verify(new Secret(newKey), o, await t.write(new Secret(newKey), o));
    expect(emu.value(name)).toBe(`{\n  "A": "1",\n  "B": "ü",\n  "OPENAI_API_KEY": "${newKey}"\n}`);
  });

  it('a non-JSON secret is refused in product words, without the value', async () => {
    const plain = testKey();
    emu.seed(name, plain);
    const t = await target({ field: 'OPENAI_API_KEY' });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/not valid JSON.*Remove field:/);
    expect(pf.reason).not.toContain(plain);
    const err = await caught(t.write(new Secret(testKey()), op()));
    expect(err.kind).toBe('invalid');
    expect(emu.versions(name)).toHaveLength(1);
  });

  it('re-staging refuses when other fields of AWSCURRENT changed since the version was made', async () => {
    emu.seed(name, '{"A":"1","OPENAI_API_KEY":"x"}');
    const t = await target({ field: 'OPENAI_API_KEY' });
    const newKey = testKey();
    const o = op(undefined, newKey);
    const r = await t.write(new Secret(newKey), o);
    await t.restore(null, o, r); // unlabeled now
    emu.seed(name, '{"A":"2","OPENAI_API_KEY":"x"}');
    const err = await caught(t.write(new Secret(newKey), o));
    expect(err.kind).toBe('conflict');
    noPending();
  });
});

describe('aws-secrets-manager: errors in product words', () => {
  it('throttling is retried by the engine policy (withRetry), the SDK makes one attempt per call', async () => {
    emu.seed(name, testKey());
    const t = await target();
    const newKey = testKey();
    const o = op(undefined, newKey);
    emu.throttleNext(2);
    const clock = fakeClock();
    const seen: string[] = [];
    const receipt = await withRetry(() => t.write(new Secret(newKey), o), {
      clock,
      random: () => 0.5,
      onRetry: ({ error }) => seen.push(`${error.kind}:${error.retryable}`),
    });
    expect(seen).toEqual(['rate-limited:true', 'rate-limited:true']);
    expect(clock.slept).toHaveLength(2);
    expect(receipt.versionId).toBe(versionTokenFor(o.rotationId));
    // Exactly two throttled requests reached the emulator: no hidden SDK retries.
    expect(emu.calls().filter((c) => c.status === 400 && c.action === 'DescribeSecret')).toHaveLength(2);
  });

  it('an InternalServiceError (500) is retryable "unavailable"', async () => {
    emu.seed(name, testKey());
    const t = await target();
    emu.failNext({ action: 'DescribeSecret' });
    const err = await caught(t.write(new Secret(testKey()), op()));
    expect(err.kind).toBe('unavailable');
    expect(err.retryable).toBe(true);
    expect(err.status).toBe(500);
  });

  it('AccessDeniedException names the IAM action and the secret', async () => {
    emu.seed(name, testKey());
    const t = await target();
    emu.denyAction('PutSecretValue', name);
    const err = await caught(t.write(new Secret(testKey()), op()));
    expect(err.kind).toBe('permission');
    expect(err.message).toContain(`AWS denied secretsmanager:PutSecretValue on ${name}`);
    expect(err.message).toMatch(/grant it/);
    emu.allowAction('PutSecretValue', name);

    emu.denyAction('DescribeSecret', name);
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain('secretsmanager:DescribeSecret');
    emu.allowAction('DescribeSecret', name);
  });

  it('a denied promotion fails verify; restore (once allowed) leaves no AWSPENDING', async () => {
    const v1 = emu.seed(name, testKey());
    const t = await target();
    const newKey = testKey();
    const o = op(undefined, newKey);
    const receipt = await t.write(new Secret(newKey), o);
    emu.denyAction('UpdateSecretVersionStage', name);
    const err = await caught(t.verify(new Secret(newKey), o, receipt));
    expect(err.kind).toBe('permission');
    expect(err.message).toContain('secretsmanager:UpdateSecretVersionStage');
    emu.allowAction('UpdateSecretVersionStage', name);
    await t.restore(null, o, receipt);
    expect(emu.stages(name)).toEqual({ AWSCURRENT: v1 });
  });

  it('an unknown access key is an auth error in product words', async () => {
    emu.seed(name, testKey());
    const stranger = emu.addCredentials();
    const t = await target({}, awsEnv(emu, { AWS_ACCESS_KEY_ID: stranger.accessKeyId, AWS_SECRET_ACCESS_KEY: stranger.secretAccessKey }));
    emu.revokeCredentials(stranger.accessKeyId);
    const err = await caught(t.write(new Secret(testKey()), op()));
    expect(err.kind).toBe('auth');
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(`AWS rejected the credentials keyrot used for ${name} (us-east-1): the access key id is not valid (deleted, inactive, or from another account/partition)`);
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/rejected the credentials/);
  });

  it('a wrong secret access key (InvalidSignatureException) and expired session credentials are auth errors', async () => {
    emu.seed(name, testKey());
    const t1 = await target({}, awsEnv(emu, { AWS_SECRET_ACCESS_KEY: 'wrong-secret-key-for-test' }));
    const e1 = await caught(t1.read());
    expect(e1.kind).toBe('auth');
    expect(e1.message).toMatch(/signature does not match/);
    expect(e1.message).not.toContain('wrong-secret-key-for-test');

    const session = emu.addCredentials({ sessionToken: 'session-token-for-test' });
    const t2 = await target(
      {},
      awsEnv(emu, { AWS_ACCESS_KEY_ID: session.accessKeyId, AWS_SECRET_ACCESS_KEY: session.secretAccessKey, AWS_SESSION_TOKEN: 'session-token-for-test' }),
    );
    expect((await t2.read()).kind).toBe('value'); // the session token is sent and accepted
    emu.expireCredentials(session.accessKeyId);
    const e2 = await caught(t2.read());
    expect(e2.kind).toBe('auth');
    expect(e2.message).toMatch(/expired/);
  });

  it('a missing secret is not-found, naming the secret and region', async () => {
    const t = await target({ secret: 'does/not-exist' });
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain('AWS Secrets Manager has no secret does/not-exist in us-east-1');
    const err = await caught(t.read());
    expect(err.kind).toBe('not-found');
  });

  it('the key value is absent from every error', async () => {
    const oldKey = testKey();
    const newKey = testKey();
    emu.seed(name, `{"OPENAI_API_KEY":"${oldKey}"}`);
    const t = await target({ field: 'OPENAI_API_KEY' });
    const errors: TargetError[] = [];
    const o = op(undefined, newKey);
    for (const act of ['DescribeSecret', 'GetSecretValue', 'PutSecretValue'] as const) {
      emu.denyAction(act, name);
      errors.push(await caught(t.write(new Secret(newKey), o)));
      emu.allowAction(act, name);
    }
    emu.failNext({ action: 'PutSecretValue', type: 'EncryptionFailure', message: 'KMS key is disabled' });
    errors.push(await caught(t.write(new Secret(newKey), o)));
    emu.failNext({ action: 'GetSecretValue', type: 'DecryptionFailure' });
    errors.push(await caught(t.read()));
    emu.throttleNext(1);
    errors.push(await caught(t.write(new Secret(newKey), o)));
    const r = await t.write(new Secret(newKey), o);
    errors.push(await caught(t.write(new Secret(testKey()), o))); // conflict
    errors.push(await caught(t.verify(new Secret(oldKey), o, r))); // mismatch
    emu.revokeCredentials();
    errors.push(await caught(t.restore(new Secret(oldKey), o, r)));
    emu.addCredentials(emu.credentials);
    await t.restore(new Secret(oldKey), o, r);
    noPending();

    expect(errors.map((e) => e.kind)).toEqual(['permission', 'permission', 'permission', 'permission', 'permission', 'rate-limited', 'conflict', 'mismatch', 'auth']);
    for (const e of errors) {
      for (const k of [oldKey, newKey]) {
        expect(e.message).not.toContain(k);
        expect(JSON.stringify(e)).not.toContain(k);
        expect(String(e)).not.toContain(k);
      }
      expect(e.message).not.toMatch(/\$metadata|httpStatusCode|at .*\.js/);
    }
  });
});

describe('aws-secrets-manager: endpoint, region and credentials resolution', () => {
  it('AWS_ENDPOINT_URL_SECRETS_MANAGER from the environment is the endpoint when endpoint: is absent', async () => {
    const key = testKey();
    emu.seed(name, key);
    const t = await target({ endpoint: null }, awsEnv(emu, { AWS_ENDPOINT_URL_SECRETS_MANAGER: emu.url, AWS_ENDPOINT_URL: 'http://127.0.0.1:9' }));
    const r = await t.read();
    expect(r.kind === 'value' && r.value.reveal()).toBe(key);
  });

  it('the SDK itself honours AWS_ENDPOINT_URL from process.env (checked: @smithy getEndpointUrlConfig)', async () => {
    const key = testKey();
    emu.seed(name, key);
    vi.stubEnv('AWS_ENDPOINT_URL_SECRETS_MANAGER', '');
    vi.stubEnv('AWS_ENDPOINT_URL', emu.url);
    const t = await target({ endpoint: null }, awsEnv(emu));
    const r = await t.read();
    expect(r.kind === 'value' && r.value.reveal()).toBe(key);
  });

  it('endpoint: from targets.yaml wins over the environment', async () => {
    emu.seed(name, testKey());
    const t = await target({}, awsEnv(emu, { AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:9' }));
    expect((await t.read()).kind).toBe('value');
  });

  it('the region comes from a secret ARN; a contradicting region: is a preflight error', async () => {
    const key = testKey();
    emu.seed(name, key);
    const arn = emu.arnOf(name);
    const env = awsEnv(emu);
    delete env.AWS_REGION;
    const t = await makeTarget(emu, { secret: arn, region: undefined }, env);
    targets.push(t);
    const r = await t.read();
    expect(r.kind === 'value' && r.value.reveal()).toBe(key);
    const bad = await makeTarget(emu, { secret: arn, region: 'eu-west-1' });
    targets.push(bad);
    const pf = await bad.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/ARN is in us-east-1 but region: says eu-west-1/);
  });

  it('no region anywhere is an invalid-configuration error', async () => {
    emu.seed(name, testKey());
    vi.stubEnv('AWS_REGION', undefined);
    vi.stubEnv('AWS_DEFAULT_REGION', undefined);
    vi.stubEnv('AWS_PROFILE', undefined);
    vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/keyrot-test-aws-config');
    const env = awsEnv(emu);
    delete env.AWS_REGION;
    const t = await makeTarget(emu, { secret: name, region: undefined }, env);
    targets.push(t);
    const err = await caught(t.read());
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/no AWS region/);
  });

  it('no credentials anywhere in the default chain is an auth error saying where it looked', async () => {
    emu.seed(name, testKey());
    for (const v of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) {
      vi.stubEnv(v, undefined);
    }
    vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/keyrot-test-aws-config');
    vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/keyrot-test-aws-credentials');
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true'); // never reach for 169.254.169.254 in a test
    const t = await target({}, { AWS_REGION: 'us-east-1' });
    const err = await caught(t.read());
    expect(err.kind).toBe('auth');
    expect(err.message).toMatch(/^no AWS credentials were found for /);
    expect(err.message).not.toMatch(/rejected/);
    expect(err.message).toContain('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
    expect(err.message).toContain('AWS_PROFILE');
    expect(err.message).toContain('instance/task role');
    expect(emu.calls().filter((c) => c.input.SecretId === name)).toHaveLength(0);
  });

  it('an unreachable endpoint is "unavailable", naming the endpoint', async () => {
    const t = await target({ endpoint: 'http://127.0.0.1:9' });
    const err = await caught(t.read());
    expect(err.kind).toBe('unavailable');
    expect(err.message).toContain('cannot reach AWS Secrets Manager at http://127.0.0.1:9');
  });

  it('a secret scheduled for deletion is a preflight error', async () => {
    emu.seed(name, testKey());
    emu.markDeleted(name);
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/scheduled for deletion/);
  });

  it('enabled AWS rotation is noted in the plan', async () => {
    emu.seed(name, testKey());
    emu.setRotationEnabled(name, true);
    const t = await target();
    const pf = await t.preflight();
    expect(pf.notes?.join('\n')).toMatch(/AWS rotation is enabled/);
  });
});

describe('aws-secrets-manager: demo', () => {
  it('the demo entries rotate end to end; the JSON secret keeps its other fields', async () => {
    const { demo } = await import('../../emulators/aws-secrets-manager/demo.ts');
    const { awsSecretsManager } = await import('../../src/targets/aws-secrets-manager/index.ts');
    const { testContext } = await import('../helpers/context.ts');
    const oldKey = testKey();
    const newKey = testKey();
    const setup = await demo({ oldKey, workDir: '/nonexistent', varName: 'OPENAI_API_KEY' });
    if ('skip' in setup) throw new Error(setup.skip);
    try {
      expect(setup.targets).toHaveLength(2);
      for (const [i, entry] of setup.targets.entries()) {
        const { type, endpoint, ...rest } = entry as { type: string; endpoint: string };
        expect(type).toBe('aws-secrets-manager');
        const config = awsSecretsManager.schema.parse(rest);
        const t = await awsSecretsManager.create({ ...config, endpoint }, testContext({ name: `demo-${i}`, env: { ...setup.env } }));
        targets.push(t);
        const pf = await t.preflight();
        expect(pf.status, pf.reason).toBe('ready');
        expect(pf.current.kind === 'value' && pf.current.value.reveal()).toBe(oldKey);
        const o = { rotationId: 'rot_demo_test', fingerprint: new Secret(newKey).fingerprint };
        await t.verify(new Secret(newKey), o, await t.write(new Secret(newKey), o));
        const now = await t.read();
        expect(now.kind === 'value' && now.value.reveal()).toBe(newKey);
      }
    } finally {
      await setup.stop();
    }
  });
});

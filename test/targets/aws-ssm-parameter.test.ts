import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { AwsSsmParameterEmulator } from '../../emulators/aws-ssm-parameter/emulator.ts';
import { awsSsmParameter, type AwsSsmParameterReceipt } from '../../src/targets/aws-ssm-parameter/index.ts';
import type { Target } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { testContext } from '../helpers/context.ts';

let emu: AwsSsmParameterEmulator;
let n = 0;
let name: string;
const targets: Target<AwsSsmParameterReceipt>[] = [];

beforeAll(async () => {
  emu = new AwsSsmParameterEmulator();
  await emu.start();
});
afterAll(async () => {
  await emu.stop();
});
beforeEach(() => {
  name = `/acme/test-${++n}/openai-api-key`;
});
afterEach(async () => {
  emu.clearFaults();
  while (targets.length) await targets.pop()!.close?.();
});

function awsEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { AWS_ACCESS_KEY_ID: emu.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: emu.credentials.secretAccessKey, ...extra };
}

async function target(config: Record<string, unknown> = {}, env = awsEnv()): Promise<Target<AwsSsmParameterReceipt>> {
  const { endpoint, ...rest } = config;
  const parsed = awsSsmParameter.schema.parse({ parameter: name, region: 'us-east-1', ...rest });
  const t = await awsSsmParameter.create({ ...parsed, ...(endpoint === null ? {} : { endpoint: (endpoint as string) ?? emu.url }) }, testContext({ name: 'ssm', env }));
  targets.push(t);
  return t;
}

const op = (key: string, rotationId = `rot_ssm_${n}`) => ({ rotationId, fingerprint: new Secret(key).fingerprint });

describe('aws-ssm-parameter: write, verify, restore', () => {
  it('preflight is ready, reads the latest version decrypted, and says what the write does', async () => {
    const oldKey = testKey();
    emu.seed(name, oldKey);
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind === 'value' && pf.current.value.reveal()).toBe(oldKey);
    expect(pf.notes?.join('\n')).toMatch(/version 2 .*SecureString encrypted with alias\/aws\/ssm; older versions stay/);
    expect(awsSsmParameter.capabilities).toEqual({ readBack: 'always', versioned: true });
    expect(t.redeploy).toBeUndefined();
    expect(t.location).toBe(name);
  });

  it('write makes a new version with Overwrite, keeping the KMS key and tier; verify reads that version decrypted', async () => {
    const [oldKey, newKey] = [testKey(), testKey()];
    emu.store.kms.add('alias/team');
    emu.seed(name, oldKey, { keyId: 'alias/team', tier: 'Advanced' });
    const t = await target();
    const o = op(newKey);
    const receipt = await t.write(new Secret(newKey), o);
    expect(receipt).toEqual({ parameter: name, version: 2, previousVersion: 1, created: false, label: null });
    expect(emu.versions(name).map((v) => [v.version, v.keyId])).toEqual([
      [1, 'alias/team'],
      [2, 'alias/team'],
    ]);
    const put = emu.calls('PutParameter').at(-1)!.input;
    expect(put).toMatchObject({ Name: name, Type: 'SecureString', KeyId: 'alias/team', Tier: 'Advanced', Overwrite: true });
    const v = await t.verify(new Secret(newKey), o, receipt);
    expect(v).toMatchObject({ method: 'read-back' });
    expect(v.detail).toContain('version 2');
    expect(emu.calls('GetParameter').some((c) => c.input.Name === `${name}:2` && c.input.WithDecryption === true)).toBe(true);
  });

  it('a retried write of the same key makes no second version and returns the same receipt', async () => {
    const newKey = testKey();
    emu.seed(name, testKey());
    const t = await target();
    const r1 = await t.write(new Secret(newKey), op(newKey));
    const r2 = await t.write(new Secret(newKey), op(newKey));
    expect(r2).toEqual(r1);
    expect(emu.versions(name)).toHaveLength(2);
  });

  it('restore writes the old value as a new version (history kept), with or without a receipt, idempotently', async () => {
    const [oldKey, newKey] = [testKey(), testKey()];
    emu.seed(name, oldKey);
    const t = await target();
    const o = op(newKey);
    const receipt = await t.write(new Secret(newKey), o);
    await t.restore(new Secret(oldKey), o, receipt);
    expect(emu.versions(name).map((v) => v.value)).toEqual([oldKey, newKey, oldKey]);
    await t.restore(new Secret(oldKey), o, receipt);
    await t.restore(new Secret(oldKey), o, undefined);
    expect(emu.versions(name)).toHaveLength(3);
    expect(emu.calls('DeleteParameter')).toEqual([]);
  });

  it('restore without a receipt after a crash right after the write', async () => {
    const [oldKey, newKey] = [testKey(), testKey()];
    emu.seed(name, oldKey);
    const t = await target();
    await t.write(new Secret(newKey), op(newKey));
    await t.restore(new Secret(oldKey), op(newKey), undefined);
    expect(emu.value(name)).toBe(oldKey);
  });

  it('restore refuses to overwrite a value someone else wrote since, and never names a key', async () => {
    const [oldKey, newKey, theirs] = [testKey(), testKey(), testKey()];
    emu.seed(name, oldKey);
    const t = await target();
    const receipt = await t.write(new Secret(newKey), op(newKey));
    emu.seed(name, theirs);
    const err = await targetErrorOf(t.restore(new Secret(oldKey), op(newKey), receipt));
    expect(err.kind).toBe('conflict');
    expect(err.message).toMatch(/changed since keyrot wrote it/);
    for (const k of [oldKey, newKey, theirs]) expect(err.message).not.toContain(k);
    expect(emu.value(name)).toBe(theirs);
  });

  it('verify fails when consumers get another version (written after keyrot) with a mismatch in product words', async () => {
    const [newKey, theirs] = [testKey(), testKey()];
    emu.seed(name, testKey());
    const t = await target();
    const receipt = await t.write(new Secret(newKey), op(newKey));
    emu.seed(name, theirs);
    const err = await targetErrorOf(t.verify(new Secret(newKey), op(newKey), receipt));
    expect(err.kind).toBe('mismatch');
    expect(err.message).toMatch(/latest version is version 3/);
    expect(err.message).not.toContain(theirs);
  });

  it('a missing parameter is created as a SecureString with kms_key (Overwrite false); rollback removes it when only this key was ever in it', async () => {
    const newKey = testKey();
    emu.store.kms.add('alias/keyrot');
    const t = await target({ kms_key: 'alias/keyrot' });
    const pf = await t.preflight();
    expect(pf).toMatchObject({ status: 'ready', willCreate: true, current: { kind: 'absent' } });
    expect(pf.notes?.join('\n')).toMatch(/does not exist: keyrot creates it as a SecureString encrypted with alias\/keyrot/);
    const receipt = await t.write(new Secret(newKey), op(newKey));
    expect(receipt).toMatchObject({ version: 1, previousVersion: null, created: true });
    expect(emu.calls('PutParameter').at(-1)!.input).toMatchObject({ Type: 'SecureString', KeyId: 'alias/keyrot', Overwrite: false });
    await t.verify(new Secret(newKey), op(newKey), receipt);
    await t.restore(null, op(newKey), receipt);
    expect(emu.versions(name)).toEqual([]);
    await t.restore(null, op(newKey), receipt); // idempotent
  });
});

describe('aws-ssm-parameter: label:', () => {
  it('write moves the label to the new version; restore moves it back (receipt or not); verify checks the label', async () => {
    const [oldKey, newKey] = [testKey(), testKey()];
    emu.seed(name, oldKey, { labels: ['live'] });
    emu.seed(name, testKey()); // a newer, unlabelled version consumers do not read
    const t = await target({ label: 'live' });
    expect(t.location).toBe(`${name}:live`);
    const pf = await t.preflight();
    expect(pf.current.kind === 'value' && pf.current.value.reveal()).toBe(oldKey);
    const o = op(newKey);
    const receipt = await t.write(new Secret(newKey), o);
    expect(receipt).toMatchObject({ version: 3, previousVersion: 1, label: 'live' });
    expect(emu.value(`${name}:live`)).toBe(newKey);
    expect((await t.verify(new Secret(newKey), o, receipt)).detail).toContain('label live');
    await t.restore(new Secret(oldKey), o, receipt);
    expect(emu.value(`${name}:live`)).toBe(oldKey);
    expect(emu.versions(name)).toHaveLength(3); // nothing written, nothing deleted
    // Without a receipt: found by the value it held.
    await t.write(new Secret(newKey), o);
    await t.restore(new Secret(oldKey), o, undefined);
    expect(emu.versions(name).find((v) => v.labels.includes('live'))!.version).toBe(1);
  });

  it('a label that did not exist is attached by the write and taken off by the rollback', async () => {
    const newKey = testKey();
    emu.seed(name, testKey());
    const t = await target({ label: 'live' });
    const pf = await t.preflight();
    expect(pf).toMatchObject({ status: 'ready', current: { kind: 'absent' } });
    const receipt = await t.write(new Secret(newKey), op(newKey));
    expect(receipt.previousVersion).toBeNull();
    await t.restore(null, op(newKey), receipt);
    expect(emu.versions(name).flatMap((v) => v.labels)).toEqual([]);
  });
});

describe('aws-ssm-parameter: preflight refusals and the 100-version limit', () => {
  it('a String parameter is blocked: keys go to SecureString only', async () => {
    emu.seed(name, testKey(), { type: 'String' });
    const pf = await (await target()).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/String parameter, stored and shown unencrypted/);
  });

  it('100 versions: a note when the oldest will be dropped, blocked when the oldest has a label', async () => {
    for (let i = 0; i < 100; i++) emu.seed(name, `v${i}`);
    const t = await target();
    const pf = await t.preflight();
    expect(pf.status).toBe('ready');
    expect(pf.notes?.join('\n')).toMatch(/drops the oldest \(1\)/);
    emu.store.label({ Name: name, ParameterVersion: 1, Labels: ['pinned'] });
    const blocked = await t.preflight();
    expect(blocked.status).toBe('blocked');
    expect(blocked.reason).toMatch(/oldest \(1\) has the label pinned.*label-parameter-version/);
    // A write that gets there anyway (no preflight) fails in the same words, naming what to do.
    const err = await targetErrorOf(t.write(new Secret(testKey()), op('x')));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/keeps 100 versions .* oldest has a label/);
  });
});

describe('aws-ssm-parameter: errors', () => {
  it('rejected credentials are auth; a denied action is permission naming ssm:<action>; no key in either', async () => {
    const newKey = testKey();
    emu.seed(name, testKey());
    const bad = await target({}, awsEnv({ AWS_SECRET_ACCESS_KEY: 'wrong-secret-for-test' }));
    const pf = await bad.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/rejected the credentials.*signature does not match/);
    emu.denyAction('PutParameter');
    const err = await targetErrorOf((await target()).write(new Secret(newKey), op(newKey)));
    expect(err.kind).toBe('permission');
    expect(err.message).toContain(`AWS denied ssm:PutParameter on ${name} (us-east-1)`);
    expect(err.message).not.toContain(newKey);
  });

  it('a KMS key that refuses the caller says which KMS grant is missing', async () => {
    emu.seed(name, testKey());
    emu.store.kms.deny('alias/aws/ssm');
    const pf = await (await target()).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/because of its KMS key: grant kms:Decrypt/);
  });

  it('an unknown kms_key is invalid and names the field', async () => {
    emu.seed(name, testKey());
    const newKey = testKey();
    const err = await targetErrorOf((await target({ kms_key: 'alias/nope' })).write(new Secret(newKey), op(newKey)));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/check kms_key: in targets.yaml/);
  });

  it('throttling and server errors are retryable and retried by the engine policy; preflight throws them', async () => {
    const newKey = testKey();
    emu.seed(name, testKey());
    const t = await target();
    emu.throttleNext(1, 'GetParameterHistory');
    await expect(t.preflight()).rejects.toMatchObject({ kind: 'rate-limited', retryable: true });
    emu.failNext({ action: 'PutParameter' });
    const e = await targetErrorOf(t.write(new Secret(newKey), op(newKey)));
    expect(e).toMatchObject({ kind: 'unavailable', retryable: true });
    emu.throttleNext(2);
    let attempts = 0;
    await withRetry(
      () => {
        attempts++;
        return t.write(new Secret(newKey), op(newKey));
      },
      { clock: fakeClock(), random: () => 0.5 },
    );
    expect(attempts).toBe(3);
    expect(emu.value(name)).toBe(newKey);
  });

  it('TooManyUpdates (concurrent updates) is retryable', async () => {
    emu.seed(name, testKey());
    emu.failNext({ action: 'PutParameter', type: 'TooManyUpdates' });
    const newKey = testKey();
    const e = await targetErrorOf((await target()).write(new Secret(newKey), op(newKey)));
    expect(e).toMatchObject({ kind: 'rate-limited', retryable: true });
  });

  it('takes its endpoint from AWS_ENDPOINT_URL_SSM when endpoint: is not set', async () => {
    const key = testKey();
    emu.seed(name, key);
    const t = await target({ endpoint: null }, awsEnv({ AWS_ENDPOINT_URL_SSM: emu.url }));
    const r = await t.read();
    expect(r.kind === 'value' && r.value.reveal()).toBe(key);
  });

  it('an unreachable endpoint names it, without a key', async () => {
    const t = await target({ endpoint: 'http://127.0.0.1:9' });
    const e = await targetErrorOf(t.write(new Secret(testKey()), op('x')));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toContain('cannot reach AWS Systems Manager Parameter Store at http://127.0.0.1:9');
  });
});

describe('aws-ssm-parameter: discover', () => {
  it('finds the parameters named like the variable, across pages, decrypted, with a ready targets.yaml entry', async () => {
    const d = new AwsSsmParameterEmulator();
    await d.start();
    try {
      const key = testKey();
      for (let i = 0; i < 15; i++) d.seed(`/noise/p${i}`, `v${i}`);
      d.seed('/acme/prod/openai-api-key', key);
      d.seed('/acme/dev/OPENAI_API_KEY', testKey());
      d.seed('/acme/prod/other', key);
      const ctx = {
        ...testContext({ env: { AWS_ACCESS_KEY_ID: d.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: d.credentials.secretAccessKey } }),
        varNames: ['OPENAI_API_KEY'],
        configs: [{ region: 'us-east-1', endpoint: d.url }],
      };
      const found = await awsSsmParameter.discover!(ctx);
      expect(found.count).toBe(18);
      expect(found.places.map((p) => p.location).sort()).toEqual(['/acme/dev/OPENAI_API_KEY', '/acme/prod/openai-api-key']);
      const prod = found.places.find((p) => p.location === '/acme/prod/openai-api-key')!;
      expect(prod.holds.kind === 'value' && prod.holds.value.reveal()).toBe(key);
      expect(prod.target).toEqual({ type: 'aws-ssm-parameter', parameter: '/acme/prod/openai-api-key', region: 'us-east-1', endpoint: d.url });
      expect(found.scope).toMatch(/18 parameters under \/ in us-east-1/);
      // The entry is ready: a target made from it is ready.
      const { type: _type, ...entry } = prod.target;
      const t = await awsSsmParameter.create({ ...awsSsmParameter.schema.parse(entry), endpoint: entry.endpoint as string }, ctx);
      expect((await t.preflight()).status).toBe('ready');
      await t.close?.();
      d.denyAction('GetParametersByPath');
      await expect(awsSsmParameter.discover!(ctx)).rejects.toMatchObject({ kind: 'auth' });
    } finally {
      await d.stop();
    }
  });
});

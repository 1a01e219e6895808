import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
  SSMClient,
  UnlabelParameterVersionCommand,
  paginateGetParameterHistory,
  paginateGetParametersByPath,
} from '@aws-sdk/client-ssm';
import { AwsSsmParameterEmulator } from '../../emulators/aws-ssm-parameter/emulator.ts';
import { testKey } from '../helpers/keys.ts';

type SdkError = Error & { $metadata: { httpStatusCode?: number }; $fault?: string };

async function sdkError(p: Promise<unknown>): Promise<SdkError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(Error);
  return e as SdkError;
}

/** The Parameter Store emulator checked against the official client (@aws-sdk/client-ssm) and AWS's documented behaviour. */
describe('aws-ssm-parameter emulator (via @aws-sdk/client-ssm)', () => {
  let emu: AwsSsmParameterEmulator;
  let ssm: SSMClient;
  let n = 0;
  const fresh = () => `/emu/test-${++n}/openai-api-key`;
  const client = (secretAccessKey = emu.credentials.secretAccessKey) =>
    new SSMClient({ region: 'us-east-1', endpoint: emu.url, credentials: { accessKeyId: emu.credentials.accessKeyId, secretAccessKey }, maxAttempts: 1 });

  beforeAll(async () => {
    emu = new AwsSsmParameterEmulator();
    await emu.start();
    ssm = client();
  });
  afterAll(async () => {
    ssm.destroy();
    await emu.stop();
  });

  it('speaks awsJson1_1 as AmazonSSM with a verified SigV4 signature for the service ssm', async () => {
    const name = fresh();
    const put = await ssm.send(new PutParameterCommand({ Name: name, Value: 'v1', Type: 'SecureString' }));
    expect(put).toMatchObject({ Version: 1, Tier: 'Standard' });
    const req = emu.server.requests.at(-1)!;
    expect(req.headers['x-amz-target']).toBe('AmazonSSM.PutParameter');
    expect(req.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(req.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=EMU\w+\/\d{8}\/us-east-1\/ssm\/aws4_request/);
    const wrong = client('not-the-secret');
    const e = await sdkError(wrong.send(new GetParameterCommand({ Name: name })));
    expect(e.name).toBe('InvalidSignatureException');
    wrong.destroy();
  });

  it('a SecureString is returned decrypted only WithDecryption; name:VERSION and name:LABEL select a version', async () => {
    const name = fresh();
    const [k1, k2] = [testKey(), testKey()];
    emu.seed(name, k1);
    emu.seed(name, k2, { labels: ['live'] });
    const hidden = (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter!;
    expect(hidden.Value).not.toBe(k2);
    expect(hidden.Version).toBe(2);
    const v1 = (await ssm.send(new GetParameterCommand({ Name: `${name}:1`, WithDecryption: true }))).Parameter!;
    expect(v1).toMatchObject({ Value: k1, Version: 1, Selector: ':1', Type: 'SecureString', DataType: 'text' });
    expect(v1.LastModifiedDate).toBeInstanceOf(Date);
    const live = (await ssm.send(new GetParameterCommand({ Name: `${name}:live`, WithDecryption: true }))).Parameter!;
    expect(live).toMatchObject({ Value: k2, Version: 2, Selector: ':live' });
  });

  it('answers ParameterNotFound without a message, as AWS does, and ParameterVersionNotFound with its text', async () => {
    const missing = await sdkError(ssm.send(new GetParameterCommand({ Name: '/emu/none' })));
    expect(missing.name).toBe('ParameterNotFound');
    expect(missing.$metadata.httpStatusCode).toBe(400);
    const name = fresh();
    emu.seed(name, 'x');
    const v = await sdkError(ssm.send(new GetParameterCommand({ Name: `${name}:7` })));
    expect(v.name).toBe('ParameterVersionNotFound');
    expect(v.message).toBe(`Systems Manager could not find version 7 of ${name}. Verify the version and try again.`);
    const l = await sdkError(ssm.send(new GetParameterCommand({ Name: `${name}:nolabel` })));
    expect(l.name).toBe('ParameterNotFound');
  });

  it('PutParameter: a type is required to create, Overwrite to replace, and the type cannot change', async () => {
    const name = fresh();
    expect((await sdkError(ssm.send(new PutParameterCommand({ Name: name, Value: 'x' })))).name).toBe('ValidationException');
    await ssm.send(new PutParameterCommand({ Name: name, Value: 'x', Type: 'SecureString' }));
    expect((await sdkError(ssm.send(new PutParameterCommand({ Name: name, Value: 'y' })))).name).toBe('ParameterAlreadyExists');
    expect((await ssm.send(new PutParameterCommand({ Name: name, Value: 'y', Overwrite: true }))).Version).toBe(2);
    expect((await sdkError(ssm.send(new PutParameterCommand({ Name: name, Value: 'z', Type: 'String', Overwrite: true })))).name).toBe('HierarchyTypeMismatchException');
    expect((await sdkError(ssm.send(new PutParameterCommand({ Name: '/aws/reserved', Value: 'x', Type: 'String' })))).name).toBe('ValidationException');
    expect((await sdkError(ssm.send(new PutParameterCommand({ Name: '/bad name', Value: 'x', Type: 'String' })))).name).toBe('ParameterPatternMismatchException');
    const deep = `/${Array.from({ length: 16 }, (_, i) => `l${i}`).join('/')}`;
    expect((await sdkError(ssm.send(new PutParameterCommand({ Name: deep, Value: 'x', Type: 'String' })))).name).toBe('HierarchyLevelLimitExceededException');
  });

  it('KMS: the default key without KeyId, InvalidKeyId for an unknown key, AccessDenied (KMS) when the key refuses the caller', async () => {
    const name = fresh();
    emu.store.kms.add('alias/team');
    await ssm.send(new PutParameterCommand({ Name: name, Value: 'x', Type: 'SecureString', KeyId: 'alias/team' }));
    await ssm.send(new PutParameterCommand({ Name: name, Value: 'y', Overwrite: true }));
    expect(emu.versions(name).map((v) => v.keyId)).toEqual(['alias/team', 'alias/aws/ssm']);
    const bad = await sdkError(ssm.send(new PutParameterCommand({ Name: name, Value: 'z', Overwrite: true, KeyId: 'alias/none' })));
    expect(bad.name).toBe('InvalidKeyId');
    emu.store.kms.deny('alias/aws/ssm');
    const denied = await sdkError(ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true })));
    expect(denied.name).toBe('AccessDeniedException');
    expect(denied.message).toMatch(/kms:Decrypt/);
    emu.clearFaults();
  });

  it('GetParameterHistory: oldest first, 50 a page at most, with labels, key and tier', async () => {
    const name = fresh();
    for (let i = 1; i <= 60; i++) emu.seed(name, `v${i}`, { labels: i === 3 ? ['three'] : [] });
    const tooMany = await sdkError(ssm.send(new GetParameterHistoryCommand({ Name: name, MaxResults: 51 })));
    expect(tooMany.name).toBe('ValidationException');
    const first = await ssm.send(new GetParameterHistoryCommand({ Name: name, WithDecryption: true }));
    expect(first.Parameters).toHaveLength(50);
    expect(first.NextToken).toBeTruthy();
    const all = [];
    for await (const page of paginateGetParameterHistory({ client: ssm }, { Name: name, WithDecryption: true, MaxResults: 25 })) all.push(...(page.Parameters ?? []));
    expect(all.map((h) => h.Version)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(all[2]).toMatchObject({ Value: 'v3', Labels: ['three'], KeyId: 'alias/aws/ssm', Tier: 'Standard', Type: 'SecureString' });
  });

  it('keeps 100 versions: the oldest is dropped, unless it has a label (ParameterMaxVersionLimitExceeded)', async () => {
    const name = fresh();
    for (let i = 1; i <= 100; i++) emu.seed(name, `v${i}`);
    await ssm.send(new PutParameterCommand({ Name: name, Value: 'v101', Overwrite: true }));
    expect(emu.versions(name)).toHaveLength(100);
    expect(emu.versions(name)[0]!.version).toBe(2);
    await ssm.send(new LabelParameterVersionCommand({ Name: name, ParameterVersion: 2, Labels: ['pinned'] }));
    const e = await sdkError(ssm.send(new PutParameterCommand({ Name: name, Value: 'v102', Overwrite: true })));
    expect(e.name).toBe('ParameterMaxVersionLimitExceeded');
    expect(e.message).toContain('Version 2, the oldest version');
    expect(emu.versions(name).at(-1)!.version).toBe(101);
  });

  it('labels move between versions, 10 at most on one version, invalid ones listed and not attached', async () => {
    const name = fresh();
    emu.seed(name, 'a');
    emu.seed(name, 'b');
    await ssm.send(new LabelParameterVersionCommand({ Name: name, ParameterVersion: 1, Labels: ['live'] }));
    const moved = await ssm.send(new LabelParameterVersionCommand({ Name: name, Labels: ['live'] }));
    expect(moved).toMatchObject({ ParameterVersion: 2, InvalidLabels: [] });
    expect(emu.versions(name).map((v) => v.labels)).toEqual([[], ['live']]);
    const invalid = await ssm.send(new LabelParameterVersionCommand({ Name: name, ParameterVersion: 1, Labels: ['1st', 'awsy', 'ok'] }));
    expect(invalid.InvalidLabels).toEqual(['1st', 'awsy']);
    const ten = Array.from({ length: 9 }, (_, i) => `l${i}`);
    await ssm.send(new LabelParameterVersionCommand({ Name: name, ParameterVersion: 1, Labels: ten }));
    const full = await sdkError(ssm.send(new LabelParameterVersionCommand({ Name: name, ParameterVersion: 1, Labels: ['eleven'] })));
    expect(full.name).toBe('ParameterVersionLabelLimitExceeded');
    const un = await ssm.send(new UnlabelParameterVersionCommand({ Name: name, ParameterVersion: 2, Labels: ['live', 'never'] }));
    expect(un).toMatchObject({ RemovedLabels: ['live'], InvalidLabels: ['never'] });
  });

  it('GetParametersByPath: one level or recursive, 10 a page at most, decrypted on request', async () => {
    for (let i = 0; i < 13; i++) emu.seed(`/bypath/app${i}/OPENAI_API_KEY`, `k${i}`);
    emu.seed('/bypath/top', 'top', { type: 'String' });
    const one = await ssm.send(new GetParametersByPathCommand({ Path: '/bypath' }));
    expect(one.Parameters!.map((p) => p.Name)).toEqual(['/bypath/top']);
    expect((await sdkError(ssm.send(new GetParametersByPathCommand({ Path: '/bypath', MaxResults: 11 })))).name).toBe('ValidationException');
    expect((await sdkError(ssm.send(new GetParametersByPathCommand({ Path: 'bypath' })))).name).toBe('ValidationException');
    const all = [];
    for await (const page of paginateGetParametersByPath({ client: ssm }, { Path: '/bypath', Recursive: true, WithDecryption: true })) all.push(...(page.Parameters ?? []));
    expect(all).toHaveLength(14);
    expect(all.find((p) => p.Name === '/bypath/app3/OPENAI_API_KEY')?.Value).toBe('k3');
  });

  it('throttling, server errors and IAM denials answer in AWS shapes', async () => {
    const name = fresh();
    emu.seed(name, 'x');
    emu.throttleNext(1, 'GetParameter');
    const t = await sdkError(ssm.send(new GetParameterCommand({ Name: name })));
    expect(t.name).toBe('ThrottlingException');
    expect(t.$metadata.httpStatusCode).toBe(400);
    emu.failNext({ action: 'PutParameter' });
    const s = await sdkError(ssm.send(new PutParameterCommand({ Name: name, Value: 'y', Overwrite: true })));
    expect(s.name).toBe('InternalServerError');
    expect(s.$fault).toBe('server');
    emu.denyAction('PutParameter', name);
    const d = await sdkError(ssm.send(new PutParameterCommand({ Name: name, Value: 'y', Overwrite: true })));
    expect(d.name).toBe('AccessDeniedException');
    expect(d.message).toContain('ssm:PutParameter');
    emu.clearFaults();
  });
});

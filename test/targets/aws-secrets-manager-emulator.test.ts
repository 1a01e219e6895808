import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
  paginateListSecretVersionIds,
} from '@aws-sdk/client-secrets-manager';
import type { AwsSecretsManagerEmulator } from '../../emulators/aws-secrets-manager/emulator.ts';
import { sdkClient, startEmulator } from '../helpers/aws-secrets-manager-fixture.ts';

type SdkError = Error & { $metadata: { httpStatusCode?: number }; $fault?: string };

async function sdkError(p: Promise<unknown>): Promise<SdkError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(Error);
  return e as SdkError;
}

/** The emulator checked against the official SDK: protocol, signatures, labels, errors, pagination. */
describe('aws-secrets-manager emulator (via @aws-sdk/client-secrets-manager)', () => {
  let emu: AwsSecretsManagerEmulator;
  let sm: SecretsManagerClient;
  const token = (n: number) => `emulator-test-token-${String(n).padStart(12, '0')}`;

  beforeAll(async () => {
    emu = await startEmulator();
    sm = sdkClient(emu);
  });
  afterAll(async () => {
    sm.destroy();
    await emu.stop();
  });

  it('speaks awsJson1_1 with a verified SigV4 signature', async () => {
    emu.seed('proto', 'v1');
    const out = await sm.send(new GetSecretValueCommand({ SecretId: 'proto' }));
    expect(out.SecretString).toBe('v1');
    expect(out.VersionStages).toEqual(['AWSCURRENT']);
    expect(out.CreatedDate).toBeInstanceOf(Date);
    const req = emu.server.requests.at(-1)!;
    expect(req.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
    expect(req.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(req.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=EMU/);
  });

  it('rejects a wrong secret key (InvalidSignatureException) and an unknown key id (UnrecognizedClientException)', async () => {
    emu.seed('auth', 'v1');
    const wrong = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: emu.url,
      credentials: { accessKeyId: emu.credentials.accessKeyId, secretAccessKey: 'not-the-secret' },
      maxAttempts: 1,
    });
    const e1 = await sdkError(wrong.send(new DescribeSecretCommand({ SecretId: 'auth' })));
    expect((e1 as Error).name).toBe('InvalidSignatureException');
    expect((e1 as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);
    wrong.destroy();
    const unknown = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: emu.url,
      credentials: { accessKeyId: 'EMUNOTAKEY0000000000', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    const e2 = await sdkError(unknown.send(new DescribeSecretCommand({ SecretId: 'auth' })));
    expect(e2.name).toBe('UnrecognizedClientException');
    expect(e2.message).toBe('The security token included in the request is invalid.');
    unknown.destroy();
  });

  it('answers a request without Authorization with MissingAuthenticationTokenException', async () => {
    const res = await fetch(emu.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.DescribeSecret' },
      body: '{"SecretId":"auth"}',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toMatch(/^MissingAuthenticationTokenException:/);
    expect(await res.json()).toEqual({ __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
  });

  it('ResourceNotFoundException has the real shape', async () => {
    const e = await sdkError(sm.send(new DescribeSecretCommand({ SecretId: 'nope' })));
    expect(e.name).toBe('ResourceNotFoundException');
    expect(e.message).toBe("Secrets Manager can't find the specified secret.");
  });

  it('PutSecretValue: same token + same value is a no-op, + different value is ResourceExistsException', async () => {
    emu.seed('idem', 'v1');
    const a = await sm.send(new PutSecretValueCommand({ SecretId: 'idem', ClientRequestToken: token(1), SecretString: 'v2' }));
    const b = await sm.send(new PutSecretValueCommand({ SecretId: 'idem', ClientRequestToken: token(1), SecretString: 'v2' }));
    expect(b.VersionId).toBe(a.VersionId);
    expect(emu.versions('idem')).toHaveLength(2);
    const e = await sdkError(sm.send(new PutSecretValueCommand({ SecretId: 'idem', ClientRequestToken: token(1), SecretString: 'v3' })));
    expect(e.name).toBe('ResourceExistsException');
    // AWS's own words (moto's @aws_verified test_put_different_secret_value_with_same_token).
    expect(e.message).toBe(`You can't use ClientRequestToken ${token(1)} because that value is already in use for a version of secret ${emu.arnOf('idem')}.`);
    expect(emu.versions('idem')).toHaveLength(2);
  });

  it('PutSecretValue without ClientRequestToken (a raw HTTP caller) is InvalidRequestException, even for a missing secret', async () => {
    // The SDK always fills the token (idempotencyToken trait): strip it from the serialized body
    // before signing, as a raw HTTP caller would send it. AWS answers InvalidRequestException
    // (localstack's AWS-validated snapshot test_no_client_request_token[PutSecretValue]).
    const raw = sdkClient(emu);
    raw.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { body?: string | Uint8Array; headers: Record<string, string> };
        const body = JSON.parse(typeof req.body === 'string' ? req.body : Buffer.from(req.body ?? []).toString('utf8')) as Record<string, unknown>;
        delete body.ClientRequestToken;
        req.body = JSON.stringify(body);
        req.headers['content-length'] = String(Buffer.byteLength(req.body));
        return next(args);
      },
      { step: 'build', name: 'stripClientRequestToken' },
    );
    emu.seed('no-token', 'v1');
    for (const id of ['no-token', 'no-such-secret']) {
      const e = await sdkError(raw.send(new PutSecretValueCommand({ SecretId: id, SecretString: 'v2' })));
      expect(e.name).toBe('InvalidRequestException');
      expect(e.message).toBe('You must provide a ClientRequestToken value. We recommend a UUID-type value.');
    }
    expect(emu.versions('no-token')).toHaveLength(1);
    raw.destroy();
  });

  it('DescribeSecret leaves out VersionIdsToStages for a secret without a value, and RotationEnabled until rotation is configured', async () => {
    emu.createEmpty('empty-describe');
    const d = await sm.send(new DescribeSecretCommand({ SecretId: 'empty-describe' }));
    expect(d.VersionIdsToStages).toBeUndefined();
    expect(d.RotationEnabled).toBeUndefined();
    emu.setRotationEnabled('empty-describe', true);
    expect((await sm.send(new DescribeSecretCommand({ SecretId: 'empty-describe' }))).RotationEnabled).toBe(true);
  });

  it('PutSecretValue without VersionStages moves AWSCURRENT and AWSPREVIOUS; with AWSPENDING leaves them', async () => {
    const v1 = emu.seed('labels', 'v1');
    await sm.send(new PutSecretValueCommand({ SecretId: 'labels', ClientRequestToken: token(2), SecretString: 'v2' }));
    expect(emu.stages('labels')).toEqual({ AWSCURRENT: token(2), AWSPREVIOUS: v1 });
    await sm.send(new PutSecretValueCommand({ SecretId: 'labels', ClientRequestToken: token(3), SecretString: 'v3', VersionStages: ['AWSPENDING'] }));
    expect(emu.stages('labels')).toEqual({ AWSCURRENT: token(2), AWSPREVIOUS: v1, AWSPENDING: token(3) });
    const pending = await sm.send(new GetSecretValueCommand({ SecretId: 'labels', VersionStage: 'AWSPENDING' }));
    expect(pending.SecretString).toBe('v3');
  });

  // PutSecretValue API reference, VersionStages: a label already on another version is removed
  // from it and attached to the new one; only AWSCURRENT drags AWSPREVIOUS along. keyrot relies on
  // it to leave AWSPENDING on the version it promoted (the next rotation's write moves it).
  it('PutSecretValue with AWSPENDING moves the label off the AWSCURRENT version, leaving AWSCURRENT and AWSPREVIOUS', async () => {
    const v1 = emu.seed('moves', 'v1');
    const v2 = emu.seed('moves', 'v2', { stages: ['AWSCURRENT', 'AWSPENDING'] });
    expect(emu.stages('moves')).toEqual({ AWSCURRENT: v2, AWSPENDING: v2, AWSPREVIOUS: v1 });
    await sm.send(new PutSecretValueCommand({ SecretId: 'moves', ClientRequestToken: token(7), SecretString: 'v3', VersionStages: ['AWSPENDING'] }));
    expect(emu.stages('moves')).toEqual({ AWSCURRENT: v2, AWSPENDING: token(7), AWSPREVIOUS: v1 });
    const d = await sm.send(new DescribeSecretCommand({ SecretId: 'moves' }));
    expect(d.VersionIdsToStages?.[v2]).toEqual(['AWSCURRENT']);
  });

  it('a token outside 32–64 characters is a ValidationException', async () => {
    emu.seed('short', 'v1');
    const e = await sdkError(sm.send(new PutSecretValueCommand({ SecretId: 'short', ClientRequestToken: 'too-short', SecretString: 'v2' })));
    expect(e.name).toBe('ValidationException');
  });

  it('UpdateSecretVersionStage requires RemoveFromVersionId and moves AWSPREVIOUS along', async () => {
    const v1 = emu.seed('move', 'v1');
    await sm.send(new PutSecretValueCommand({ SecretId: 'move', ClientRequestToken: token(4), SecretString: 'v2', VersionStages: ['AWSPENDING'] }));
    const e = await sdkError(sm.send(new UpdateSecretVersionStageCommand({ SecretId: 'move', VersionStage: 'AWSCURRENT', MoveToVersionId: token(4) })));
    expect(e.name).toBe('InvalidParameterException');
    expect(e.message).toContain(`Staging label AWSCURRENT is currently attached to version ${v1}`);
    await sm.send(new UpdateSecretVersionStageCommand({ SecretId: 'move', VersionStage: 'AWSCURRENT', MoveToVersionId: token(4), RemoveFromVersionId: v1 }));
    expect(emu.stages('move')).toEqual({ AWSCURRENT: token(4), AWSPREVIOUS: v1, AWSPENDING: token(4) });
    await sm.send(new UpdateSecretVersionStageCommand({ SecretId: 'move', VersionStage: 'AWSPENDING', RemoveFromVersionId: token(4) }));
    expect(emu.stages('move')).toEqual({ AWSCURRENT: token(4), AWSPREVIOUS: v1 });
    const wrongFrom = await sdkError(sm.send(new UpdateSecretVersionStageCommand({ SecretId: 'move', VersionStage: 'AWSCURRENT', MoveToVersionId: v1, RemoveFromVersionId: v1 })));
    expect(wrongFrom.name).toBe('InvalidParameterException');
  });

  it('GetSecretValue by version id and stage must agree', async () => {
    const v1 = emu.seed('agree', 'v1');
    const e = await sdkError(sm.send(new GetSecretValueCommand({ SecretId: 'agree', VersionId: v1, VersionStage: 'AWSPENDING' })));
    expect(e.name).toBe('InvalidRequestException');
    const byId = await sm.send(new GetSecretValueCommand({ SecretId: 'agree', VersionId: v1 }));
    expect(byId.SecretString).toBe('v1');
  });

  it('ListSecretVersionIds paginates with NextToken and hides deprecated versions unless asked', async () => {
    emu.seed('many', 'v0');
    for (let i = 0; i < 6; i++) {
      await sm.send(new PutSecretValueCommand({ SecretId: 'many', ClientRequestToken: token(100 + i), SecretString: `v${i + 1}` }));
    }
    const first = await sm.send(new ListSecretVersionIdsCommand({ SecretId: 'many', MaxResults: 1 }));
    expect(first.Versions).toHaveLength(1);
    expect(first.NextToken).toBeTruthy();
    const labeled: string[] = [];
    for await (const page of paginateListSecretVersionIds({ client: sm, pageSize: 1 }, { SecretId: 'many' })) {
      labeled.push(...(page.Versions ?? []).map((v) => v.VersionId!));
    }
    expect(labeled).toEqual([token(104), token(105)]); // AWSPREVIOUS, AWSCURRENT
    const all: string[] = [];
    for await (const page of paginateListSecretVersionIds({ client: sm, pageSize: 3 }, { SecretId: 'many', IncludeDeprecated: true })) {
      all.push(...(page.Versions ?? []).map((v) => v.VersionId!));
    }
    expect(all).toHaveLength(7);
    // A deprecated version carries no VersionStages member at all (AWS-validated snapshot
    // test_deprecated_secret_version_stage), and each entry names its KMS key.
    const listed = await sm.send(new ListSecretVersionIdsCommand({ SecretId: 'many', IncludeDeprecated: true }));
    const deprecated = listed.Versions!.filter((v) => v.VersionId !== token(104) && v.VersionId !== token(105));
    expect(deprecated).toHaveLength(5);
    for (const v of deprecated) expect(v.VersionStages).toBeUndefined();
    expect(listed.Versions!.every((v) => v.KmsKeyIds?.[0] === 'DefaultEncryptionKey')).toBe(true);
    const bad = await sdkError(sm.send(new ListSecretVersionIdsCommand({ SecretId: 'many', NextToken: 'garbage' })));
    expect(bad.name).toBe('InvalidNextTokenException');
  });

  it('injects throttling, server errors and per-action denials in AWS shapes', async () => {
    emu.seed('faults', 'v1');
    emu.throttleNext(1, 'GetSecretValue');
    await sm.send(new DescribeSecretCommand({ SecretId: 'faults' })); // not the throttled action
    const t = await sdkError(sm.send(new GetSecretValueCommand({ SecretId: 'faults' })));
    expect(t.name).toBe('ThrottlingException');
    expect(t.$metadata.httpStatusCode).toBe(400);
    emu.failNext();
    const s = await sdkError(sm.send(new GetSecretValueCommand({ SecretId: 'faults' })));
    expect(s.name).toBe('InternalServiceError');
    expect(s.$metadata.httpStatusCode).toBe(500);
    emu.denyAction('PutSecretValue');
    const d = await sdkError(sm.send(new PutSecretValueCommand({ SecretId: 'faults', ClientRequestToken: token(9), SecretString: 'v2' })));
    expect(d.name).toBe('AccessDeniedException');
    expect(d.message).toContain('secretsmanager:PutSecretValue');
    emu.allowAction('PutSecretValue');
    expect((await sm.send(new GetSecretValueCommand({ SecretId: 'faults' }))).SecretString).toBe('v1');
  });

  it('resolves full and partial ARNs', async () => {
    emu.seed('arn/test', 'v1');
    const arn = emu.arnOf('arn/test');
    expect((await sm.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString).toBe('v1');
    expect((await sm.send(new GetSecretValueCommand({ SecretId: arn.slice(0, -7) }))).SecretString).toBe('v1');
  });
});

import { randomBytes, randomUUID } from 'node:crypto';
import type { EmuRequest, EmuResponse } from '../server.ts';
import { AwsFailure, AwsJsonEmulator, awsJsonError, awsJsonOk, type AwsCredentials, type AwsEmulatorOptions } from '../aws-json.ts';
import { parseAuthorization } from './sigv4.ts';

/**
 * A loopback emulator of AWS Secrets Manager's awsJson1_1 API, faithful where keyrot depends on it:
 * every call is `POST /` with `X-Amz-Target: secretsmanager.<Operation>` and
 * `Content-Type: application/x-amz-json-1.1`, SigV4-signed (aws-secrets-manager README "Provider facts"). It verifies the
 * signature against the access keys it knows, keeps versions and staging labels (AWSCURRENT /
 * AWSPREVIOUS bookkeeping, AWSPENDING), implements ClientRequestToken idempotency, paginates
 * ListSecretVersionIds, and answers errors in AWS's shape: HTTP 400 (500 for InternalServiceError),
 * body `{"__type": "...", "Message": "..."}` (`message` for the front-end errors: auth,
 * throttling), and an `x-amzn-ErrorType` header.
 */

export const SM_OPERATIONS = [
  'DescribeSecret',
  'GetSecretValue',
  'PutSecretValue',
  'UpdateSecretVersionStage',
  'ListSecretVersionIds',
  'ListSecrets',
] as const;
export type SmOperation = (typeof SM_OPERATIONS)[number];

const CURRENT = 'AWSCURRENT';
const PREVIOUS = 'AWSPREVIOUS';

export type { AwsCredentials };

interface StoredVersion {
  versionId: string;
  secretString?: string;
  /** base64, as on the wire. */
  secretBinary?: string;
  createdDate: number;
  lastAccessedDate?: number;
}

interface StoredSecret {
  name: string;
  arn: string;
  /** Creation order. */
  versions: StoredVersion[];
  /** stage → version id: a label is on at most one version. */
  labels: Map<string, string>;
  createdDate: number;
  lastChangedDate: number;
  lastAccessedDate?: number;
  deletedDate?: number;
  /** Undefined until rotation is configured: DescribeSecret then leaves RotationEnabled out. */
  rotationEnabled?: boolean;
  kmsKeyId?: string;
}

export interface VersionView {
  versionId: string;
  stages: string[];
  /** The SecretString (undefined for binary versions). */
  value: string | undefined;
  createdDate: number;
}

export type SmEmulatorOptions = AwsEmulatorOptions;

const nowSeconds = () => Date.now() / 1000;

const NAMESPACE = 'com.amazonaws.secrets';

/** The error AWS would send: Secrets Manager spells its own errors' member `Message`. */
function awsError(type: string, message: string, opts: { status?: number; frontEnd?: boolean } = {}): EmuResponse {
  return awsJsonError(type, message, { ...opts, namespace: NAMESPACE, messageKey: 'Message' });
}

const ok = awsJsonOk;
const fail = (type: string, message: string, status?: number): never => {
  throw new AwsFailure(awsError(type, message, { status }));
};

const SUFFIX_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export class AwsSecretsManagerEmulator extends AwsJsonEmulator<SmOperation> {
  private readonly secrets = new Map<string, StoredSecret>();
  private readonly denied = new Set<string>();

  constructor(opts: SmEmulatorOptions = {}) {
    super(
      {
        name: 'aws-secrets-manager',
        notFound: () => awsError('UnknownOperationException', 'Unknown operation', { frontEnd: true }),
        serverFault: { type: 'InternalServiceError', message: 'An error occurred on the server side.' },
        targetPrefix: 'secretsmanager',
      },
      opts,
    );
  }

  // ---------------------------------------------------------------- test/demo helpers

  /**
   * Creates the secret (or adds a version to it) holding `value`: a string, or an object stored
   * as compact JSON. Pass `json` to store an exact text. The new version becomes AWSCURRENT
   * unless `stages` says otherwise. Returns the version id.
   */
  seed(name: string, value: string | Record<string, unknown>, opts: { versionId?: string; stages?: string[] } = {}): string {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    const s = this.ensureSecret(name);
    const versionId = opts.versionId ?? randomUUID();
    this.addVersion(s, { versionId, secretString: text, createdDate: nowSeconds() }, opts.stages ?? [CURRENT], false);
    return versionId;
  }

  /** A secret with no value at all (CreateSecret without SecretString). */
  createEmpty(name: string): void {
    this.ensureSecret(name);
  }

  private ensureSecret(name: string): StoredSecret {
    let s = this.secrets.get(name);
    if (!s) {
      const suffix = Array.from(randomBytes(6), (b) => SUFFIX_CHARS[b % SUFFIX_CHARS.length]).join('');
      s = {
        name,
        arn: `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${name}-${suffix}`,
        versions: [],
        labels: new Map(),
        createdDate: nowSeconds(),
        lastChangedDate: nowSeconds(),
      };
      this.secrets.set(name, s);
    }
    return s;
  }

  arnOf(name: string): string {
    return this.mustGet(name).arn;
  }

  /** Every version (deprecated ones included), oldest first. */
  versions(name: string): VersionView[] {
    const s = this.mustGet(name);
    return s.versions.map((v) => ({ versionId: v.versionId, stages: this.stagesOf(s, v.versionId), value: v.secretString, createdDate: v.createdDate }));
  }

  /** stage → version id. */
  stages(name: string): Record<string, string> {
    return Object.fromEntries(this.mustGet(name).labels);
  }

  /** The SecretString behind a stage (AWSCURRENT by default), or undefined. */
  value(name: string, stage = CURRENT): string | undefined {
    const s = this.mustGet(name);
    const id = s.labels.get(stage);
    return id ? s.versions.find((v) => v.versionId === id)?.secretString : undefined;
  }

  setRotationEnabled(name: string, on: boolean): void {
    this.mustGet(name).rotationEnabled = on;
  }

  markDeleted(name: string): void {
    this.mustGet(name).deletedDate = nowSeconds() + 7 * 86400;
  }

  /** Every call of `action` (on `secret`, when given) answers AccessDeniedException until allowAction. */
  denyAction(action: SmOperation, secret?: string): void {
    this.denied.add(secret ? `${action}:${secret}` : action);
  }

  allowAction(action: SmOperation, secret?: string): void {
    this.denied.delete(secret ? `${action}:${secret}` : action);
  }

  /** Drops pending injected faults and every denial. */
  clearFaults(): void {
    this.faults.clear();
    this.denied.clear();
    this.server.clearFaults();
  }

  // ---------------------------------------------------------------- protocol

  protected handle(req: EmuRequest): EmuResponse {
    const denial = this.identities.authenticate(req, 'secretsmanager', this.verifySignatures);
    if (denial) return denial;
    const target = String(req.headers['x-amz-target'] ?? '');
    const op = target.startsWith('secretsmanager.') ? target.slice('secretsmanager.'.length) : '';
    if (!(SM_OPERATIONS as readonly string[]).includes(op)) {
      return awsError('UnknownOperationException', `Unknown operation ${target || '(no X-Amz-Target)'}`, { frontEnd: true });
    }
    const action = op as SmOperation;
    const injected = this.faults.take(action, NAMESPACE);
    if (injected) return injected;
    const input = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
    const secretId = typeof input.SecretId === 'string' ? input.SecretId : '';
    const resolved = this.resolve(secretId);
    if (this.denied.has(action) || (resolved && this.denied.has(`${action}:${resolved.name}`))) {
      const auth = parseAuthorization(req.headers.authorization);
      const who = typeof auth === 'object' ? auth.accessKeyId : 'unknown';
      return awsError(
        'AccessDeniedException',
        `User: arn:aws:iam::${this.accountId}:user/emulator-${who} is not authorized to perform: secretsmanager:${action} on resource: ${resolved?.arn ?? secretId} because no identity-based policy allows the secretsmanager:${action} action`,
      );
    }
    try {
      if (action === 'ListSecrets') return ok(this.listSecrets(input));
      if (!secretId) fail('InvalidParameterException', 'You must provide a SecretId.');
      // A PutSecretValue without ClientRequestToken is refused before the secret is looked up: AWS
      // answers InvalidRequestException even for a secret that does not exist (localstack's
      // AWS-validated snapshot test_no_client_request_token[PutSecretValue], recorded against AWS
      // 2023-05-12, tests/aws/services/secretsmanager/test_secretsmanager.snapshot.json). The SDKs
      // fill the token themselves (idempotencyToken trait); only raw HTTP callers hit this.
      if (action === 'PutSecretValue' && typeof input.ClientRequestToken !== 'string') {
        fail('InvalidRequestException', 'You must provide a ClientRequestToken value. We recommend a UUID-type value.');
      }
      if (!resolved) fail('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
      const s = resolved!;
      switch (action as Exclude<SmOperation, 'ListSecrets'>) {
        case 'DescribeSecret':
          return ok(this.describe(s));
        case 'GetSecretValue':
          return ok(this.getSecretValue(s, input));
        case 'PutSecretValue':
          return ok(this.putSecretValue(s, input));
        case 'UpdateSecretVersionStage':
          return ok(this.updateSecretVersionStage(s, input));
        case 'ListSecretVersionIds':
          return ok(this.listSecretVersionIds(s, input));
      }
    } catch (err) {
      if (err instanceof AwsFailure) return err.response;
      throw err;
    }
  }

  /** SecretId: a name, a full ARN, or a partial ARN (without the `-XXXXXX` suffix). */
  private resolve(id: string): StoredSecret | undefined {
    if (!id) return undefined;
    if (!id.startsWith('arn:')) return this.secrets.get(id);
    for (const s of this.secrets.values()) {
      if (s.arn === id) return s;
      if (s.arn.length === id.length + 7 && s.arn.startsWith(`${id}-`)) return s;
    }
    return undefined;
  }

  private mustGet(name: string): StoredSecret {
    const s = this.secrets.get(name);
    if (!s) throw new Error(`aws-secrets-manager emulator: no secret ${name}`);
    return s;
  }

  private stagesOf(s: StoredSecret, versionId: string): string[] {
    return [...s.labels].filter(([, id]) => id === versionId).map(([stage]) => stage);
  }

  private notDeleted(s: StoredSecret): void {
    if (s.deletedDate !== undefined) {
      fail('InvalidRequestException', "You can't perform this operation on the secret because it was marked for deletion.");
    }
  }

  /** Attaches `stage` to `versionId`, moving it off any other version; AWSCURRENT drags AWSPREVIOUS along. */
  private attach(s: StoredSecret, stage: string, versionId: string): void {
    const from = s.labels.get(stage);
    if (from === versionId) return;
    s.labels.set(stage, versionId);
    // "Whenever you move AWSCURRENT, Secrets Manager automatically moves the label AWSPREVIOUS to
    // the version that AWSCURRENT was removed from" (UpdateSecretVersionStage / PutSecretValue docs).
    if (stage === CURRENT && from) s.labels.set(PREVIOUS, from);
  }

  private addVersion(s: StoredSecret, v: StoredVersion, stages: string[], api = true): void {
    const first = s.versions.length === 0;
    s.versions.push(v);
    // The first version of a secret always gets AWSCURRENT (PutSecretValue doc); seeding may
    // set up any state, deprecated versions included.
    const all = api && first && !stages.includes(CURRENT) ? [...stages, CURRENT] : stages;
    for (const stage of all) this.attach(s, stage, v.versionId);
    s.lastChangedDate = nowSeconds();
    this.prune(s);
  }

  /** Versions beyond 100 are removed when unlabeled and older than 24 hours (PutSecretValue doc). */
  private prune(s: StoredSecret): void {
    const labeled = new Set(s.labels.values());
    const dayAgo = nowSeconds() - 86400;
    while (s.versions.length > 100) {
      const i = s.versions.findIndex((v) => !labeled.has(v.versionId) && v.createdDate < dayAgo);
      if (i < 0) break;
      s.versions.splice(i, 1);
    }
  }

  private describe(s: StoredSecret): Record<string, unknown> {
    // VersionIdsToStages lists only versions that have labels (DescribeSecret doc: unlabeled
    // versions are deprecated). AWS leaves the member out entirely for a secret without a value, and
    // leaves RotationEnabled out while rotation was never configured (localstack's AWS-validated
    // snapshots test_create_secret_version_from_empty_secret and test_create_and_update_secret).
    const map: Record<string, string[]> = {};
    for (const [stage, id] of s.labels) (map[id] ??= []).push(stage);
    return {
      ARN: s.arn,
      Name: s.name,
      ...(s.kmsKeyId ? { KmsKeyId: s.kmsKeyId } : {}),
      ...(s.rotationEnabled !== undefined ? { RotationEnabled: s.rotationEnabled } : {}),
      LastChangedDate: s.lastChangedDate,
      ...(s.lastAccessedDate ? { LastAccessedDate: s.lastAccessedDate } : {}),
      ...(s.deletedDate ? { DeletedDate: s.deletedDate } : {}),
      ...(Object.keys(map).length ? { VersionIdsToStages: map } : {}),
      CreatedDate: s.createdDate,
    };
  }

  private getSecretValue(s: StoredSecret, input: Record<string, unknown>): Record<string, unknown> {
    this.notDeleted(s);
    const versionId = typeof input.VersionId === 'string' ? input.VersionId : undefined;
    const stage = typeof input.VersionStage === 'string' ? input.VersionStage : undefined;
    let v: StoredVersion | undefined;
    if (versionId) {
      v = s.versions.find((x) => x.versionId === versionId);
      if (!v) fail('ResourceNotFoundException', `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`);
      if (stage && s.labels.get(stage) !== versionId) {
        fail('InvalidRequestException', 'You provided a VersionStage that is not associated to the provided VersionId.');
      }
    } else {
      const st = stage ?? CURRENT;
      const id = s.labels.get(st);
      v = id ? s.versions.find((x) => x.versionId === id) : undefined;
      if (!v) fail('ResourceNotFoundException', `Secrets Manager can't find the specified secret value for staging label: ${st}`);
    }
    const found = v!;
    // LastAccessedDate is kept to the day (DescribeSecret doc).
    const day = Math.floor(nowSeconds() / 86400) * 86400;
    found.lastAccessedDate = day;
    s.lastAccessedDate = day;
    return {
      ARN: s.arn,
      Name: s.name,
      VersionId: found.versionId,
      ...(found.secretString !== undefined ? { SecretString: found.secretString } : {}),
      ...(found.secretBinary !== undefined ? { SecretBinary: found.secretBinary } : {}),
      VersionStages: this.stagesOf(s, found.versionId),
      CreatedDate: found.createdDate,
    };
  }

  private putSecretValue(s: StoredSecret, input: Record<string, unknown>): Record<string, unknown> {
    this.notDeleted(s);
    const str = typeof input.SecretString === 'string' ? input.SecretString : undefined;
    const bin = typeof input.SecretBinary === 'string' ? input.SecretBinary : undefined;
    if (str !== undefined && bin !== undefined) {
      fail('InvalidParameterException', "You can't specify both a binary secret value and a string secret value in the same secret.");
    }
    if (str === undefined && bin === undefined) fail('InvalidRequestException', 'You must provide either SecretString or SecretBinary.');
    if (str !== undefined && Buffer.byteLength(str, 'utf8') > 65536) {
      fail('InvalidParameterException', 'The SecretString value exceeds the maximum allowed size of 65536 bytes.');
    }
    // Present: handle() refuses a PutSecretValue without one, as AWS does.
    const token = input.ClientRequestToken as string;
    if (token.length < 32 || token.length > 64) {
      fail(
        'ValidationException',
        `1 validation error detected: Value '${token}' at 'clientRequestToken' failed to satisfy constraint: Member must have length ${token.length < 32 ? 'greater than or equal to 32' : 'less than or equal to 64'}`,
      );
    }
    const stages = Array.isArray(input.VersionStages) ? input.VersionStages.filter((x): x is string => typeof x === 'string') : [CURRENT];
    const existing = s.versions.find((v) => v.versionId === token);
    if (existing) {
      // Same token + same data: "the operation succeeds but does nothing"; different data fails
      // (PutSecretValue doc: idempotency) with ResourceExistsException and this message, checked
      // against AWS by moto's @aws_verified test_put_different_secret_value_with_same_token
      // (getmoto/moto tests/test_secretsmanager/test_secretsmanager.py).
      if (existing.secretString !== str || existing.secretBinary !== bin) {
        fail('ResourceExistsException', `You can't use ClientRequestToken ${token} because that value is already in use for a version of secret ${s.arn}.`);
      }
      return { ARN: s.arn, Name: s.name, VersionId: token, VersionStages: this.stagesOf(s, token) };
    }
    this.addVersion(
      s,
      { versionId: token, createdDate: nowSeconds(), ...(str !== undefined ? { secretString: str } : {}), ...(bin !== undefined ? { secretBinary: bin } : {}) },
      stages,
    );
    return { ARN: s.arn, Name: s.name, VersionId: token, VersionStages: this.stagesOf(s, token) };
  }

  private updateSecretVersionStage(s: StoredSecret, input: Record<string, unknown>): Record<string, unknown> {
    this.notDeleted(s);
    const stage = typeof input.VersionStage === 'string' ? input.VersionStage : '';
    if (!stage) fail('InvalidParameterException', 'You must provide a VersionStage.');
    const moveTo = typeof input.MoveToVersionId === 'string' ? input.MoveToVersionId : undefined;
    const removeFrom = typeof input.RemoveFromVersionId === 'string' ? input.RemoveFromVersionId : undefined;
    const owner = s.labels.get(stage);
    for (const id of [moveTo, removeFrom]) {
      if (id && !s.versions.some((v) => v.versionId === id)) {
        fail('ResourceNotFoundException', `Secrets Manager can't find the specified secret version: ${id}`);
      }
    }
    if (removeFrom && owner !== removeFrom && removeFrom !== moveTo) {
      fail('InvalidParameterException', `The staging label ${stage} is not attached to version ${removeFrom}.`);
    }
    if (moveTo) {
      if (owner && owner !== moveTo && removeFrom !== owner) {
        // The real message, as quoted in terraform-provider-aws CHANGELOG 5.33.0 (#19943).
        fail(
          'InvalidParameterException',
          `The parameter RemoveFromVersionId can't be empty. Staging label ${stage} is currently attached to version ${owner}, so you must explicitly reference that version in RemoveFromVersionId.`,
        );
      }
      this.attach(s, stage, moveTo);
    } else if (removeFrom) {
      if (stage === CURRENT) {
        // Assumption (not verified against AWS): AWSCURRENT can only be moved, never just removed.
        fail('InvalidParameterException', `You can't remove the staging label ${CURRENT}; move it to another version with MoveToVersionId.`);
      }
      s.labels.delete(stage);
    } else {
      fail('InvalidParameterException', 'You must specify MoveToVersionId or RemoveFromVersionId.');
    }
    s.lastChangedDate = nowSeconds();
    return { ARN: s.arn, Name: s.name };
  }

  /**
   * ListSecrets (docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecrets.html):
   * MaxResults 1–100, an opaque NextToken while more remain, secrets scheduled for deletion left
   * out unless IncludePlannedDeletion; each entry carries SecretVersionsToStages, never a value.
   */
  private listSecrets(input: Record<string, unknown>): Record<string, unknown> {
    const all = [...this.secrets.values()].filter((s) => input.IncludePlannedDeletion === true || s.deletedDate === undefined);
    const { start, max } = pageWindow(input, all.length);
    const page = all.slice(start, start + max);
    const next = start + max < all.length ? pageToken(start + max) : undefined;
    return {
      SecretList: page.map((s) => {
        const map: Record<string, string[]> = {};
        for (const [stage, id] of s.labels) (map[id] ??= []).push(stage);
        return {
          ARN: s.arn,
          Name: s.name,
          LastChangedDate: s.lastChangedDate,
          ...(s.deletedDate ? { DeletedDate: s.deletedDate } : {}),
          ...(Object.keys(map).length ? { SecretVersionsToStages: map } : {}),
          CreatedDate: s.createdDate,
        };
      }),
      ...(next ? { NextToken: next } : {}),
    };
  }

  private listSecretVersionIds(s: StoredSecret, input: Record<string, unknown>): Record<string, unknown> {
    const includeDeprecated = input.IncludeDeprecated === true;
    const labeled = new Set(s.labels.values());
    const all = s.versions.filter((v) => includeDeprecated || labeled.has(v.versionId));
    const { start, max } = pageWindow(input, all.length);
    const page = all.slice(start, start + max);
    const next = start + max < all.length ? pageToken(start + max) : undefined;
    // A deprecated version is listed WITHOUT a VersionStages member (not an empty list), and every
    // entry names its KMS key (localstack's AWS-validated snapshot test_deprecated_secret_version_stage).
    return {
      Versions: page.map((v) => {
        const stages = this.stagesOf(s, v.versionId);
        return {
          VersionId: v.versionId,
          ...(stages.length ? { VersionStages: stages } : {}),
          ...(v.lastAccessedDate ? { LastAccessedDate: v.lastAccessedDate } : {}),
          CreatedDate: v.createdDate,
          KmsKeyIds: [s.kmsKeyId ?? 'DefaultEncryptionKey'],
        };
      }),
      ...(next ? { NextToken: next } : {}),
      ARN: s.arn,
      Name: s.name,
    };
  }
}

/** MaxResults (1–100, default 100) and the position an opaque NextToken of this emulator encodes. */
function pageWindow(input: Record<string, unknown>, total: number): { start: number; max: number } {
  const max = typeof input.MaxResults === 'number' ? input.MaxResults : 100;
  if (!Number.isInteger(max) || max < 1 || max > 100) {
    fail('ValidationException', `1 validation error detected: Value '${String(max)}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100`);
  }
  if (typeof input.NextToken !== 'string') return { start: 0, max };
  const m = /^emu:(\d+)$/.exec(Buffer.from(input.NextToken, 'base64url').toString('utf8'));
  if (!m || Number(m[1]) > total) fail('InvalidNextTokenException', 'The NextToken value is invalid.');
  return { start: Number(m![1]), max };
}

function pageToken(position: number): string {
  return Buffer.from(`emu:${position}`, 'utf8').toString('base64url');
}

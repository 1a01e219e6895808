import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
  type DescribeSecretCommandOutput,
  type GetSecretValueCommandInput,
  type GetSecretValueCommandOutput,
  type UpdateSecretVersionStageCommandInput,
} from '@aws-sdk/client-secrets-manager';
import { Secret } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { deadlinePassed } from '../../runtime/deadline.ts';
import { awsSetup, envRegion } from '../aws-client.ts';
import type { CommonTargetConfig, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import { awsSecretsManager, type AwsSecretsManagerConfig, type AwsSecretsManagerReceipt } from './index.ts';
import { laneOf } from '../common.ts';
import { SECRETS_MANAGER, awsError, type SmAction } from './aws-errors.ts';
import { JsonFieldError, getJsonField, newJsonWithField, setJsonField } from './json-field.ts';
import { isKeyrotVersion, versionTokenFor } from './version-token.ts';

const CURRENT = 'AWSCURRENT';
const PENDING = 'AWSPENDING';
const PREVIOUS = 'AWSPREVIOUS';

/** Which version holds each rotation label, from DescribeSecret's VersionIdsToStages. */
interface Labels {
  current: string | undefined;
  pending: string | undefined;
  previous: string | undefined;
  stagesOf(versionId: string): string[];
}

function labelsOf(d: DescribeSecretCommandOutput): Labels {
  const map = d.VersionIdsToStages ?? {};
  const find = (stage: string) => Object.keys(map).find((id) => map[id]?.includes(stage));
  return {
    current: find(CURRENT),
    pending: find(PENDING),
    previous: find(PREVIOUS),
    stagesOf: (id) => map[id] ?? [],
  };
}

/** `arn:aws:secretsmanager:<region>:...` → region. */
function regionOfArn(secret: string): string | undefined {
  return /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):/.exec(secret)?.[1];
}

export function createAwsSecretsManagerTarget(
  config: AwsSecretsManagerConfig & CommonTargetConfig,
  ctx: TargetContext & { name: string },
): Target<AwsSecretsManagerReceipt> {
  const secretId = config.secret;
  const field = config.field;
  const arnRegion = regionOfArn(secretId);
  // region: from targets.yaml wins, then the ARN's own region, then the environment; left
  // undefined, the SDK looks in the shared config profile.
  const region = config.region ?? arnRegion ?? envRegion(ctx.env);
  const where = `${secretId}${field ? `[${field}]` : ''}`;
  const aws = awsSetup(SECRETS_MANAGER, config, ctx.env, region);
  const { endpoint, timeoutMs, callOptions } = aws;
  const client = new SecretsManagerClient(aws.clientConfig);
  // Quotas are per account and region (reference_limits.html): one lane per region, endpoint and
  // credentials source; its `write` class holds PutSecretValue and UpdateSecretVersionStage to
  // their combined published rate.
  const rateLimitKey = `aws-secrets-manager:${region ?? 'default region'}:${endpoint ?? 'aws'}:${ctx.env.AWS_PROFILE || (aws.clientConfig.credentials ? 'env' : 'default chain')}`;
  const lane = laneOf(ctx, rateLimitKey, awsSecretsManager);
  /** What preflight read (the labels, AWSCURRENT): the first write uses it instead of reading again. */
  let observed: { d: DescribeSecretCommandOutput; current: GetSecretValueCommandOutput | null } | undefined;
  /** Per rotation: the version this process staged and the AWSCURRENT version it was built on. */
  const staged = new Map<string, { token: string; previous: string | null }>();

  /** One SDK call through the lane: a write waits for the published write rate; a throttle slows the account down. */
  async function send<T>(cls: 'read' | 'write', signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
    const ticket = await lane.beforeRequest('', cls, signal);
    let status: number | undefined;
    try {
      return await call();
    } catch (err) {
      if ((err as { name?: string }).name === 'ThrottlingException') status = 429;
      throw err;
    } finally {
      lane.afterRequest(ticket, { status });
    }
  }

  /** `sent`: the options the call went out with; its deadline passing makes any failure a timeout. */
  function fail(err: unknown, action: SmAction, op: string, sent?: { abortSignal: AbortSignal }): TargetError {
    const timedOut = sent !== undefined && deadlinePassed(sent.abortSignal);
    return awsError(err, { target: ctx.name, op, action, secret: secretId, region, endpoint, timeoutMs, timedOut });
  }

  function problem(message: string, op: string, kind: TargetError['kind']): TargetError {
    return new TargetError(message, { target: ctx.name, op, kind, retryable: false });
  }

  async function describe(op: string, signal?: AbortSignal): Promise<DescribeSecretCommandOutput> {
    const sent = callOptions(signal);
    try {
      return await send('read', signal, () => client.send(new DescribeSecretCommand({ SecretId: secretId }), sent));
    } catch (err) {
      throw fail(err, 'DescribeSecret', op, sent);
    }
  }

  /** GetSecretValue; null when the version/stage does not exist (the secret itself was found by DescribeSecret). */
  async function getValue(
    input: Omit<GetSecretValueCommandInput, 'SecretId'>,
    op: string,
    signal?: AbortSignal,
  ): Promise<GetSecretValueCommandOutput | null> {
    const sent = callOptions(signal);
    try {
      return await send('read', signal, () => client.send(new GetSecretValueCommand({ SecretId: secretId, ...input }), sent));
    } catch (err) {
      if ((err as { name?: string }).name === 'ResourceNotFoundException') return null;
      throw fail(err, 'GetSecretValue', op, sent);
    }
  }

  async function moveStage(input: Omit<UpdateSecretVersionStageCommandInput, 'SecretId'>, op: string, signal?: AbortSignal): Promise<void> {
    const sent = callOptions(signal);
    try {
      await send('write', signal, () => client.send(new UpdateSecretVersionStageCommand({ SecretId: secretId, ...input }), sent));
    } catch (err) {
      throw fail(err, 'UpdateSecretVersionStage', op, sent);
    }
  }

  /** The key inside a version's SecretString (the whole string, or the JSON field); null when absent. */
  function keyOf(out: GetSecretValueCommandOutput, op: string): string | null {
    if (out.SecretString === undefined) {
      if (out.SecretBinary !== undefined) {
        throw problem(`${where} holds binary data (SecretBinary); keyrot reads and writes SecretString values only`, op, 'invalid');
      }
      return null;
    }
    if (!field) return out.SecretString === '' ? null : out.SecretString;
    try {
      const v = getJsonField(out.SecretString, field);
      return v === '' ? null : v;
    } catch (err) {
      const why = err instanceof JsonFieldError ? err.message : 'it cannot be read as JSON';
      throw problem(
        `${secretId} cannot hold field "${field}": ${why}. Remove field: to rotate the whole SecretString, or store a JSON object`,
        op,
        'invalid',
      );
    }
  }

  function toRead(out: GetSecretValueCommandOutput | null, op: string): ReadResult {
    const v = out ? keyOf(out, op) : null;
    return v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  async function read(signal?: AbortSignal): Promise<ReadResult> {
    const out = await getValue({ VersionStage: CURRENT }, 'read', signal);
    // No AWSCURRENT: either the secret is missing (DescribeSecret says not-found) or it was
    // created without a value.
    if (!out) await describe('read', signal);
    return toRead(out, 'read');
  }

  /**
   * Makes room for this rotation's AWSPENDING. AWS's own convention (RotateSecret doc): AWSPENDING
   * on the AWSCURRENT version, or on no version, means no rotation is in progress; on another
   * version it means one is. That other version is taken over only when keyrot made it (a
   * rotation that crashed before its restore); otherwise keyrot refuses rather than trample an
   * AWS rotation Lambda or a person. Returns the version still holding AWSPENDING, if any.
   */
  async function clearForeignPending(labels: Labels, token: string, op: string, signal?: AbortSignal): Promise<string | undefined> {
    const p = labels.pending;
    if (!p || p === token || p === labels.current) return p === token ? undefined : p;
    if (!isKeyrotVersion(p)) {
      throw problem(
        `AWSPENDING is on version ${p} of ${secretId}, which keyrot did not create: a rotation (an AWS rotation Lambda?) seems to be in progress. ` +
          `Let it finish, or cancel it and remove the label (aws secretsmanager update-secret-version-stage --secret-id ${secretId} --version-stage AWSPENDING --remove-from-version-id ${p}), then retry`,
        op,
        'conflict',
      );
    }
    ctx.logger.warn(`${ctx.name}: removing AWSPENDING from version ${p}, left by an earlier keyrot rotation`);
    await moveStage({ VersionStage: PENDING, RemoveFromVersionId: p }, op, signal);
    return undefined;
  }

  function receiptFor(arn: string | undefined, token: string, previous: string | null, promoted: boolean): AwsSecretsManagerReceipt {
    return { secretArn: arn ?? null, versionId: token, previousVersionId: previous, promoted };
  }

  /**
   * The SecretString to store: the key itself, or (with `field:`) the AWSCURRENT version's text
   * with only that field's string literal replaced. It is built on exactly the version the
   * promotion will replace (RemoveFromVersionId then acts as a compare-and-swap).
   */
  async function composeOn(currentVersion: string | undefined, value: Secret, signal?: AbortSignal, known?: GetSecretValueCommandOutput): Promise<string> {
    if (!field) return value.reveal();
    const base = known ?? (currentVersion ? await getValue({ VersionId: currentVersion }, 'write', signal) : null);
    if (base) keyOf(base, 'write'); // refuses binary / non-JSON / non-string field in product words
    if (base?.SecretString === undefined || base.SecretString === '') return newJsonWithField(field, value.reveal());
    try {
      return setJsonField(base.SecretString, field, value.reveal());
    } catch (err) {
      const why = err instanceof JsonFieldError ? err.message : 'it cannot be read as JSON';
      throw problem(`${secretId} cannot hold field "${field}": ${why}`, 'write', 'invalid');
    }
  }

  async function write(value: Secret, op: { rotationId: string; signal?: AbortSignal }): Promise<AwsSecretsManagerReceipt> {
    const seen = observed;
    observed = undefined;
    return seen ? writeAfterPreflight(value, op, seen) : writeFresh(value, op);
  }

  /**
   * The first write after preflight: its reads stand (the labels, AWSCURRENT's text), so the
   * version is put at once. PutSecretValue with this rotation's token is idempotent (the same
   * value again is a no-op at AWS, another value fails with ResourceExistsException, a conflict),
   * and a move of AWSCURRENT since preflight is caught by verify's promotion (its
   * RemoveFromVersionId is a compare-and-swap).
   */
  async function writeAfterPreflight(
    value: Secret,
    op: { rotationId: string; signal?: AbortSignal },
    seen: { d: DescribeSecretCommandOutput; current: GetSecretValueCommandOutput | null },
  ): Promise<AwsSecretsManagerReceipt> {
    const token = versionTokenFor(op.rotationId);
    const labels = labelsOf(seen.d);
    await clearForeignPending(labels, token, 'write', op.signal);
    const base = seen.current && seen.current.VersionId === labels.current ? seen.current : undefined;
    await putPending(token, await composeOn(labels.current, value, op.signal, base), op.signal);
    staged.set(op.rotationId, { token, previous: labels.current ?? null });
    return receiptFor(seen.d.ARN, token, labels.current ?? null, false);
  }

  /**
   * ClientRequestToken = this rotation's deterministic token: the same token with the same value
   * is a no-op at AWS (PutSecretValue is idempotent), with another value it fails with
   * ResourceExistsException (mapped to 'conflict'). VersionStages [AWSPENDING] stages the key
   * without making it current; AWSCURRENT stays where it is until verify promotes it.
   */
  async function putPending(token: string, text: string, signal?: AbortSignal): Promise<void> {
    const sent = callOptions(signal);
    try {
      await send('write', signal, () => client.send(new PutSecretValueCommand({ SecretId: secretId, ClientRequestToken: token, SecretString: text, VersionStages: [PENDING] }), sent));
    } catch (err) {
      throw fail(err, 'PutSecretValue', 'write', sent);
    }
  }

  /** A write with nothing read before it (a retry, a resumed rotation): looks for this rotation's version first. */
  async function writeFresh(value: Secret, op: { rotationId: string; signal?: AbortSignal }): Promise<AwsSecretsManagerReceipt> {
    const signal = op.signal;
    const token = versionTokenFor(op.rotationId);
    const d = await describe('write', signal);
    if (d.DeletedDate) throw problem(`${secretId} is scheduled for deletion: restore it (aws secretsmanager restore-secret) first`, 'write', 'invalid');
    const labels = labelsOf(d);

    // Re-entry (engine retry, resume): this rotation's version may already exist. GetSecretValue by
    // VersionId finds it even without labels, which DescribeSecret would not list.
    const mine = await getValue({ VersionId: token }, 'write', signal);
    if (mine) {
      const held = keyOf(mine, 'write');
      if (held !== value.reveal()) {
        const what = held ? `a different key (${new Secret(held).fingerprint})` : 'no key';
        throw problem(
          `version ${token} of ${where} (this rotation's) already holds ${what}, not ${value.fingerprint}: a rotation id was reused with another key; start a new rotation` +
            (field ? ` (or two targets of the inventory write fields of the same secret: keep one target per secret)` : ''),
          'write',
          'conflict',
        );
      }
      const stages = mine.VersionStages ?? [];
      if (stages.includes(CURRENT)) {
        // Already promoted by an earlier verify: the value it replaced is AWSPREVIOUS now.
        return receiptFor(d.ARN, token, labels.previous && labels.previous !== token ? labels.previous : null, true);
      }
      if (field && mine.SecretString !== (await composeOn(labels.current, value, signal))) {
        // The other fields of AWSCURRENT changed since this version was built on it: promoting it
        // would undo someone else's edit.
        throw problem(
          `${secretId} changed (other fields of AWSCURRENT) since this rotation staged version ${token}: keyrot does not promote over it; start a new rotation`,
          'write',
          'conflict',
        );
      }
      if (!stages.includes(PENDING)) {
        const holder = await clearForeignPending(labels, token, 'write', signal);
        await moveStage({ VersionStage: PENDING, MoveToVersionId: token, ...(holder ? { RemoveFromVersionId: holder } : {}) }, 'write', signal);
      }
      return receiptFor(d.ARN, token, labels.current ?? null, false);
    }

    await clearForeignPending(labels, token, 'write', signal);
    await putPending(token, await composeOn(labels.current, value, signal), signal);
    staged.set(op.rotationId, { token, previous: labels.current ?? null });
    return receiptFor(d.ARN, token, labels.current ?? null, false);
  }

  async function verify(value: Secret, op: { rotationId: string; signal?: AbortSignal }, receipt: AwsSecretsManagerReceipt | undefined): Promise<VerifyResult> {
    const s = staged.get(op.rotationId);
    if (s && s.token === (receipt?.versionId ?? versionTokenFor(op.rotationId))) {
      const done = await verifyStaged(value, s, op.signal);
      if (done) return done;
    }
    return verifyFully(value, op, receipt);
  }

  /**
   * Verify right after this process staged the version: read it back by id (a version's value
   * never changes), then promote it, naming the version it was built on as RemoveFromVersionId:
   * a compare-and-swap, AWS refuses it when AWSCURRENT moved meanwhile. The promotion's success
   * is AWS's word that AWSCURRENT is this version. Anything unexpected (a refusal, another value)
   * is left to the full check, which reads everything again and says what happened.
   */
  async function verifyStaged(value: Secret, s: { token: string; previous: string | null }, signal?: AbortSignal): Promise<VerifyResult | undefined> {
    const mine = await getValue({ VersionId: s.token }, 'verify', signal);
    if (!mine || keyOf(mine, 'verify') !== value.reveal()) return undefined;
    if (!(mine.VersionStages ?? []).includes(CURRENT)) {
      try {
        await moveStage({ VersionStage: CURRENT, MoveToVersionId: s.token, ...(s.previous ? { RemoveFromVersionId: s.previous } : {}) }, 'verify', signal);
      } catch (err) {
        if (err instanceof TargetError && !err.retryable) return undefined;
        throw err;
      }
    }
    // AWSPENDING on the current version is a valid "rotation finished" state for AWS, but keyrot
    // leaves no AWSPENDING behind at all.
    if ((mine.VersionStages ?? []).includes(PENDING)) await moveStage({ VersionStage: PENDING, RemoveFromVersionId: s.token }, 'verify', signal);
    return {
      method: 'read-back',
      detail: `version ${s.token} of ${where} holds the new key (read back) and AWS made it AWSCURRENT${s.previous ? `; version ${s.previous} is AWSPREVIOUS` : ''}`,
    };
  }

  /** Verify from what AWS says now: the labels, the staged value, the promotion, AWSCURRENT read back. */
  async function verifyFully(value: Secret, op: { rotationId: string; signal?: AbortSignal }, receipt: AwsSecretsManagerReceipt | undefined): Promise<VerifyResult> {
    const signal = op.signal;
    const token = receipt?.versionId ?? versionTokenFor(op.rotationId);
    const d = await describe('verify', signal);
    const labels = labelsOf(d);
    const mineStages = labels.stagesOf(token);

    if (labels.current !== token) {
      // Staged, not yet current: read it through AWSPENDING (the stage the write put it on), or by
      // version id if the label is gone; compare; then promote.
      const staged = mineStages.includes(PENDING)
        ? await getValue({ VersionId: token, VersionStage: PENDING }, 'verify', signal)
        : await getValue({ VersionId: token }, 'verify', signal);
      if (!staged) {
        throw problem(`version ${token} of ${where} does not exist: the write of this rotation did not happen`, 'verify', 'mismatch');
      }
      const held = keyOf(staged, 'verify');
      if (held !== value.reveal()) {
        const what = held ? `a different key (${new Secret(held).fingerprint})` : 'no key';
        throw problem(`read-back mismatch: version ${token} of ${where} holds ${what}, not the new key (${value.fingerprint})`, 'verify', 'mismatch');
      }
      const expected = receipt && 'previousVersionId' in receipt ? receipt.previousVersionId : undefined;
      if (expected !== undefined && (labels.current ?? null) !== expected) {
        throw problem(
          `AWSCURRENT of ${secretId} moved from version ${String(expected)} to ${labels.current ?? 'none'} while keyrot was rotating: someone else changed the secret; keyrot does not promote over it`,
          'verify',
          'conflict',
        );
      }
      // Promote. RemoveFromVersionId is required when the label is on another version (and acts as
      // a compare-and-swap); AWS moves AWSPREVIOUS to the version AWSCURRENT leaves
      // (UpdateSecretVersionStage API reference; README "Provider facts").
      await moveStage(
        { VersionStage: CURRENT, MoveToVersionId: token, ...(labels.current ? { RemoveFromVersionId: labels.current } : {}) },
        'verify',
        signal,
      );
    }
    if (mineStages.includes(PENDING)) {
      // AWSPENDING on the current version is a valid "rotation finished" state for AWS, but keyrot
      // leaves no AWSPENDING behind at all.
      await moveStage({ VersionStage: PENDING, RemoveFromVersionId: token }, 'verify', signal);
    }
    const now = await getValue({ VersionStage: CURRENT }, 'verify', signal);
    const held = now ? keyOf(now, 'verify') : null;
    if (!now || now.VersionId !== token || held !== value.reveal()) {
      const what = held ? `a different key (${new Secret(held).fingerprint})` : 'no key';
      throw problem(`read-back mismatch: AWSCURRENT of ${where} holds ${what}, not the new key (${value.fingerprint})`, 'verify', 'mismatch');
    }
    return { method: 'read-back', detail: `AWSCURRENT of ${where} is version ${token} and holds the new key; the old version is AWSPREVIOUS` };
  }

  async function restore(previous: Secret | null, op: { rotationId: string; signal?: AbortSignal }, receipt: AwsSecretsManagerReceipt | undefined): Promise<void> {
    const signal = op.signal;
    const token = receipt?.versionId ?? versionTokenFor(op.rotationId);
    const d = await describe('restore', signal);
    const labels = labelsOf(d);
    const mineStages = labels.stagesOf(token);

    if (mineStages.includes(CURRENT)) {
      let back: string | null | undefined =
        receipt ? receipt.previousVersionId : undefined;
      if (back === undefined) {
        // No receipt (crash before the journal recorded it): the version promotion displaced is
        // AWSPREVIOUS. Check it holds the value preflight read before moving AWSCURRENT onto it.
        back = labels.previous && labels.previous !== token ? labels.previous : undefined;
        if (!back) {
          throw problem(`cannot tell which version of ${secretId} to restore: no receipt and no AWSPREVIOUS version`, 'restore', 'conflict');
        }
        if (previous) {
          const prev = await getValue({ VersionId: back }, 'restore', signal);
          const held = prev ? keyOf(prev, 'restore') : null;
          if (held !== previous.reveal()) {
            throw problem(
              `AWSPREVIOUS of ${where} (version ${back}) does not hold the key this rotation replaced; keyrot leaves the new key current rather than restore an unknown value`,
              'restore',
              'conflict',
            );
          }
        }
      }
      if (back === null) {
        throw problem(
          `${secretId} had no value before this rotation and AWS cannot take AWSCURRENT off its only version: it keeps the new key`,
          'restore',
          'unsupported',
        );
      }
      await moveStage({ VersionStage: CURRENT, MoveToVersionId: back, RemoveFromVersionId: token }, 'restore', signal);
    }
    if (mineStages.includes(PENDING)) {
      await moveStage({ VersionStage: PENDING, RemoveFromVersionId: token }, 'restore', signal);
    }
  }

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const notes: string[] = [];
    if (config.token) notes.push('token: is not used by aws-secrets-manager: credentials come from the AWS default chain');
    if (config.region && arnRegion && config.region !== arnRegion) {
      return {
        status: 'blocked',
        reason: `the secret ARN is in ${arnRegion} but region: says ${config.region}: remove region: or fix it`,
        current: { kind: 'unreadable', reason: 'region mismatch' },
      };
    }
    try {
      const d = await describe('preflight', signal);
      if (d.DeletedDate) {
        return {
          status: 'blocked',
          reason: `${secretId} is scheduled for deletion (${d.DeletedDate.toISOString()}): restore it (aws secretsmanager restore-secret --secret-id ${secretId}) or point keyrot at another secret`,
          current: { kind: 'unreadable', reason: 'scheduled for deletion' },
        };
      }
      const labels = labelsOf(d);
      const currentOut = labels.current ? await getValue({ VersionStage: CURRENT }, 'preflight', signal) : null;
      const current = toRead(currentOut, 'preflight');
      if (labels.pending && labels.pending !== labels.current) {
        if (!isKeyrotVersion(labels.pending)) {
          return {
            status: 'blocked',
            reason:
              `AWSPENDING is on version ${labels.pending} of ${secretId}, which keyrot did not create: a rotation (an AWS rotation Lambda?) seems to be in progress. ` +
              `Let it finish, or remove the label (aws secretsmanager update-secret-version-stage --secret-id ${secretId} --version-stage AWSPENDING --remove-from-version-id ${labels.pending})`,
            current,
          };
        }
        notes.push(
          `AWSPENDING is on version ${labels.pending}, left by an earlier keyrot rotation that did not finish: \`keyrot resume\` finishes or rolls it back; a new rotation removes the label before it writes`,
        );
      }
      if (d.RotationEnabled) {
        notes.push(`AWS rotation is enabled on ${secretId}: its next run will replace the key keyrot writes unless you disable it`);
      }
      if (current.kind === 'absent') notes.push(field ? `field "${field}" will be added to the JSON SecretString` : `${secretId} has no value yet; the new key becomes its first`);
      notes.push('the new key is staged as AWSPENDING, then verify promotes it to AWSCURRENT (the old version stays as AWSPREVIOUS)');
      if (!(labels.pending && labels.pending !== labels.current && !isKeyrotVersion(labels.pending))) observed = { d, current: currentOut };
      return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
    } catch (err) {
      const e = err instanceof TargetError ? err : fail(err, 'DescribeSecret', 'preflight');
      // Transient (throttled, 5xx, timeout): not an answer; the engine retries it, bounded.
      if (e.retryable) throw e;
      return { status: 'blocked', reason: e.message, current: { kind: 'unreadable', reason: e.message }, notes };
    }
  }

  return {
    id: 'aws-secrets-manager',
    name: ctx.name,
    location: where,
    lockKey: `aws-secrets-manager:${region ?? ''}:${secretId}`,
    rateLimitKey,
    preflight,
    read,
    write,
    verify,
    restore,
    async close() {
      client.destroy();
    },
  };
}

import type { DescribeSecretCommandOutput, GetSecretValueCommandOutput } from '@aws-sdk/client-secrets-manager';
import { Secret } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { preflightFailed } from '../common.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import type { AwsSecretsManagerConfig, AwsSecretsManagerReceipt } from './index.ts';
import { CURRENT, PENDING, SecretsManagerApi, labelsOf, regionOfArn, type Labels } from './api.ts';
import { JsonFieldError, getJsonField, newJsonWithField, setJsonField } from './json-field.ts';
import { isKeyrotVersion, versionTokenFor } from './version-token.ts';

type Receipt = AwsSecretsManagerReceipt;
type Op = Pick<OpContext, 'rotationId' | 'signal'>;
/** What preflight read: the labels and AWSCURRENT's version. */
type Observed = { d: DescribeSecretCommandOutput; current: GetSecretValueCommandOutput | null };
/** The version this process staged in one rotation and the AWSCURRENT version it was built on. */
type Staged = { token: string; previous: string | null };

export function createAwsSecretsManagerTarget(config: AwsSecretsManagerConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<Receipt> {
  return new AwsSecretsManagerTarget(config, ctx);
}

/** One secret (or one JSON field of it) in AWS Secrets Manager: staged as AWSPENDING, promoted to AWSCURRENT by verify. */
class AwsSecretsManagerTarget implements Target<Receipt> {
  readonly id = 'aws-secrets-manager' as const;
  readonly name: string;
  readonly location: string;
  readonly lockKey: string;
  readonly rateLimitKey: string;
  private readonly api: SecretsManagerApi;
  private readonly secretId: string;
  private readonly field: string | undefined;
  private readonly config: AwsSecretsManagerConfig & CommonTargetConfig;
  private readonly ctx: TargetContext & { name: string };
  /** What preflight read: the first write uses it instead of reading again. */
  private observed: Observed | undefined;
  /** Per rotation: what this process staged (verify then skips the reads the write already answered). */
  private readonly staged = new Map<string, Staged>();

  constructor(config: AwsSecretsManagerConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.config = config;
    this.ctx = ctx;
    this.name = ctx.name;
    this.secretId = config.secret;
    this.field = config.field;
    this.location = `${this.secretId}${this.field ? `[${this.field}]` : ''}`;
    this.api = new SecretsManagerApi(config, ctx);
    this.lockKey = `aws-secrets-manager:${this.api.region ?? ''}:${this.secretId}`;
    this.rateLimitKey = this.api.rateLimitKey;
  }

  async preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const notes: string[] = [];
    if (this.config.token) notes.push('token: is not used by aws-secrets-manager: credentials come from the AWS default chain');
    const arnRegion = regionOfArn(this.secretId);
    if (this.config.region && arnRegion && this.config.region !== arnRegion) {
      return {
        status: 'blocked',
        reason: `the secret ARN is in ${arnRegion} but region: says ${this.config.region}: remove region: or fix it`,
        current: { kind: 'unreadable', reason: 'region mismatch' },
      };
    }
    try {
      return await this.preflightSecret(notes, signal);
    } catch (err) {
      return preflightFailed(err instanceof TargetError ? err : this.api.fail(err, 'DescribeSecret', 'preflight'), this.name, notes);
    }
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    const out = await this.api.getValue({ VersionStage: CURRENT }, 'read', signal);
    // No AWSCURRENT: either the secret is missing (DescribeSecret says not-found) or it was
    // created without a value.
    if (!out) await this.api.describe('read', signal);
    return this.toRead(out, 'read');
  }

  /**
   * The first write after preflight uses its reads (the labels, AWSCURRENT's text), unless they
   * show this rotation's version already (a resumed rotation): that one is looked at afresh.
   */
  async write(value: Secret, op: Op): Promise<Receipt> {
    const seen = this.observed;
    this.observed = undefined;
    const token = versionTokenFor(op.rotationId);
    if (seen && !labelsOf(seen.d).stagesOf(token).length) return this.writeAfterPreflight(value, op, seen);
    return this.writeFresh(value, op);
  }

  async verify(value: Secret, op: Op, receipt: Receipt | undefined): Promise<VerifyResult> {
    const s = this.staged.get(op.rotationId);
    if (s && s.token === (receipt?.versionId ?? versionTokenFor(op.rotationId))) {
      const done = await this.verifyStaged(value, s, op.signal);
      if (done) return done;
    }
    return this.verifyFully(value, op, receipt);
  }

  async restore(previous: Secret | null, op: Op, receipt: Receipt | undefined): Promise<void> {
    const token = receipt?.versionId ?? versionTokenFor(op.rotationId);
    const labels = labelsOf(await this.api.describe('restore', op.signal));
    const mineStages = labels.stagesOf(token);
    if (mineStages.includes(CURRENT)) {
      const back = await this.versionToRestore(labels, token, previous, receipt, op.signal);
      await this.api.moveStage({ VersionStage: CURRENT, MoveToVersionId: back, RemoveFromVersionId: token }, 'restore', op.signal);
    }
    // AWSPENDING on a version that is not AWSCURRENT means "a rotation in progress" to AWS (and to
    // keyrot's next preflight): once AWSCURRENT is back on the old version, the label goes too.
    if (mineStages.includes(PENDING)) {
      await this.api.moveStage({ VersionStage: PENDING, RemoveFromVersionId: token }, 'restore', op.signal);
    }
  }

  async close(): Promise<void> {
    this.api.close();
  }

  private async preflightSecret(notes: string[], signal?: AbortSignal): Promise<PreflightResult> {
    const { secretId, field } = this;
    const d = await this.api.describe('preflight', signal);
    if (d.DeletedDate) {
      return {
        status: 'blocked',
        reason: `${secretId} is scheduled for deletion (${d.DeletedDate.toISOString()}): restore it (aws secretsmanager restore-secret --secret-id ${secretId}) or point keyrot at another secret`,
        current: { kind: 'unreadable', reason: 'scheduled for deletion' },
      };
    }
    const labels = labelsOf(d);
    const currentOut = labels.current ? await this.api.getValue({ VersionStage: CURRENT }, 'preflight', signal) : null;
    const current = this.toRead(currentOut, 'preflight');
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
        `AWSPENDING is on version ${labels.pending}, not on AWSCURRENT: keyrot made that version, and either its rotation did not finish (\`keyrot resume\` finishes or rolls it back) or the value was changed outside keyrot since; a new rotation's write moves the label`,
      );
    }
    if (d.RotationEnabled) notes.push(`AWS rotation is enabled on ${secretId}: its next run will replace the key keyrot writes unless you disable it`);
    if (current.kind === 'absent') notes.push(field ? `field "${field}" will be added to the JSON SecretString` : `${secretId} has no value yet; the new key becomes its first`);
    notes.push('the new key is staged as AWSPENDING, then verify promotes it to AWSCURRENT (the old version stays as AWSPREVIOUS; AWSPENDING stays on the new current version, AWS\'s mark of a finished rotation)');
    this.observed = { d, current: currentOut };
    return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
  }

  /**
   * The first write after preflight: its reads stand, so the version is put at once.
   * PutSecretValue with this rotation's token is idempotent (the same value again is a no-op at
   * AWS, another value fails with ResourceExistsException, a conflict), and a move of AWSCURRENT
   * since preflight is caught by verify's promotion (its RemoveFromVersionId is a compare-and-swap).
   */
  private async writeAfterPreflight(value: Secret, op: Op, seen: Observed): Promise<Receipt> {
    const token = versionTokenFor(op.rotationId);
    const labels = labelsOf(seen.d);
    this.pendingToTake(labels, token, 'write'); // refuses someone else's AWSPENDING; PutSecretValue moves keyrot's
    const base = seen.current && seen.current.VersionId === labels.current ? seen.current : undefined;
    await this.api.putPending(token, await this.composeOn(labels.current, value, op.signal, base), op.signal);
    this.staged.set(op.rotationId, { token, previous: labels.current ?? null });
    return receiptFor(seen.d.ARN, token, labels.current ?? null, false);
  }

  /** A write with nothing read before it (a retry, a resumed rotation): looks for this rotation's version first. */
  private async writeFresh(value: Secret, op: Op): Promise<Receipt> {
    const token = versionTokenFor(op.rotationId);
    const d = await this.api.describe('write', op.signal);
    if (d.DeletedDate) throw this.problem(`${this.secretId} is scheduled for deletion: restore it (aws secretsmanager restore-secret) first`, 'write', 'invalid');
    const labels = labelsOf(d);
    // Re-entry (engine retry, resume): this rotation's version may already exist. GetSecretValue by
    // VersionId finds it even without labels, which DescribeSecret would not list.
    const mine = await this.api.getValue({ VersionId: token }, 'write', op.signal);
    if (mine) return this.resumeOwnVersion(mine, d, value, token, op.signal);
    this.pendingToTake(labels, token, 'write');
    await this.api.putPending(token, await this.composeOn(labels.current, value, op.signal), op.signal);
    this.staged.set(op.rotationId, { token, previous: labels.current ?? null });
    return receiptFor(d.ARN, token, labels.current ?? null, false);
  }

  /** This rotation's version exists already: checks it holds this key and puts AWSPENDING back on it if needed. */
  private async resumeOwnVersion(mine: GetSecretValueCommandOutput, d: DescribeSecretCommandOutput, value: Secret, token: string, signal?: AbortSignal): Promise<Receipt> {
    const labels = labelsOf(d);
    const held = this.keyOf(mine, 'write');
    if (held !== value.reveal()) {
      const what = held ? `a different key (${new Secret(held).fingerprint})` : 'no key';
      throw this.problem(
        `version ${token} of ${this.location} (this rotation's) already holds ${what}, not ${value.fingerprint}: a rotation id was reused with another key; start a new rotation` +
          (this.field ? ` (or two targets of the inventory write fields of the same secret: keep one target per secret)` : ''),
        'write',
        'conflict',
      );
    }
    const stages = mine.VersionStages ?? [];
    if (stages.includes(CURRENT)) {
      // Already promoted by an earlier verify: the value it replaced is AWSPREVIOUS now.
      return receiptFor(d.ARN, token, labels.previous && labels.previous !== token ? labels.previous : null, true);
    }
    if (this.field && mine.SecretString !== (await this.composeOn(labels.current, value, signal))) {
      // The other fields of AWSCURRENT changed since this version was built on it: promoting it
      // would undo someone else's edit.
      throw this.problem(
        `${this.secretId} changed (other fields of AWSCURRENT) since this rotation staged version ${token}: keyrot does not promote over it; start a new rotation`,
        'write',
        'conflict',
      );
    }
    if (!stages.includes(PENDING)) {
      const holder = this.pendingToTake(labels, token, 'write');
      await this.api.moveStage({ VersionStage: PENDING, MoveToVersionId: token, ...(holder ? { RemoveFromVersionId: holder } : {}) }, 'write', signal);
    }
    return receiptFor(d.ARN, token, labels.current ?? null, false);
  }

  /**
   * Verify right after this process staged the version: read it back by id (a version's value
   * never changes), then promote it, naming the version it was built on as RemoveFromVersionId:
   * a compare-and-swap, AWS refuses it when AWSCURRENT moved meanwhile. The promotion's success
   * is AWS's word that AWSCURRENT is this version. Anything unexpected (a refusal, another value)
   * is left to the full check, which reads everything again and says what happened.
   */
  private async verifyStaged(value: Secret, s: Staged, signal?: AbortSignal): Promise<VerifyResult | undefined> {
    const mine = await this.api.getValue({ VersionId: s.token }, 'verify', signal);
    if (!mine || this.keyOf(mine, 'verify') !== value.reveal()) return undefined;
    if (!(mine.VersionStages ?? []).includes(CURRENT)) {
      try {
        await this.api.moveStage({ VersionStage: CURRENT, MoveToVersionId: s.token, ...(s.previous ? { RemoveFromVersionId: s.previous } : {}) }, 'verify', signal);
      } catch (err) {
        if (err instanceof TargetError && !err.retryable) return undefined;
        throw err;
      }
    }
    // AWSPENDING stays on the version now AWSCURRENT: AWS's own "rotation finished" state (README
    // "Labels keyrot leaves"); the next rotation's PutSecretValue moves it. Removing it would cost a
    // third write per secret out of the account's 50 a second.
    return {
      method: 'read-back',
      detail: `version ${s.token} of ${this.location} holds the new key (read back) and AWS made it AWSCURRENT${s.previous ? `; version ${s.previous} is AWSPREVIOUS` : ''}`,
    };
  }

  /** Verify from what AWS says now: the labels, the staged value, the promotion, AWSCURRENT read back. */
  private async verifyFully(value: Secret, op: Op, receipt: Receipt | undefined): Promise<VerifyResult> {
    const signal = op.signal;
    const token = receipt?.versionId ?? versionTokenFor(op.rotationId);
    const labels = labelsOf(await this.api.describe('verify', signal));
    // Once promoted, AWSPENDING may stay on this version (AWS's finished state, as in verifyStaged).
    if (labels.current !== token) await this.promoteChecked(value, token, labels, receipt, signal);
    const now = await this.api.getValue({ VersionStage: CURRENT }, 'verify', signal);
    const held = now ? this.keyOf(now, 'verify') : null;
    if (!now || now.VersionId !== token || held !== value.reveal()) {
      const what = held ? `a different key (${new Secret(held).fingerprint})` : 'no key';
      throw this.problem(`read-back mismatch: AWSCURRENT of ${this.location} holds ${what}, not the new key (${value.fingerprint})`, 'verify', 'mismatch');
    }
    return { method: 'read-back', detail: `AWSCURRENT of ${this.location} is version ${token} and holds the new key; the old version is AWSPREVIOUS` };
  }

  /** Staged, not yet current: reads it, compares, checks AWSCURRENT did not move, then promotes it. */
  private async promoteChecked(value: Secret, token: string, labels: Labels, receipt: Receipt | undefined, signal?: AbortSignal): Promise<void> {
    const { location: where, secretId } = this;
    // Read it through AWSPENDING (the stage the write put it on), or by version id if the label is gone.
    const staged = labels.stagesOf(token).includes(PENDING)
      ? await this.api.getValue({ VersionId: token, VersionStage: PENDING }, 'verify', signal)
      : await this.api.getValue({ VersionId: token }, 'verify', signal);
    if (!staged) throw this.problem(`version ${token} of ${where} does not exist: the write of this rotation did not happen`, 'verify', 'mismatch');
    const held = this.keyOf(staged, 'verify');
    if (held !== value.reveal()) {
      const what = held ? `a different key (${new Secret(held).fingerprint})` : 'no key';
      throw this.problem(`read-back mismatch: version ${token} of ${where} holds ${what}, not the new key (${value.fingerprint})`, 'verify', 'mismatch');
    }
    const expected = receipt && 'previousVersionId' in receipt ? receipt.previousVersionId : undefined;
    if (expected !== undefined && (labels.current ?? null) !== expected) {
      throw this.problem(
        `AWSCURRENT of ${secretId} moved from version ${String(expected)} to ${labels.current ?? 'none'} while keyrot was rotating: someone else changed the secret; keyrot does not promote over it`,
        'verify',
        'conflict',
      );
    }
    // Promote. RemoveFromVersionId is required when the label is on another version (and acts as
    // a compare-and-swap); AWS moves AWSPREVIOUS to the version AWSCURRENT leaves
    // (UpdateSecretVersionStage API reference; README "Provider facts").
    await this.api.moveStage({ VersionStage: CURRENT, MoveToVersionId: token, ...(labels.current ? { RemoveFromVersionId: labels.current } : {}) }, 'verify', signal);
  }

  /** The version AWSCURRENT goes back to: the receipt's, else AWSPREVIOUS once it is shown to hold the replaced key. */
  private async versionToRestore(labels: Labels, token: string, previous: Secret | null, receipt: Receipt | undefined, signal?: AbortSignal): Promise<string> {
    let back: string | null | undefined = receipt ? receipt.previousVersionId : undefined;
    if (back === undefined) {
      // No receipt (crash before the journal recorded it): the version promotion displaced is
      // AWSPREVIOUS. Check it holds the value preflight read before moving AWSCURRENT onto it.
      back = labels.previous && labels.previous !== token ? labels.previous : undefined;
      if (!back) throw this.problem(`cannot tell which version of ${this.secretId} to restore: no receipt and no AWSPREVIOUS version`, 'restore', 'conflict');
      if (previous) {
        const prev = await this.api.getValue({ VersionId: back }, 'restore', signal);
        const held = prev ? this.keyOf(prev, 'restore') : null;
        if (held !== previous.reveal()) {
          throw this.problem(
            `AWSPREVIOUS of ${this.location} (version ${back}) does not hold the key this rotation replaced; keyrot leaves the new key current rather than restore an unknown value`,
            'restore',
            'conflict',
          );
        }
      }
    }
    if (back === null) {
      throw this.problem(`${this.secretId} had no value before this rotation and AWS cannot take AWSCURRENT off its only version: it keeps the new key`, 'restore', 'unsupported');
    }
    return back;
  }

  /**
   * The version this rotation takes AWSPENDING from (PutSecretValue and UpdateSecretVersionStage
   * move a label off the version holding it; README "Provider facts"), if any. AWS's own
   * convention (RotateSecret doc): AWSPENDING on the AWSCURRENT version, or on no version, means no
   * rotation is in progress; on another version it means one is. That other version is taken over
   * only when keyrot made it (a rotation that crashed before its restore, or a value changed
   * outside keyrot after a rotation); otherwise keyrot refuses rather than trample an AWS rotation
   * Lambda or a person.
   */
  private pendingToTake(labels: Labels, token: string, op: string): string | undefined {
    const p = labels.pending;
    if (!p || p === token || p === labels.current) return p === token ? undefined : p;
    if (!isKeyrotVersion(p)) {
      throw this.problem(
        `AWSPENDING is on version ${p} of ${this.secretId}, which keyrot did not create: a rotation (an AWS rotation Lambda?) seems to be in progress. ` +
          `Let it finish, or cancel it and remove the label (aws secretsmanager update-secret-version-stage --secret-id ${this.secretId} --version-stage AWSPENDING --remove-from-version-id ${p}), then retry`,
        op,
        'conflict',
      );
    }
    this.ctx.logger.warn(`${this.name}: moving AWSPENDING off version ${p}, left there by an earlier keyrot rotation`);
    return p;
  }

  /**
   * The SecretString to store: the key itself, or (with `field:`) the AWSCURRENT version's text
   * with only that field's string literal replaced. It is built on exactly the version the
   * promotion will replace (RemoveFromVersionId then acts as a compare-and-swap).
   */
  private async composeOn(currentVersion: string | undefined, value: Secret, signal?: AbortSignal, known?: GetSecretValueCommandOutput): Promise<string> {
    const field = this.field;
    if (!field) return value.reveal();
    const base = known ?? (currentVersion ? await this.api.getValue({ VersionId: currentVersion }, 'write', signal) : null);
    if (base) this.keyOf(base, 'write'); // refuses binary / non-JSON / non-string field in product words
    if (base?.SecretString === undefined || base.SecretString === '') return newJsonWithField(field, value.reveal());
    try {
      return setJsonField(base.SecretString, field, value.reveal());
    } catch (err) {
      const why = err instanceof JsonFieldError ? err.message : 'it cannot be read as JSON';
      throw this.problem(`${this.secretId} cannot hold field "${field}": ${why}`, 'write', 'invalid');
    }
  }

  /** The key inside a version's SecretString (the whole string, or the JSON field); null when absent. */
  private keyOf(out: GetSecretValueCommandOutput, op: string): string | null {
    const field = this.field;
    if (out.SecretString === undefined) {
      if (out.SecretBinary !== undefined) {
        throw this.problem(`${this.location} holds binary data (SecretBinary); keyrot reads and writes SecretString values only`, op, 'invalid');
      }
      return null;
    }
    if (!field) return out.SecretString === '' ? null : out.SecretString;
    try {
      const v = getJsonField(out.SecretString, field);
      return v === '' ? null : v;
    } catch (err) {
      const why = err instanceof JsonFieldError ? err.message : 'it cannot be read as JSON';
      throw this.problem(`${this.secretId} cannot hold field "${field}": ${why}. Remove field: to rotate the whole SecretString, or store a JSON object`, op, 'invalid');
    }
  }

  private toRead(out: GetSecretValueCommandOutput | null, op: string): ReadResult {
    const v = out ? this.keyOf(out, op) : null;
    return v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  private problem(message: string, op: string, kind: TargetError['kind']): TargetError {
    return new TargetError(message, { target: this.name, op, kind, retryable: false });
  }
}

function receiptFor(arn: string | undefined, token: string, previous: string | null, promoted: boolean): Receipt {
  return { secretArn: arn ?? null, versionId: token, previousVersionId: previous, promoted };
}

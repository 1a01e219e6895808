import type { ParameterHistory } from '@aws-sdk/client-ssm';
import { Secret } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { awsRateLimitKey, awsSetup, envRegion } from '../aws-client.ts';
import { laneOf, preflightFailed } from '../common.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import { awsSsmParameter, type AwsSsmParameterConfig, type AwsSsmParameterReceipt } from './index.ts';
import { PARAMETER_STORE } from './errors.ts';
import { parameterStoreCalls } from './store.ts';
import { describeHeld, holds, valueOf } from './versions.ts';
import { restoreLabel, restoreLatest } from './restore.ts';
import { blockedBy, notesFor } from './preflight-notes.ts';

/**
 * An AWS Systems Manager Parameter Store SecureString, through @aws-sdk/client-ssm. Facts relied on
 * (the command and model docs of @aws-sdk/client-ssm; the target README cites them):
 * - PutParameter with `Overwrite: true` creates version N+1; consumers reading `name` get the
 *   latest version, and `name:N` / `name:LABEL` select one (GetParameterRequest.Name);
 * - a label is on one version at a time and LabelParameterVersion moves it;
 * - 100 versions are kept: the oldest is dropped on the next write, unless it has a label
 *   (ParameterMaxVersionLimitExceeded);
 * - without `KeyId` a write is encrypted with the default `alias/aws/ssm` key: keyrot passes the
 *   parameter's own key (or `kms_key:`), and its tier, so a write changes nothing but the value.
 */

export function createAwsSsmParameterTarget(config: AwsSsmParameterConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<AwsSsmParameterReceipt> {
  const name = config.parameter;
  const label = config.label;
  const selector = label ? `${name}:${label}` : name;
  const region = config.region ?? envRegion(ctx.env);
  const aws = awsSetup(PARAMETER_STORE, config, ctx.env, region);
  const rateLimitKey = awsRateLimitKey(awsSsmParameter.id, aws, ctx.env);
  const store = parameterStoreCalls(name, aws, ctx.name, laneOf(ctx, rateLimitKey, awsSsmParameter));
  const where = selector;

  const problem = (message: string, op: string, kind: TargetError['kind']) => new TargetError(message, { target: ctx.name, op, kind, retryable: false });
  async function read(signal?: AbortSignal): Promise<ReadResult> {
    const v = valueOf(await store.get(selector, 'read', { signal }));
    return v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  /** The attributes a new version keeps from the latest one: its KMS key (unless `kms_key:`) and tier. */
  function putOptions(latest: ParameterHistory | undefined): { Type: 'SecureString'; KeyId?: string; Tier?: 'Standard' | 'Advanced' } {
    const keyId = config.kms_key ?? latest?.KeyId;
    const tier = latest?.Tier === 'Advanced' || latest?.Tier === 'Standard' ? latest.Tier : undefined;
    return { Type: 'SecureString', ...(keyId ? { KeyId: keyId } : {}), ...(tier ? { Tier: tier } : {}) };
  }

  /** The version consumers read now: the label's, or the latest. */
  async function liveVersion(op: string, signal?: AbortSignal): Promise<number | null> {
    if (!label) return (await store.history(op, { signal }))?.at(-1)?.Version ?? null;
    return (await store.get(selector, op, { decrypt: false, signal }))?.Version ?? null;
  }

  async function write(value: Secret, op: OpContext): Promise<AwsSsmParameterReceipt> {
    const signal = op.signal;
    const history = await store.history('write', { signal });
    const latest = history?.at(-1);
    const before = await liveVersion('write', signal);
    // Idempotent: the latest version already holding the key is this rotation's write (a retry, a
    // resume); no second version is made.
    const latestValue = latest ? await store.get(`${name}:${latest.Version}`, 'write', { signal }) : null;
    // Creating: Overwrite false, so a parameter someone creates meanwhile is never overwritten.
    const version =
      latest && holds(latestValue, value) ? latest.Version! : await store.put({ Value: value.reveal(), ...putOptions(latest), Overwrite: Boolean(latest) }, 'write', signal);
    if (label && before !== version) await store.label(version, label, 'write', signal);
    const previous = before === version ? await previousOf(version, value, signal) : before;
    // Created by this rotation: no version older than its own.
    const created = !history || history.every((h) => (h.Version ?? 0) >= version);
    return { parameter: name, version, previousVersion: previous, created, label: label ?? null };
  }

  /** On a re-entered write, the version consumers read before this rotation's: the newest earlier one not holding the key. */
  async function previousOf(version: number, value: Secret, signal?: AbortSignal): Promise<number | null> {
    const all = (await store.history('write', { decrypt: true, signal })) ?? [];
    return all.filter((h) => (h.Version ?? 0) < version && !holds(h, value)).at(-1)?.Version ?? null;
  }

  async function verify(value: Secret, op: OpContext, receipt: AwsSsmParameterReceipt | undefined): Promise<VerifyResult> {
    const signal = op.signal;
    const version = receipt?.version ?? (await versionHolding(value, 'verify', signal));
    if (version === null) throw problem(`read-back mismatch: no version of ${name} holds the new key (${value.fingerprint})`, 'verify', 'mismatch');
    const mine = await store.get(`${name}:${version}`, 'verify', { signal });
    if (!holds(mine, value)) {
      throw problem(`read-back mismatch: version ${version} of ${name} holds ${describeHeld(valueOf(mine))}, not the new key (${value.fingerprint})`, 'verify', 'mismatch');
    }
    const live = await store.get(selector, 'verify', { signal });
    if (!holds(live, value)) {
      const at = live ? `version ${live.Version}` : 'no version';
      const why = label ? `label ${label} is on ${at}` : `the latest version is ${at} (written after keyrot's)`;
      throw problem(`read-back mismatch: consumers reading ${selector} get ${describeHeld(valueOf(live))}: ${why}`, 'verify', 'mismatch');
    }
    const how = label ? `label ${label} is on it` : 'it is the latest version';
    return { method: 'read-back', detail: `version ${live!.Version} of ${name} holds the new key (decrypted read-back); ${how}` };
  }

  /** The newest version holding `value` (decrypted history), for a call without a receipt. */
  async function versionHolding(value: Secret | null, op: string, signal?: AbortSignal): Promise<number | null> {
    const all = (await store.history(op, { decrypt: true, signal })) ?? [];
    return all.filter((h) => holds(h, value)).at(-1)?.Version ?? null;
  }

  async function restore(previous: Secret | null, op: OpContext, receipt: AwsSsmParameterReceipt | undefined): Promise<void> {
    const deps = { store, name, selector, putOptions, versionHolding, problem };
    return label ? restoreLabel(deps, label, previous, op, receipt) : restoreLatest(deps, previous, op);
  }

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const notes: string[] = [];
    if (config.token) notes.push('token: is not used by aws-ssm-parameter: credentials come from the AWS default chain');
    try {
      const history = await store.history('preflight', { signal });
      const blocked = history ? blockedBy(history, name) : undefined;
      const current = await read(signal);
      if (blocked) return { status: 'blocked', reason: blocked, current, notes };
      notes.push(...notesFor(history, current, { name, label, kmsKey: config.kms_key }));
      return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
    } catch (err) {
      return preflightFailed(err, ctx.name, notes);
    }
  }

  return {
    id: 'aws-ssm-parameter',
    name: ctx.name,
    location: where,
    lockKey: `aws-ssm-parameter:${region ?? ''}:${name}`,
    rateLimitKey,
    preflight,
    read,
    write,
    verify,
    restore,
    async close() {
      store.close();
    },
  };
}

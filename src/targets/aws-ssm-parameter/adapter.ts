import type { Parameter, ParameterHistory } from '@aws-sdk/client-ssm';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError, toTargetError } from '../../core/errors.ts';
import { awsSetup, envRegion } from '../aws-client.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import type { AwsSsmParameterConfig, AwsSsmParameterReceipt } from './index.ts';
import { PARAMETER_STORE } from './errors.ts';
import { parameterStoreCalls } from './store.ts';

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

const MAX_VERSIONS = 100;

export function createAwsSsmParameterTarget(config: AwsSsmParameterConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<AwsSsmParameterReceipt> {
  const name = config.parameter;
  const label = config.label;
  const selector = label ? `${name}:${label}` : name;
  const region = config.region ?? envRegion(ctx.env);
  const aws = awsSetup(PARAMETER_STORE, config, ctx.env, region);
  const store = parameterStoreCalls(name, aws, ctx.name);
  const where = selector;

  const problem = (message: string, op: string, kind: TargetError['kind']) => new TargetError(message, { target: ctx.name, op, kind, retryable: false });
  const valueOf = (p: Parameter | ParameterHistory | null | undefined) => (p?.Value ? p.Value : null);
  const holds = (p: Parameter | ParameterHistory | null | undefined, value: Secret | null) => valueOf(p) === (value ? value.reveal() : null);
  const describeHeld = (v: string | null) => (v ? `a different key (${fingerprint(v)})` : 'nothing');
  /** Whether a version holds the key this rotation writes (by fingerprint: restore gets no value of it). */
  const holdsNewKey = (p: Parameter | ParameterHistory | null | undefined, op: OpContext) => {
    const v = valueOf(p);
    return v !== null && fingerprint(v) === op.fingerprint;
  };

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
    return label ? restoreLabel(previous, op, receipt) : restoreLatest(previous, op);
  }

  /** Without a label: the old value goes back as a new version (history is never deleted). */
  async function restoreLatest(previous: Secret | null, op: OpContext): Promise<void> {
    const signal = op.signal;
    const history = await store.history('restore', { decrypt: true, signal });
    const latest = history?.at(-1);
    if (!latest || holds(latest, previous)) return; // already back (or nothing was ever written)
    if (!holdsNewKey(latest, op)) {
      throw problem(`${name} changed since keyrot wrote it: it holds ${describeHeld(valueOf(latest))}, neither the new key nor the old one; keyrot leaves it as it is`, 'restore', 'conflict');
    }
    if (previous) {
      await store.put({ Value: previous.reveal(), ...putOptions(latest), Overwrite: true }, 'restore', signal);
      return;
    }
    // The parameter did not exist before: it is removed only when every version is this
    // rotation's key (nothing else's history goes with it).
    if (!history!.every((h) => holdsNewKey(h, op))) {
      throw problem(`${name} had no value before this rotation but has other versions now; keyrot does not delete history: remove the parameter yourself if it should not exist`, 'restore', 'unsupported');
    }
    await store.remove('restore', signal);
  }

  /** With a label: the label goes back to the version holding the old value (or off, when it did not exist). */
  async function restoreLabel(previous: Secret | null, op: OpContext, receipt: AwsSsmParameterReceipt | undefined): Promise<void> {
    const signal = op.signal;
    const live = await store.get(selector, 'restore', { signal });
    if (holds(live, previous)) return;
    if (!previous) {
      if (live && holdsNewKey(live, op)) await store.unlabel(live.Version!, label!, 'restore', signal);
      return;
    }
    let back = receipt?.previousVersion ?? null;
    if (back === null || !holds(await store.get(`${name}:${back}`, 'restore', { signal }), previous)) back = await versionHolding(previous, 'restore', signal);
    if (back === null) {
      // The old version is gone (the 100-version limit): it comes back as a new version.
      const latest = (await store.history('restore', { signal }))?.at(-1);
      back = await store.put({ Value: previous.reveal(), ...putOptions(latest), Overwrite: true }, 'restore', signal);
    }
    await store.label(back, label!, 'restore', signal);
  }

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const notes: string[] = [];
    if (config.token) notes.push('token: is not used by aws-ssm-parameter: credentials come from the AWS default chain');
    try {
      const history = await store.history('preflight', { signal });
      const blocked = history ? blockedBy(history) : undefined;
      const current = await read(signal);
      if (blocked) return { status: 'blocked', reason: blocked, current, notes };
      notes.push(...notesFor(history, current));
      return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
    } catch (err) {
      const e = toTargetError(err, ctx.name, 'preflight');
      // Transient (throttled, 5xx, timeout): not an answer; the engine retries it, bounded.
      if (e.retryable) throw e;
      return { status: 'blocked', reason: e.message, current: { kind: 'unreadable', reason: e.message }, notes };
    }
  }

  function blockedBy(history: ParameterHistory[]): string | undefined {
    const latest = history.at(-1);
    if (latest && latest.Type !== 'SecureString') {
      return `${name} is a ${latest.Type} parameter, stored and shown unencrypted: keyrot writes keys to SecureString parameters only. Create a SecureString parameter (aws ssm put-parameter --type SecureString) and point parameter: at it`;
    }
    const oldest = history[0];
    if (history.length >= MAX_VERSIONS && oldest?.Labels?.length) {
      return `${name} has ${MAX_VERSIONS} versions and the oldest (${oldest.Version}) has the label ${oldest.Labels.join(', ')}: Parameter Store cannot drop it to make room for keyrot's version. Move the label to a newer version (aws ssm label-parameter-version --name ${name} --parameter-version N --labels ${oldest.Labels[0]})`;
    }
    return undefined;
  }

  function notesFor(history: ParameterHistory[] | null, current: ReadResult): string[] {
    const notes: string[] = [];
    const latest = history?.at(-1);
    const key = config.kms_key ?? latest?.KeyId ?? 'alias/aws/ssm';
    if (!history) notes.push(`${name} does not exist: keyrot creates it as a SecureString encrypted with ${key}${label ? `, labelled ${label}` : ''}`);
    else notes.push(`the new key becomes version ${(latest?.Version ?? 0) + 1} of ${name}, a SecureString encrypted with ${key}; older versions stay`);
    if (label) notes.push(current.kind === 'absent' ? `label ${label} is on no version yet: keyrot attaches it to the new version` : `label ${label} moves to the new version; a rollback moves it back`);
    if (config.kms_key && latest?.KeyId && latest.KeyId !== config.kms_key) notes.push(`kms_key ${config.kms_key} differs from the key of the current version (${latest.KeyId})`);
    if (history && history.length >= MAX_VERSIONS) notes.push(`${name} has ${MAX_VERSIONS} versions, the most Parameter Store keeps: it drops the oldest (${history[0]?.Version}) when keyrot writes`);
    notes.push('verified by reading the new version back, decrypted, and checking consumers get it');
    return notes;
  }

  return {
    id: 'aws-ssm-parameter',
    name: ctx.name,
    location: where,
    lockKey: `aws-ssm-parameter:${region ?? ''}:${name}`,
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

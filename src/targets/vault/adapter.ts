import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { preflightFailed } from '../common.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import type { VaultConfig, VaultReceipt } from './index.ts';
import { vaultAtFrom, vaultHttp, type KvRead, type VaultAt } from './client.ts';

/**
 * One field of a KV version 2 secret. Every change is a read of the latest version, that one field
 * changed (the others kept as they are), and a check-and-set write on the version read: a write
 * in between by anyone else makes Vault refuse keyrot's, which then reads again. Versions are
 * never deleted or destroyed; a rollback is a new version with the old value.
 */
export function createVaultTarget(config: VaultConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<VaultReceipt> {
  const field = config.field ?? ctx.varName;
  const { mount, path } = config;
  const where = `${config.namespace ? `${config.namespace}/` : ''}${mount}/${path}[${field}]`;
  const at = vaultAtFrom(config, ctx);
  const http = 'problem' in at ? undefined : vaultHttp(at);

  const problem = (message: string, op: string, kind: TargetError['kind']) => new TargetError(message, { target: ctx.name, op, kind, retryable: false });

  function client(op: string) {
    if (!http) throw problem((at as { problem: string }).problem, op, 'invalid');
    return http;
  }

  /** The field's string value in a version's data; null when absent; a non-string is refused. */
  function fieldOf(r: KvRead, op: string): string | null {
    const v = r.data?.[field];
    if (v === undefined || v === null || v === '') return null;
    if (typeof v !== 'string') throw problem(`${where} holds a ${typeof v}, not a string: keyrot rotates string fields only; point field: at the key's field`, op, 'invalid');
    return v;
  }

  async function read(signal?: AbortSignal): Promise<ReadResult> {
    const v = fieldOf(await client('read').read(mount, path, 'read', { signal }), 'read');
    return v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  /** Writes `value` into the field (null: removes the field) on top of the latest version, with check-and-set. */
  async function setField(latest: KvRead, value: string | null, op: string, signal?: AbortSignal): Promise<number> {
    const data = { ...(latest.data ?? {}) };
    if (value === null) delete data[field];
    else data[field] = value;
    return client(op).write(mount, path, data, latest.version ?? 0, op, signal);
  }

  async function write(value: Secret, op: OpContext): Promise<VaultReceipt> {
    const latest = await client('write').read(mount, path, 'write', { signal: op.signal });
    // Idempotent: the latest version already holding the key is this rotation's (a retry, a resume).
    if (latest.version !== null && fieldOf(latest, 'write') === value.reveal()) {
      return { version: latest.version, previousVersion: latest.version > 1 ? latest.version - 1 : null };
    }
    const version = await setField(latest, value.reveal(), 'write', op.signal);
    return { version, previousVersion: latest.version };
  }

  async function verify(value: Secret, op: OpContext, receipt: VaultReceipt | undefined): Promise<VerifyResult> {
    const c = client('verify');
    const latest = await c.read(mount, path, 'verify', { signal: op.signal });
    const version = receipt?.version ?? latest.version;
    const mine = version === null ? { version: null, data: null } : await c.read(mount, path, 'verify', { version, signal: op.signal });
    const held = fieldOf(mine, 'verify');
    if (held !== value.reveal()) {
      throw problem(`read-back mismatch: version ${version ?? '(none)'} of ${where} holds ${describeHeld(held)}, not the new key (${value.fingerprint})`, 'verify', 'mismatch');
    }
    const now = fieldOf(latest, 'verify');
    if (now !== value.reveal()) {
      throw problem(`read-back mismatch: the latest version of ${where} (${latest.version}) holds ${describeHeld(now)}: it was written after keyrot's version ${version}`, 'verify', 'mismatch');
    }
    return { method: 'read-back', detail: `version ${version} of ${where} holds the new key and is the latest` };
  }

  async function restore(previous: Secret | null, op: OpContext): Promise<void> {
    const latest = await client('restore').read(mount, path, 'restore', { signal: op.signal });
    const held = fieldOf(latest, 'restore');
    if (held === (previous ? previous.reveal() : null)) return; // already back
    if (held !== null && fingerprint(held) !== op.fingerprint) {
      throw problem(`${where} changed since keyrot wrote it: it holds ${describeHeld(held)}, neither the new key nor the old one; keyrot leaves it as it is`, 'restore', 'conflict');
    }
    // A new version with the old value (or without the field); nothing is deleted or destroyed.
    await setField(latest, previous ? previous.reveal() : null, 'restore', op.signal);
  }

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    try {
      const c = client('preflight');
      const engine = await c.mountInfo(mount, path, 'preflight', signal);
      const wrong = engineProblem(engine, mount, path);
      if (wrong) return { status: 'blocked', reason: wrong, current: { kind: 'unreadable', reason: wrong } };
      const latest = await c.read(mount, path, 'preflight', { signal });
      const v = fieldOf(latest, 'preflight');
      const current: ReadResult = v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
      return { status: 'ready', current, willCreate: current.kind === 'absent', notes: notesFor(latest, current, { mount, path, field, namespace: (at as VaultAt).namespace }) };
    } catch (err) {
      return preflightFailed(err, ctx.name);
    }
  }

  return {
    id: 'vault',
    name: ctx.name,
    location: where,
    // One lock per secret: two fields of one secret would race on its check-and-set.
    lockKey: `vault:${'problem' in at ? '' : at.address}:${config.namespace ?? ''}:${mount}/${path}`,
    ...('problem' in at ? {} : { rateLimitKey: at.rateLimitKey }),
    preflight,
    read,
    write,
    verify,
    restore,
  };
}

function describeHeld(v: string | null): string {
  return v ? `a different key (${fingerprint(v)})` : 'nothing';
}

/** KV version 1 has no versions and no check-and-set, and its `data/` path would be a secret named "data". */
function engineProblem(engine: { path?: string; type?: string; version?: string }, mount: string, path: string): string | undefined {
  const served = engine.path?.replace(/\/+$/, '');
  if (served && served !== mount) return `${mount}/${path} is served by the mount ${served}/, not ${mount}/: set mount: ${served} and path: relative to it`;
  if (engine.type && engine.type !== 'kv' && engine.type !== 'generic') return `the mount ${mount}/ is a ${engine.type} secrets engine, not KV: point mount: at a KV version 2 mount`;
  if (engine.version !== '2') return `the mount ${mount}/ is KV version 1: keyrot rotates KV version 2 secrets (versions and check-and-set); upgrade it (vault kv enable-versioning ${mount}/) or use a KV v2 mount`;
  return undefined;
}

/** What plan says the write will do. */
function notesFor(latest: KvRead, current: ReadResult, s: { mount: string; path: string; field: string; namespace?: string }): string[] {
  const { mount, path, field } = s;
  const notes = [
    latest.version === null
      ? `${mount}/${path} does not exist: keyrot creates it with the field ${field} (check-and-set 0: only if nobody creates it first)`
      : `the new key becomes version ${latest.version + 1} of ${mount}/${path}: field ${field} changes, the other fields are kept, written with check-and-set on version ${latest.version}`,
    'verified by reading that version back; a rollback writes the old value as a new version (no version is deleted)',
  ];
  if (latest.version !== null && latest.data === null) {
    // A deleted or destroyed latest version has no data to keep (what `vault kv put` does too).
    notes.push(`the latest version (${latest.version}) is deleted: the new version holds field ${field} only; the fields of older versions are not carried over (vault kv undelete first to keep them)`);
  } else if (current.kind === 'absent' && latest.version !== null) notes.push(`field ${field} is not set in the latest version: keyrot adds it`);
  if (s.namespace) notes.push(`namespace ${s.namespace} (X-Vault-Namespace)`);
  return notes;
}

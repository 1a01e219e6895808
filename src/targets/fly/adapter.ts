import { randomBytes } from 'node:crypto';
import type { Secret } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { credentialOrDefault } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { laneOf, lazyCredential, preflightFailed } from '../common.ts';
import { waitTimeoutMs } from '../types.ts';
import { tokenRateLimitKey } from '../token-client.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import { fly, type FlyConfig, type FlyReceipt } from './index.ts';
import { TOKEN_HELP, documentedDigest, flyClient, type FlyClient, type FlySecret } from './client.ts';
import { rollMachines } from './machines.ts';

/**
 * One secret of a Fly app. The write only stages it (a new secrets version); `redeploy` then
 * updates every machine onto that version and waits until the running ones are started. Fly never
 * returns a secret's value: the write is verified by the digest Fly answered for it (in this
 * process), by Fly's documented digest of the key, or by the secret's `updated_at` in the receipt.
 */

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const credentialName = (ref: { kind: string; name?: string; raw: string }) => (ref.kind === 'env' ? ref.name! : ref.raw);

export function unreadable(name: string, app: string): ReadResult {
  return { kind: 'unreadable', reason: `Fly lists only a digest of secret ${name} of app ${app}, never its value` };
}

export function createFlyTarget(config: FlyConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<FlyReceipt> {
  const app = config.app;
  const varName = ctx.varName;
  const redeployWanted = config.redeploy !== false;
  const timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
  const cred = credentialOrDefault(config.token, ['FLY_API_TOKEN', 'FLY_ACCESS_TOKEN'], ctx.env);
  const rateLimitKey = tokenRateLimitKey('fly', config.endpoint, credentialName(cred));
  const api = flyClient({
    endpoint: config.endpoint,
    lane: laneOf(ctx, rateLimitKey, fly),
    credential: lazyCredential(ctx, cred, (m) => `Fly API token: ${m} (${TOKEN_HELP})`),
    credName: credentialName(cred),
    clock: ctx.clock,
    target: ctx.name,
    timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    app,
  });
  /** Digests Fly answered for this process's writes, by rotation, purpose and key fingerprint. */
  const answered = new Map<string, string>();
  /** Secrets versions this process's restores produced, by rotation. */
  const restoredAt = new Map<string, number>();
  /** Machines updated per rotation and purpose (id → instance): a retried redeploy goes on where it stopped. */
  const rolled = new Map<string, Map<string, { instance: string; running: boolean }>>();

  const memo = (op: OpContext, purpose: RedeployPurpose, value: Secret) => `${op.rotationId}:${purpose}:${value.fingerprint}`;
  const entryOf = async (op: string, signal?: AbortSignal, version?: number): Promise<FlySecret | undefined> =>
    (await api.secrets(app, op, signal, version)).find((s) => s.name === varName);
  /** Does the listed entry hold `value`: the digest Fly gave keyrot's own write of it, or Fly's documented digest of it. */
  const holds = (e: FlySecret | undefined, value: Secret, key: string) => !!e?.digest && (e.digest === answered.get(key) || e.digest.toLowerCase() === documentedDigest(value));

  /** Sets (or, with null, unsets) the secret; the new secrets version and what Fly lists for it. */
  async function change(value: Secret | null, op: string, signal?: AbortSignal): Promise<{ version: number | undefined; entry: FlySecret | undefined }> {
    const res = await api.update(app, { [varName]: value ? value.reveal() : null }, op, signal);
    const entry = res.secrets.find((s) => s.name === varName) ?? (value ? await entryOf(op, signal, res.version) : undefined);
    if (value && !entry?.digest) {
      throw new TargetError(`Fly accepted secret ${varName} of app ${app} but does not list it`, { target: ctx.name, op, kind: 'mismatch', retryable: true });
    }
    return { version: res.version, entry };
  }

  /** The app's latest secrets version without changing a secret: unset one that does not exist (flyctl's `secrets sync`). */
  async function latestVersion(op: OpContext): Promise<number> {
    const res = await api.update(app, { [`KEYROT_SYNC_${randomBytes(8).toString('hex').toUpperCase()}`]: null }, 'redeploy', op.signal);
    if (res.version === undefined) throw new TargetError(`Fly did not say which secrets version app ${app} is at`, { target: ctx.name, op: 'redeploy', kind: 'unavailable', retryable: true });
    return res.version;
  }

  const target: Target<FlyReceipt> = {
    id: 'fly',
    name: ctx.name,
    location: `fly app ${app}`,
    // One app's secrets version and machines: two targets on one app take turns.
    rateLimitKey,
    lockKey: `fly:${config.endpoint ?? ''}:${app}`,
    preflight: (signal) => preflightOf({ api, app, varName, redeployWanted, timeoutMs, target: ctx.name }, signal),
    read: async (signal) => ((await entryOf('read', signal)) ? unreadable(varName, app) : { kind: 'absent' }),

    async write(value, op) {
      const key = memo(op, 'write', value);
      const before = await entryOf('write', op.signal);
      // Idempotent: Fly already lists this value's digest, so nothing is staged again.
      if (holds(before, value, key)) return { app, fingerprint: value.fingerprint, changed: false, created: false, version: null, updatedAt: before?.updated_at ?? null };
      const { version, entry } = await change(value, 'write', op.signal);
      answered.set(key, entry!.digest!);
      return { app, fingerprint: value.fingerprint, changed: true, created: !before, version: version ?? null, updatedAt: entry?.updated_at ?? null };
    },

    async verify(value, op, receipt): Promise<VerifyResult> {
      const e = await entryOf('verify', op.signal, receipt?.version ?? undefined);
      if (holds(e, value, memo(op, 'write', value))) return { method: 'metadata', detail: `the digest Fly lists for secret ${varName} of app ${app} is the new key's` };
      // After a restart: the secret has not changed since keyrot's write of this key.
      if (e?.updated_at && receipt?.fingerprint === value.fingerprint && receipt.updatedAt === e.updated_at) {
        return { method: 'metadata', detail: `secret ${varName} of app ${app} is unchanged since keyrot's write at ${e.updated_at}` };
      }
      const found = e ? `a value keyrot did not write${e.updated_at ? ` (changed at ${e.updated_at})` : ''}` : 'nothing';
      throw new TargetError(`verify mismatch: secret ${varName} of Fly app ${app} holds ${found}, not the new key (${value.fingerprint})`, { target: ctx.name, op: 'verify', kind: 'mismatch', retryable: false });
    },

    async restore(previous, op) {
      const e = await entryOf('restore', op.signal);
      if (previous === null) {
        // The secret did not exist before this rotation: unset the one keyrot created.
        if (e) restoredAt.set(op.rotationId, (await change(null, 'restore', op.signal)).version ?? -1);
        return;
      }
      const key = memo(op, 'restore', previous);
      if (holds(e, previous, key)) return;
      const { version, entry } = await change(previous, 'restore', op.signal);
      answered.set(key, entry!.digest!);
      if (version !== undefined) restoredAt.set(op.rotationId, version);
    },
  };

  if (redeployWanted) {
    target.redeploy = async (op, receipt, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> => {
      const known = purpose === 'write' ? receipt?.version : restoredAt.get(op.rotationId);
      const version = known !== undefined && known !== null && known >= 0 ? known : await latestVersion(op);
      const stepKey = `${op.rotationId}:${purpose}`;
      if (!rolled.has(stepKey)) rolled.set(stepKey, new Map());
      const r = await rollMachines({ api, app, version, clock: ctx.clock, timeoutMs, target: ctx.name, op: purpose === 'write' ? 'redeploy' : 'restore-redeploy', signal: op.signal, done: rolled.get(stepKey)! });
      const what = purpose === 'write' ? 'the new key' : 'the restored value';
      const total = r.restarted + r.stopped;
      const detail = total
        ? `${total} machine${total === 1 ? '' : 's'} of Fly app ${app} updated onto secrets version ${version} with ${what} (${r.restarted} restarted and started${r.stopped ? `, ${r.stopped} stopped: they boot with it when started` : ''})`
        : `Fly app ${app} has no machines: ${what} is staged for its next deploy`;
      return { method: 'redeploy', detail };
    };
  }
  return target;
}

interface PreflightOptions {
  api: FlyClient;
  app: string;
  varName: string;
  redeployWanted: boolean;
  timeoutMs: number;
  target: string;
}

/** Read-only: the app is reachable, whether the secret exists, and how many machines a redeploy restarts. */
async function preflightOf(o: PreflightOptions, signal?: AbortSignal): Promise<PreflightResult> {
  const { api, app, varName } = o;
  try {
    await api.app(app, 'preflight', signal);
    const exists = (await api.secrets(app, 'preflight', signal)).some((s) => s.name === varName);
    const current: ReadResult = exists ? unreadable(varName, app) : { kind: 'absent' };
    const notes = [`stages secret ${varName} of Fly app ${app} (a new secrets version; the other secrets are untouched)`];
    if (o.redeployWanted) {
      const machines = (await api.machines(app, 'preflight', signal)).filter((m) => m.state !== 'destroyed' && m.state !== 'destroying');
      notes.push(
        machines.length
          ? `then updates its ${machines.length} machine${machines.length === 1 ? '' : 's'} onto that version one at a time, waiting until each running one is started again (up to ${formatDuration(o.timeoutMs)})`
          : `the app has no machines: the secret is staged for its next deploy`,
      );
    } else notes.push(`no machine update (redeploy: false): running machines keep the old value until they are next updated or deployed`);
    notes.push(`verified by the digest Fly lists for the secret (the value itself is write-only)`);
    if (current.kind === 'absent') notes.push(`${varName} is not set on app ${app}: keyrot will create it (and unset it again on rollback)`);
    return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
  } catch (err) {
    return preflightFailed(err, o.target);
  }
}

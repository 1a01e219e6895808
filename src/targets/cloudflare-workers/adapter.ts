import { TargetError } from '../../core/errors.ts';
import { preflightFailed } from '../common.ts';
import type { Secret } from '../../core/secret.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import { createWorkersClient } from './client.ts';
import type { CloudflareWorkersConfig, CloudflareWorkersReceipt } from './index.ts';
import { soleVersion, workerApi, type WorkerApi } from './worker.ts';

/**
 * A Cloudflare Worker secret. Values are write-only, and every secret change creates a new version
 * of the Worker and deploys it to all traffic at once: the write IS the redeploy.
 * - preflight: the Worker exists, the token reads it, and its latest version is the one deployed
 *   at 100% (otherwise Cloudflare refuses secret changes, code 10215: blocked with what to do).
 * - write: PUT the secret, then the deployment it made (new version id and number) in the receipt;
 *   idempotent per rotation: a second write in one run makes no new version while that version
 *   still serves.
 * - verify: the secret listed as `secret_text`, and the deployment serving all traffic is keyrot's
 *   version or a later one (versions inherit secrets), each with the secret bound.
 * - restore: the old key written again (a new version), or the secret deleted when keyrot created it.
 */

type Fail = (message: string, retryable?: boolean) => TargetError;

/** Worker binding names are JavaScript identifiers (the API: "A JavaScript variable name for the binding"). */
const BINDING_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function createCloudflareWorkersTarget(config: CloudflareWorkersConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<CloudflareWorkersReceipt> {
  const varName = ctx.varName;
  const worker = workerApi(createWorkersClient(config, ctx), config.account, config.script, varName);
  /** Per rotation and key: the version this process's write (or restore) deployed. */
  const deployed = new Map<string, CloudflareWorkersReceipt>();
  const mismatch: Fail = (message, retryable = false) => new TargetError(message, { target: ctx.name, op: 'verify', kind: 'mismatch', retryable });

  async function write(value: Secret, op: OpContext, why: 'write' | 'restore' = 'write'): Promise<CloudflareWorkersReceipt> {
    const memoKey = `${why}:${op.rotationId}:${value.fingerprint}`;
    const before = await worker.latestDeployment(why, op.signal);
    const memo = deployed.get(memoKey);
    if (memo?.versionId && soleVersion(before) === memo.versionId) return memo;
    const created = !(await worker.hasSecret(why, op.signal));
    await worker.putSecret(value, why, op.signal);
    const receipt = { fingerprint: value.fingerprint, created, versionBefore: soleVersion(before) ?? null, ...(await deployedAfter(worker, before, why, op.signal)) };
    deployed.set(memoKey, receipt);
    return receipt;
  }

  const target: Target<CloudflareWorkersReceipt> = {
    id: 'cloudflare-workers',
    name: ctx.name,
    location: `Worker ${config.script} (account ${config.account})`,
    // Each secret change deploys the Worker: two targets on one Worker take turns.
    lockKey: `cloudflare-workers:${config.endpoint ?? ''}:${config.account}/${config.script}`,
    preflight: (signal) => preflight(worker, varName, signal).catch((err: unknown) => preflightFailed(err, ctx.name)),
    read: (signal) => read(worker, signal),
    write: (value, op) => write(value, op),
    verify: (value, op, receipt) => verify(worker, varName, value, op, receipt, mismatch),
    async restore(previous, op) {
      for (const k of [...deployed.keys()]) if (k.startsWith(`write:${op.rotationId}:`)) deployed.delete(k);
      if (previous) await write(previous, op, 'restore');
      else await worker.deleteSecret('restore', op.signal);
    },
  };
  return target;
}

async function read(worker: WorkerApi, signal?: AbortSignal): Promise<ReadResult> {
  if (!(await worker.hasSecret('read', signal))) return { kind: 'absent' };
  return { kind: 'unreadable', reason: `Cloudflare Worker secrets are write-only: the API never returns their value (${worker.secretAbout.subject})` };
}

async function preflight(worker: WorkerApi, varName: string, signal?: AbortSignal): Promise<PreflightResult> {
  if (!BINDING_NAME.test(varName)) {
    const reason = `Cloudflare Worker secret names are JavaScript identifiers, not ${JSON.stringify(varName)}: change \`var:\` (or key.name)`;
    return { status: 'blocked', reason, current: { kind: 'unreadable', reason } };
  }
  const exists = await worker.hasSecret('preflight', signal);
  const deployment = await worker.latestDeployment('preflight', signal);
  const latest = await worker.latestVersionId('preflight', signal);
  const serving = soleVersion(deployment);
  const current: ReadResult = exists ? { kind: 'unreadable', reason: 'Cloudflare Worker secrets are write-only' } : { kind: 'absent' };
  if (!serving || serving !== latest) {
    const what = !serving ? `a deployment split between versions (${(deployment?.versions ?? []).map((v) => `${v.version_id} ${v.percentage}%`).join(', ') || 'none'})` : `version ${serving} while version ${latest} is newer and not deployed`;
    const reason = `${worker.about.subject} serves ${what}: Cloudflare refuses secret changes until its latest version serves all traffic (code 10215); finish the deployment (\`wrangler versions deploy\`), then run keyrot again`;
    return { status: 'blocked', reason, current };
  }
  const notes = [
    `setting secret ${varName} creates a new version of ${worker.about.subject} and deploys it to all traffic at once (Cloudflare's secrets API): no separate redeploy`,
    `write-only: verified by the secret's presence and by the new version serving 100% of traffic with it bound; a rollback writes the old key again (another new version)${exists ? '' : ', here deletes the secret keyrot created'}`,
  ];
  if (!exists) notes.push(`${varName} is not set on the Worker: keyrot will create it`);
  return { status: 'ready', current, willCreate: !exists, notes };
}

/** The version and deployment a secret change made: the newest deployment, when it is not the one before. */
async function deployedAfter(worker: WorkerApi, before: { id: string } | undefined, op: string, signal?: AbortSignal) {
  const after = await worker.latestDeployment(op, signal);
  const versionId = after && after.id !== before?.id ? (soleVersion(after) ?? null) : null;
  const versionNumber = versionId ? (await worker.version(versionId, op, signal)).number : null;
  return { versionId, versionNumber, deploymentId: versionId ? after!.id : null };
}

async function verify(worker: WorkerApi, varName: string, value: Secret, op: OpContext, receipt: CloudflareWorkersReceipt | undefined, fail: Fail): Promise<VerifyResult> {
  const subject = worker.secretAbout.subject;
  if (!receipt || receipt.fingerprint !== value.fingerprint) throw fail(`${subject} is write-only and keyrot has no record of writing the new key (${value.fingerprint}) to it: write it again`);
  if (!(await worker.hasSecret('verify', op.signal))) throw fail(`${subject} is not listed after keyrot wrote the new key (${value.fingerprint})`);
  const ids = ((await worker.latestDeployment('verify', op.signal))?.versions ?? []).map((v) => v.version_id);
  if (!ids.length) throw fail(`${worker.about.subject} has no deployment serving traffic after keyrot's write`);
  // The deployment list may lag the secret change by a moment: retried (bounded) before it counts.
  if (receipt.versionBefore && ids.includes(receipt.versionBefore)) throw fail(`${worker.about.subject} still serves version ${receipt.versionBefore}, from before keyrot's write`, true);
  const serving = await Promise.all(ids.map((id) => worker.version(id, 'verify', op.signal)));
  const older = receipt.versionNumber === null ? undefined : serving.find((v) => v.number < receipt.versionNumber!);
  if (older) throw fail(`${worker.about.subject} serves version ${older.number}, older than version ${receipt.versionNumber} that keyrot's write deployed: it was rolled back and may not run the new key (${value.fingerprint})`);
  // A newer version made by a secret change came after keyrot's write: the values are write-only,
  // so keyrot cannot tell whether it replaced this secret (someone put the old key back) or another.
  const laterSecret = receipt.versionNumber === null ? undefined : serving.find((v) => v.number > receipt.versionNumber! && v.triggeredBy === 'secret');
  if (laterSecret) {
    throw fail(`${worker.about.subject} serves version ${laterSecret.number}, made by a secret change after keyrot's write (version ${receipt.versionNumber}): another writer may have replaced ${varName}, and write-only values cannot be compared; run keyrot resume to write it again`);
  }
  const unbound = serving.find((v) => !v.bindings.some((b) => b.name === varName && b.type === 'secret_text'));
  if (unbound) throw fail(`version ${unbound.number} of ${worker.about.subject}, which serves traffic, has no secret binding ${varName}`);
  const which = serving.map((v) => `version ${v.number}${v.id === receipt.versionId ? " (deployed by keyrot's write)" : ''}`).join(' and ');
  return { method: 'metadata', detail: `${which} of ${worker.about.subject} serves all traffic with secret ${varName} bound` };
}

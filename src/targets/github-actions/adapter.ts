import { TargetError } from '../../core/errors.ts';
import { preflightFailed } from '../common.ts';
import type { Secret } from '../../core/secret.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { waitTimeoutMs, type CommonTargetConfig, type OpContext, type PreflightResult, type ReadResult, type RedeployPurpose, type Target, type TargetContext, type VerifyResult } from '../types.ts';
import { createGitHubClient } from './client.ts';
import { workflowDispatcher } from './dispatch.ts';
import { describeGitHub, type GitHubActionsConfig, type GitHubActionsReceipt } from './index.ts';
import { scopeOf, secretNameProblem, type SecretScope } from './scope.ts';
import { secretStore, type SecretMeta } from './store.ts';

/**
 * A GitHub Actions (or Dependabot) secret: write-only, sealed with its store's public key.
 * - write: seal + PUT, then the secret's `updated_at` (the receipt keeps it with GitHub's clock
 *   before the PUT and the public key id used); idempotent per rotation: a second write of the
 *   same key in one run makes no PUT while `updated_at` shows nobody changed the secret since.
 * - verify: `updated_at` at or past the write and unchanged since, and the key id still GitHub's.
 * - restore: the old key written again (GitHub never returns a value), or the secret deleted when
 *   it did not exist before; an organisation secret gets its old visibility back.
 * - redeploy (with `dispatch:`): a workflow run on the new (or restored) value, waited for.
 */

const DEFAULT_DISPATCH_TIMEOUT_MS = 30 * 60_000;

export function createGitHubActionsTarget(config: GitHubActionsConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<GitHubActionsReceipt> {
  const varName = ctx.varName;
  const scope = scopeOf(config);
  const client = createGitHubClient(config, ctx);
  const store = secretStore(client, scope, config, varName);
  const dispatcher = config.dispatch ? workflowDispatcher(client, config, ctx, waitTimeoutMs(config.timeout, DEFAULT_DISPATCH_TIMEOUT_MS)) : undefined;
  /** Writes this process made: rotation + fingerprint → the receipt (its updatedAt proves nobody wrote since). */
  const written = new Map<string, GitHubActionsReceipt>();
  const fail = (message: string, op: string) => new TargetError(message, { target: ctx.name, op, kind: 'mismatch', retryable: false });

  async function write(value: Secret, op: OpContext): Promise<GitHubActionsReceipt> {
    const memoKey = `${op.rotationId}:${value.fingerprint}`;
    const existing = await store.get('write', op.signal);
    const memo = written.get(memoKey);
    if (memo && existing?.updated_at === memo.updatedAt) return memo;
    const access = await store.orgAccess('write', existing, op.signal);
    const before = await store.currentAccess(existing, 'write', op.signal);
    const put = await store.put(value, 'write', { access, existing }, op.signal);
    const receipt: GitHubActionsReceipt = {
      fingerprint: value.fingerprint,
      keyId: put.keyId,
      created: put.created,
      writtenAfter: put.writtenAfter,
      updatedAt: put.after.updated_at,
      previousVisibility: before?.visibility ?? null,
      previousRepositoryIds: before?.repositoryIds ?? null,
    };
    written.set(memoKey, receipt);
    return receipt;
  }

  const target: Target<GitHubActionsReceipt> = {
    id: 'github-actions',
    name: ctx.name,
    location: describeGitHub(config),
    // One secret at a time per store: GitHub keeps no version to compare-and-set on.
    lockKey: `github-actions:${config.endpoint ?? ''}:${describeGitHub(config)}:${varName.toUpperCase()}`,
    preflight: (signal) => preflight(signal),
    read: (signal) => read(signal),
    write,
    verify: (value, op, receipt) => verify(value, op, receipt),
    async restore(previous, op, receipt) {
      for (const k of [...written.keys()]) if (k.startsWith(`${op.rotationId}:`)) written.delete(k);
      if (previous === null) {
        await store.remove('restore', op.signal);
        return;
      }
      const existing = await store.get('restore', op.signal);
      const before = receipt?.previousVisibility ? { visibility: receipt.previousVisibility, repositoryIds: receipt.previousRepositoryIds } : undefined;
      const access = before ?? (await store.orgAccess('restore', existing, op.signal));
      await store.put(previous, 'restore', { access, existing }, op.signal);
    },
    ...(dispatcher ? { redeploy: (op: OpContext, _receipt: GitHubActionsReceipt | undefined, purpose: RedeployPurpose = 'write') => dispatcher.run(op, purpose) } : {}),
  };

  async function read(signal?: AbortSignal): Promise<ReadResult> {
    const s = await store.get('read', signal);
    if (s) return { kind: 'unreadable', reason: `GitHub ${scope.what}s are write-only: GitHub never returns a value (${varName} of ${scope.where}, updated ${s.updated_at})` };
    // A 404 is also what a missing repository answers: the public key tells them apart.
    await store.publicKey('read', signal);
    return { kind: 'absent' };
  }

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const named = secretNameProblem(varName);
    if (named) return blocked(`${named}: change \`var:\` (or key.name)`);
    try {
      const key = await store.publicKey('preflight', signal);
      const existing = await store.get('preflight', signal);
      if (scope.kind === 'org') await store.orgAccess('preflight', existing, signal);
      await dispatcher?.check(signal);
      const current: ReadResult = existing ? { kind: 'unreadable', reason: `GitHub ${scope.what}s are write-only` } : { kind: 'absent' };
      return { status: 'ready', current, willCreate: !existing, notes: planNotes(scope, varName, key.key_id, existing, dispatcher) };
    } catch (err) {
      // A secondary limit is transient too: retried by the engine.
      return preflightFailed(err, ctx.name);
    }
  }

  async function verify(value: Secret, op: OpContext, receipt: GitHubActionsReceipt | undefined): Promise<VerifyResult> {
    const subject = store.about.subject;
    if (!receipt || receipt.fingerprint !== value.fingerprint) {
      throw fail(`${subject} is write-only and keyrot has no record of writing the new key (${value.fingerprint}) to it: write it again`, 'verify');
    }
    const now = await store.get('verify', op.signal);
    if (!now) throw fail(`${subject} no longer exists after keyrot wrote the new key (${value.fingerprint})`, 'verify');
    if (Date.parse(now.updated_at) < Date.parse(receipt.writtenAfter)) {
      throw fail(`${subject} was last updated at ${now.updated_at}, before keyrot's write (${receipt.writtenAfter}): GitHub did not take the new key`, 'verify');
    }
    if (now.updated_at !== receipt.updatedAt) {
      throw fail(`${subject} was updated again at ${now.updated_at}, after keyrot wrote the new key (${receipt.updatedAt}): something else changed it`, 'verify');
    }
    const key = await store.publicKey('verify', op.signal);
    if (key.key_id !== receipt.keyId) {
      throw fail(`GitHub's public key for ${scope.where} changed (now ${key.key_id}) since keyrot sealed the new key with ${receipt.keyId}: write it again`, 'verify');
    }
    return { method: 'metadata', detail: `${subject} updated at ${now.updated_at} by keyrot's write, sealed with public key ${receipt.keyId}` };
  }

  function blocked(reason: string): PreflightResult {
    return { status: 'blocked', reason, current: { kind: 'unreadable', reason } };
  }

  return target;
}

function planNotes(scope: SecretScope, varName: string, keyId: string, existing: SecretMeta | undefined, dispatcher: ReturnType<typeof workflowDispatcher> | undefined): string[] {
  const notes = [
    `${scope.what} ${varName} of ${scope.where} is write-only: keyrot seals the new key with GitHub's public key for it (key id ${keyId}) and cannot read it back`,
    `verified by the secret's updated_at moving past keyrot's write and the public key id used; a rollback writes the old key again${existing ? '' : ' (here: deletes the secret, which does not exist yet)'}`,
    `the token needs ${scope.permissions}: GitHub cannot check write access without writing, so a read-only token fails at the write (and the rotation is rolled back)`,
  ];
  if (!existing) notes.push(`${varName} does not exist in ${scope.where}: keyrot will create it`);
  if (existing?.visibility) notes.push(`organisation secret visibility: ${existing.visibility}`);
  if (dispatcher) notes.push(`after the write keyrot runs ${dispatcher.label} and waits for it to succeed (up to ${formatDuration(dispatcher.timeoutMs)}): CI proves it works with the new key`);
  return notes;
}


import { plural } from '../../render/plural.ts';
import { toTargetError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import { failpoint } from '../../runtime/failpoints.ts';
import { encodeReceipt } from '../live-targets.ts';
import type { Run } from '../run.ts';
import { mayHoldNew, type TargetRecord } from '../state.ts';

/** Why a target could not be put back. */
export type RestoreFailure = 'old-key-unknown' | 'restore-failed' | 'redeploy-failed';

/**
 * Targets a rollback still has to put back: those that may hold the new key, and those restored
 * whose consumers have not been redeployed onto the restored value yet.
 */
export function toRestore(run: Run): string[] {
  return [...run.state.targets.values()].filter((t) => mayHoldNew(run.state, t) || restoredButNotRedeployed(run, t)).map((t) => t.info.name);
}

function restoredButNotRedeployed(run: Run, t: TargetRecord): boolean {
  return t.restored && t.touched && Boolean(run.liveTarget(t.info.name).target?.redeploy) && !t.restoreRedeployed;
}

/** The value a target goes back to: its own (read in preflight), or the environment's old key for write-only ones. */
export function previousValue(run: Run, t: TargetRecord): Secret | null | undefined {
  if (t.info.old === null) return null;
  const fp = t.info.old === 'unreadable' ? run.state.oldFingerprint : t.info.old;
  return run.keyring.get(fp);
}

/**
 * Puts every target in `names` back on what it held, and redeploys those whose consumers may run
 * the new key, waiting until they run the old one again (a rollback is not done while a
 * deployment may still use the new key). Returns the failures by target.
 */
export async function restoreAll(run: Run, names: string[]): Promise<Map<string, RestoreFailure>> {
  const failures = new Map<string, RestoreFailure>();
  if (!names.length) return failures;
  run.reporter.step('restore', `${plural(names.length, 'target')} back to the old key`);
  await Promise.all(
    names.map((name) => {
      const t = run.target(name);
      return run.paced(name, async () => {
        const failure = await restoreOne(run, name);
        if (failure) failures.set(name, failure);
      });
    }),
  );
  return failures;
}

async function restoreOne(run: Run, name: string): Promise<RestoreFailure | undefined> {
  const rec = run.record(name);
  const prev = previousValue(run, rec);
  if (prev === undefined) return rollForward(run, name);
  run.reporter.target(name, 'restoring');
  if (!rec.restored) {
    const failed = await restoreValue(run, name, prev);
    if (failed) return failed;
  }
  const t = run.target(name);
  if (t.redeploy && rec.touched && !rec.restoreRedeployed) {
    try {
      run.reporter.target(name, 'redeploying', 'back to the old key');
      await run.emit({ step: 'redeploy', target: name, outcome: 'started', purpose: 'restore' });
      const r = await run.retryingRestore(name, () => t.redeploy!(run.op(), run.receiptOrNone(name), 'restore'));
      await run.emit({ step: 'redeploy', target: name, outcome: 'ok', purpose: 'restore', method: r.method, detail: r.detail });
    } catch (err) {
      const e = toTargetError(err, name, 'redeploy');
      await run.emit({ step: 'redeploy', target: name, outcome: 'failed', purpose: 'restore', detail: `restored, but its consumers may still run the new key: ${e.message}` });
      run.reporter.target(name, 'failed', `redeploy after restore: ${e.message}`);
      return 'redeploy-failed';
    }
  }
  run.reporter.target(name, 'restored');
  return undefined;
}

async function restoreValue(run: Run, name: string, prev: Secret | null): Promise<RestoreFailure | undefined> {
  const t = run.target(name);
  await run.emit({ step: 'restore', target: name, outcome: 'started', fingerprint: prev?.fingerprint ?? null });
  try {
    await run.retryingRestore(name, () => t.restore(prev, run.op(), run.receiptOrNone(name)));
    await run.emit({ step: 'restore', target: name, outcome: 'ok', fingerprint: prev?.fingerprint ?? null });
    failpoint(`after-restore:${name}`);
    return undefined;
  } catch (err) {
    const e = toTargetError(err, name, 'restore');
    if (await foundRestored(run, name, prev)) return undefined;
    await run.emit({ step: 'restore', target: name, outcome: 'failed', detail: `restore failed: ${e.message}` });
    run.reporter.target(name, 'failed', `restore failed: ${e.message}`);
    return 'restore-failed';
  }
}

/**
 * After a failed restore, establish what can be: a readable target read back holding its old
 * value is restored (the write never landed, or the restore did before its answer was lost).
 */
async function foundRestored(run: Run, name: string, prev: Secret | null): Promise<boolean> {
  if (run.record(name).info.old === 'unreadable') return false;
  try {
    const now = await run.retryingRestore(name, () => run.target(name).read(run.o.signal));
    const holds = now.kind === 'value' ? now.value.fingerprint : now.kind === 'absent' ? null : undefined;
    if (holds === undefined || holds !== (prev?.fingerprint ?? null)) return false;
    await run.emit({ step: 'restore', target: name, outcome: 'ok', fingerprint: holds, detail: 'read back holding its old value' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A write-only target and no readable target knew the old key: it cannot be put back. Rather
 * than leave whatever a failed write stored, make sure it holds the new key (valid too: the old
 * key is not revoked), and leave the rotation resumable.
 */
async function rollForward(run: Run, name: string): Promise<RestoreFailure> {
  const key = run.newKey;
  let detail = 'cannot restore: the old key is not known (no target holds it any more, and keyrot never stores it)';
  if (key) detail += (await writeNewKeyAgain(run, name)) ? '; it holds the new key' : ' and re-writing the new key failed too';
  await run.emit({ step: 'restore', target: name, outcome: 'skipped', detail });
  run.reporter.target(name, 'failed', detail);
  return 'old-key-unknown';
}

/** The last resort for a target nothing else can fix: a few attempts, even after a refusal. */
const ROLL_FORWARD_ATTEMPTS = 3;

async function writeNewKeyAgain(run: Run, name: string): Promise<boolean> {
  const key = run.newKey!;
  const t = run.target(name);
  for (let attempt = 0; attempt < ROLL_FORWARD_ATTEMPTS; attempt++) {
    try {
      await run.emit({ step: 'write', target: name, outcome: 'started', fingerprint: key.fingerprint });
      const receipt = await run.retryingRestore(name, () => t.write(key, run.op()));
      await run.retryingRestore(name, () => t.verify(key, run.op(), receipt));
      await run.emit({ step: 'write', target: name, outcome: 'ok', fingerprint: key.fingerprint, ...encodeReceipt(run.definition(name), receipt) });
      return true;
    } catch {
      // try again, bounded: whatever a failed write stored is worse than either key
    }
  }
  return false;
}

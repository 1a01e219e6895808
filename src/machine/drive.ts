import { EXIT } from '../core/errors.ts';
import { appendAudit } from '../state/audit-log.ts';
import { deleteMintedKey } from './minted.ts';
import { next, type RotationReport } from './outcome.ts';
import type { Run } from './run.ts';
import { finalizeAll } from './steps/finalize.ts';
import { restoreAll, toRestore } from './steps/restore.ts';
import { oldKeyOf, revocationStep } from './steps/revocation.ts';
import { unverified, verifyAll } from './steps/verify.ts';
import { writeAll } from './steps/write.ts';

export interface DriveOptions {
  /** Stop at "awaiting revocation" once every target is verified (emergency: its review comes first). */
  deferRevocation?: boolean;
}

/**
 * Drives a started rotation from wherever its state says it is to an end or an interruption:
 * forward (write → verify + redeploy → revocation step), or, once the rotation turned back,
 * rollback (restore + redeploy every touched target). `rotate` calls this right after `start`;
 * `resume` calls it on the replayed state: one path for both.
 */
export async function drive(run: Run, opts: DriveOptions = {}): Promise<RotationReport> {
  return run.state.goal === 'rollback' ? rollback(run) : forward(run, opts);
}

function stopRequested(run: Run): boolean {
  return Boolean(run.o.signal?.aborted);
}

/** Targets that do not hold the new key by a journaled write (a write also gives them their receipt). */
function toWrite(run: Run): string[] {
  const s = run.state;
  return [...s.targets.values()].filter((t) => !t.written || t.holds !== s.newFingerprint).map((t) => t.info.name);
}

async function forward(run: Run, opts: DriveOptions): Promise<RotationReport> {
  if (stopRequested(run)) return stopped(run);
  const writesOk = await writeAll(run, toWrite(run));
  // A stop request (SIGTERM) lets the in-flight step finish and be journaled, then stops: no
  // rollback, no new step. The journal says exactly where it stopped; resume continues.
  if (stopRequested(run)) return stopped(run);
  const verifyOk = writesOk && (await verifyAll(run, unverified(run)));
  // Stopped with every target verified: the revocation step records "awaiting revocation" instead.
  if (stopRequested(run) && !(writesOk && verifyOk && !run.state.revokedFirst)) return stopped(run);
  if (!writesOk || !verifyOk) {
    // The old key is already revoked: going back to it would only spread the outage.
    if (run.state.revokedFirst) return revokedFirstFailures(run);
    await run.emit({ step: 'decide', outcome: 'ok', goal: 'rollback', reason: 'failed' });
    return rollback(run);
  }
  if (run.state.revokedFirst) return completeRevokedFirst(run);
  const rev = await revocationStep(run, { defer: Boolean(opts.deferRevocation), mode: run.o.inventory.config.revoke.mode });
  await end(run, rev.outcome, rev.outcome === 'completed' ? 'rotation.completed' : 'rotation.awaiting-revocation');
  return run.report(rev.outcome, EXIT.ok, rev.cancelled ? { cancelled: true } : {});
}

async function rollback(run: Run): Promise<RotationReport> {
  const s = run.state;
  const failed = [...s.targets.values()].filter((t) => t.lastError).map((t) => t.info.name);
  const names = toRestore(run);
  const failures = await restoreAll(run, names);
  if (failures.size) {
    await audit(run, 'rotation.interrupted', { failed: [...failures.keys()] });
    const oldKeyUnknown = [...failures.values()].includes('old-key-unknown');
    run.notices.push({
      code: 'restore-incomplete',
      oldKeyUnknown,
      old: oldKeyOf(run),
      // One way on: a rotation that turned back cannot go forward again (`keyrot resume` alone retries the undo).
      next: [next('resume', run.env, '--rollback', ...(oldKeyUnknown ? ['--old-key', 'SOURCE'] : []))],
    });
    return run.report('interrupted', EXIT.failed);
  }
  if (s.minted) run.notices.push(await deleteMintedKey(run.issuer, s.minted, s.newFingerprint ? { hint: s.newHint ?? '', fingerprint: s.newFingerprint } : null, run.env));
  if (s.rollbackReason === 'requested') {
    await end(run, 'rolled-back', 'rotation.rolled-back', { restored: names });
    const unused = !s.minted && s.newFingerprint ? { hint: s.newHint ?? '', fingerprint: s.newFingerprint } : null;
    run.notices.push({ code: 'rolled-back', rotation: s.id, restored: names, unusedNewKey: unused });
    return run.report('rolled-back', EXIT.ok);
  }
  await end(run, 'failed', 'rotation.failed', { failed, restored: names, detail: `failed: ${failed.join(', ')}` });
  run.notices.push({ code: 'failed-restored', failed });
  return run.report('failed', EXIT.failed);
}

async function completeRevokedFirst(run: Run): Promise<RotationReport> {
  await run.emit({ step: 'verified-all', outcome: 'ok', fingerprint: run.state.newFingerprint });
  await finalizeAll(run);
  await end(run, 'completed', 'rotation.completed', { revokedFirst: true });
  run.notices.push({ code: 'completed-revoked-first' });
  return run.report('completed', EXIT.ok);
}

async function revokedFirstFailures(run: Run): Promise<RotationReport> {
  const failed = [...run.state.targets.values()].filter((t) => t.lastError).map((t) => t.info.name);
  await audit(run, 'rotation.interrupted', { failed });
  run.notices.push({ code: 'revoked-first-failures', next: next('resume', run.env) });
  return run.report('interrupted', EXIT.failed);
}

async function stopped(run: Run): Promise<RotationReport> {
  await audit(run, 'rotation.stopped', { reason: 'stop requested (signal)' });
  run.notices.push({ code: 'stopped', next: next('resume', run.env) });
  return run.report('interrupted', EXIT.failed);
}

/** Journals the end of the rotation and audits it. */
async function end(
  run: Run,
  outcome: 'awaiting-revocation' | 'completed' | 'failed' | 'rolled-back',
  event: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  const { detail, ...rest } = details as { detail?: string };
  await run.emit({ step: 'end', outcome, ...(detail ? { detail } : {}) });
  await audit(run, event, { new: run.state.newFingerprint, old: run.state.oldFingerprint, ...rest });
}

export async function audit(run: Run, event: string, details: Record<string, unknown>): Promise<void> {
  await appendAudit(run.o.state, { event, env: run.env, rotation: run.state.id, details });
}

import { EXIT } from '../core/errors.ts';
import { audit } from '../machine/drive.ts';
import { next, Refusal, type KeyRef, type RotationReport } from '../machine/outcome.ts';
import { PromptCancelled } from '../core/errors.ts';
import { Run, type EngineOptions } from '../machine/run.ts';
import { latestStanding, rotationsOf, type RotationState } from '../machine/state.ts';
import { finalizeAll } from '../machine/steps/finalize.ts';
import { oldKeyOf, recordRevoked, revokeThroughAdmin } from '../machine/steps/revocation.ts';

/**
 * `keyrot revoke`: the revocation step of a rotation awaiting it (prompt mode records the
 * operator's confirmation; the admin mode revokes through the issuer's admin API), then
 * finalize. Run again after a completed rotation whose clean-up failed, it retries the clean-up.
 */
export async function revoke(o: EngineOptions): Promise<RotationReport> {
  // The lock first: while a rotation runs, revoking is exit 3 (and the journal is read under it).
  const run = new Run(o);
  await run.acquire('revoke');
  try {
    const last = await rotationToRevoke(run);
    run.open(last.id, last);
    if (last.outcome === 'completed') return await retryFinalize(run);
    const old = oldKeyOf(run) ?? { hint: '(unknown)', fingerprint: '(unknown)' };
    if (o.inventory.config.revoke.mode === 'openai-admin') {
      // Disuse is judged from now: a straggler found and fixed since the rotation no longer blocks,
      // one still running does (its use shows within the margin).
      if (!(await revokeThroughAdmin(run, old, o.clock.now()))) throw new Refusal({ code: 'admin-revocation-failed', notice: run.notices.at(-1)! }, run.env);
      return await complete(run);
    }
    if (!o.yes) {
      const answer = await askOperator(run, old);
      if (answer !== 'yes') return revokeReport(run, 'awaiting-revocation', answer === 'cancelled');
    }
    await recordRevoked(run, oldKeyOf(run), 'operator confirmed revocation in the dashboard');
    run.notices.push({ code: 'revocation-recorded', old, also: run.state.alsoRevoke });
    await finalizeAll(run);
    return await complete(run);
  } finally {
    await run.release();
  }
}

/** The rotation a revocation waits on; it may sit before a later failed or rolled-back one. */
async function rotationToRevoke(run: Run): Promise<RotationState> {
  const all = await rotationsOf(run.o.state, run.env);
  const latest = all[all.length - 1];
  const last = latest && latest.outcome !== undefined ? (latestStanding(all) ?? latest) : latest;
  if (!last) throw new Refusal({ code: 'not-awaiting-revocation' }, run.env);
  if (last.outcome === 'completed' && finalizeLeft(last)) return last;
  if (last.outcome !== 'awaiting-revocation') {
    throw new Refusal({
      code: 'not-awaiting-revocation',
      rotation: last.id,
      outcome: last.outcome,
      next: last.outcome === undefined ? next('resume', run.env) : undefined,
    }, run.env);
  }
  const unverified = [...last.targets.values()].filter((t) => !t.verified).map((t) => t.info.name);
  if (!last.allVerified || unverified.length) throw new Refusal({ code: 'unverified-targets', targets: unverified }, run.env);
  return last;
}

/** A completed rotation whose clean-up failed on some target (journaled `finalize failed`, never `ok`). */
function finalizeLeft(r: RotationState): boolean {
  return r.events.some((e) => e.step === 'finalize' && e.outcome === 'failed' && e.target && !r.targets.get(e.target)?.finalized);
}

async function retryFinalize(run: Run): Promise<RotationReport> {
  await finalizeAll(run);
  run.notices.push({ code: 'rotation-complete', rotation: run.state.id });
  return revokeReport(run, 'completed');
}

async function askOperator(run: Run, old: KeyRef): Promise<'yes' | 'no' | 'cancelled'> {
  const o = run.o;
  const revokeAt = run.issuer.revokeAt;
  if (!o.interactive || !o.confirmRevocation) {
    throw new Refusal({ code: 'confirm-revocation', old, also: run.state.alsoRevoke, revokeAt, next: next('revoke', run.env, '--yes') }, run.env, EXIT.usage);
  }
  try {
    const ok = await o.confirmRevocation({ oldHint: old.hint, oldFingerprint: old.fingerprint, revokeAt, env: run.env, also: run.state.alsoRevoke });
    if (!ok) run.notices.push({ code: 'revocation-declined' });
    return ok ? 'yes' : 'no';
  } catch (err) {
    if (err instanceof PromptCancelled) {
      run.notices.push({ code: 'awaiting-revocation', old, revokeAt, also: run.state.alsoRevoke, next: next('revoke', run.env) });
      return 'cancelled';
    }
    throw err;
  }
}

async function complete(run: Run): Promise<RotationReport> {
  await run.emit({ step: 'end', outcome: 'completed' });
  await audit(run, 'rotation.completed', { new: run.state.newFingerprint });
  run.notices.push({ code: 'rotation-complete', rotation: run.state.id });
  return revokeReport(run, 'completed');
}

/** `revoke` reports the keys and what it did; the per-target table belongs to the rotation. */
function revokeReport(run: Run, outcome: 'completed' | 'awaiting-revocation', cancelled = false): RotationReport {
  return run.report(outcome, EXIT.ok, { targets: [], ...(cancelled ? { cancelled: true } : {}) });
}

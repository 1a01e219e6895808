import { plural } from '../../render/plural.ts';
import { toTargetError } from '../../core/errors.ts';
import { failpoint } from '../../runtime/failpoints.ts';
import type { Run } from '../run.ts';

/**
 * Proves every target in `names` holds the new key (read back, or metadata for write-only
 * stores), then redeploys those whose consumers need a restart and waits for them: "verified"
 * includes the running app. Each outcome is journaled. Returns whether all succeeded.
 */
export async function verifyAll(run: Run, names: string[]): Promise<boolean> {
  if (!names.length) return true;
  run.reporter.step('verify', plural(names.length, 'target'));
  const results = await Promise.all(
    // Verifying reads: it does not wait for the turn of targets sharing a file.
    names.map((name) => run.paced(name, () => verifyOrRecord(run, name), { exclusive: false })),
  );
  return results.every(Boolean);
}

/** Verifies (and redeploys) one target; a failure is journaled and reported, and answers false. */
async function verifyOrRecord(run: Run, name: string): Promise<boolean> {
  if (run.o.signal?.aborted) return false;
  const phase = { now: 'verify' as 'verify' | 'redeploy' };
  try {
    await verifyOne(run, name, phase);
    return true;
  } catch (err) {
    const e = toTargetError(err, name, phase.now);
    const failed = phase.now === 'verify' ? { step: 'verify' as const, fingerprint: run.state.newFingerprint } : { step: 'redeploy' as const, purpose: 'write' as const };
    await run.emit({ ...failed, target: name, outcome: 'failed', detail: e.message });
    run.reporter.target(name, 'failed', `${phase.now}: ${e.message}`);
    return false;
  }
}

async function verifyOne(run: Run, name: string, phase: { now: 'verify' | 'redeploy' }): Promise<void> {
  const t = run.target(name);
  const rec = run.record(name);
  const key = run.newKey!;
  if (!rec.verified) {
    run.reporter.target(name, 'verifying');
    const v = await run.retrying(name, 'verifying', () => t.verify(key, run.op(), run.receipt(name)));
    await run.emit({ step: 'verify', target: name, outcome: 'ok', fingerprint: key.fingerprint, method: v.method, detail: v.detail });
    failpoint(`after-verify:${name}`);
  }
  if (t.redeploy && !rec.redeployed) {
    phase.now = 'redeploy';
    run.reporter.target(name, 'redeploying');
    await run.emit({ step: 'redeploy', target: name, outcome: 'started', purpose: 'write' });
    const r = await run.retrying(name, 'redeploying', () => t.redeploy!(run.op(), run.receipt(name), 'write'));
    await run.emit({ step: 'redeploy', target: name, outcome: 'ok', purpose: 'write', method: r.method, detail: r.detail });
    failpoint(`after-redeploy:${name}`);
  }
  run.reporter.target(name, 'verified', rec.verified);
}

/** Targets whose verification (including their redeploy) is not complete yet. */
export function unverified(run: Run): string[] {
  return [...run.state.targets.values()]
    .filter((t) => !t.verified || (run.target(t.info.name).redeploy && !t.redeployed))
    .map((t) => t.info.name);
}

import { EXIT } from '../core/errors.ts';
import type { Secret } from '../core/secret.ts';
import { audit, drive } from '../machine/drive.ts';
import { next, Refusal, type RotationReport } from '../machine/outcome.ts';
import { isReady } from '../machine/preflight.ts';
import { Run, type EngineOptions } from '../machine/run.ts';
import { anythingWritten, latestRotation, type RotationState } from '../machine/state.ts';
import { toRestore } from '../machine/steps/restore.ts';

export interface KeySourceOption {
  source: string;
  obtain: () => Promise<Secret>;
}

export interface ResumeOptions {
  rollback: boolean;
  /** Source of the new key (must match the journal's fingerprint); default: read it back from a target. */
  newKey?: KeySourceOption;
  /** Source of the old key, for a rollback when no target holds it any more. */
  oldKey?: KeySourceOption;
  /**
   * Unattended (the scheduler): when the new key is neither held by a target nor given by a
   * matching source, roll back instead of refusing, so that recovery never waits for a person.
   */
  rollbackWhenNewKeyUnavailable?: boolean;
}

/** `keyrot resume [--rollback]`: continue or undo an interrupted rotation from its journal. */
export async function resume(o: EngineOptions, r: ResumeOptions): Promise<RotationReport> {
  const run = new Run(o);
  // The lock first (a running rotation is exit 3, not "nothing to resume"), then the journal,
  // read under the lock so another resume or rollback cannot finish it in between.
  await run.acquire(r.rollback ? 'resume --rollback' : 'resume');
  try {
    const last = await interruptedRotation(run, r.rollback);
    run.open(last.id, last);
    await run.setupTargets();
    checkSameTargets(run);
    // Keys first (a prompt may be cancelled: then nothing was journaled), then what each target holds.
    await takeKeys(run, r);
    await observe(run);
    if (r.rollback && last.goal === 'forward') await run.emit({ step: 'decide', outcome: 'ok', goal: 'rollback', reason: 'requested' });
    if (last.goal === 'forward' && !run.newKey) await newKeyUnavailable(run, r);
    const blocked = blockedThatMatter(run);
    if (blocked.length) {
      run.notices.push({ code: 'cannot-resume-yet', blocked, next: next('resume', run.env, ...(last.goal === 'rollback' ? ['--rollback'] : [])) });
      for (const n of blocked) run.record(n).lastError = (run.preflight.get(n) as { reason?: string }).reason;
      return run.report('interrupted', EXIT.failed);
    }
    await audit(run, last.goal === 'rollback' ? 'rotation.rollback-resumed' : 'rotation.resumed', {});
    run.notices.push({ code: 'resuming', rotation: last.id });
    return await drive(run);
  } finally {
    await run.release();
  }
}

async function interruptedRotation(run: Run, rollback: boolean): Promise<RotationState> {
  const last = await latestRotation(run.o.state, run.env);
  if (!last) throw new Refusal({ code: 'nothing-to-resume' }, run.env);
  if (last.outcome !== undefined) {
    throw new Refusal({
      code: 'nothing-to-resume',
      rotation: last.id,
      outcome: last.outcome,
      next: last.outcome === 'awaiting-revocation' ? next('revoke', run.env) : undefined,
    }, run.env);
  }
  if (rollback && last.revokedAt) {
    throw new Refusal({
      code: 'rollback-after-revocation',
      rotation: last.id,
      old: last.oldFingerprint ? { hint: last.oldHint ?? '', fingerprint: last.oldFingerprint } : null,
      revokedFirst: last.revokedFirst,
      next: next('resume', run.env),
    }, run.env);
  }
  return last;
}

/** The rotation's targets and the inventory's must be the same set: resume never guesses. */
function checkSameTargets(run: Run): void {
  const journaled = [...run.state.targets.keys()];
  const missing = journaled.filter((n) => !run.live.some((t) => t.spec.name === n));
  const extra = run.live.map((t) => t.spec.name).filter((n) => !run.state.targets.has(n));
  if (missing.length || extra.length) throw new Refusal({ code: 'inventory-changed', rotation: run.state.id, missing, extra }, run.env);
}

/** Journals what each readable target holds now: the decisions below read it from the state. */
async function observe(run: Run): Promise<void> {
  const holds: Record<string, string | null | 'unreadable'> = {};
  for (const [name, p] of run.preflight) {
    if (!isReady(p)) continue;
    holds[name] = p.current.kind === 'value' ? p.current.value.fingerprint : p.current.kind === 'absent' ? null : 'unreadable';
  }
  await run.emit({ step: 'observe', outcome: 'ok', holds });
}

/** `--old-key` / `--new-key`: each must be the key the journal names (by fingerprint). */
async function takeKeys(run: Run, r: ResumeOptions): Promise<void> {
  const s = run.state;
  if (r.oldKey) {
    const k = await r.oldKey.obtain();
    if (s.oldFingerprint && k.fingerprint !== s.oldFingerprint) {
      throw new Refusal({ code: 'wrong-old-key', source: r.oldKey.source, rotation: s.id, given: { hint: k.hint, fingerprint: k.fingerprint }, expected: s.oldFingerprint }, run.env, EXIT.usage);
    }
    run.keyring.add(k);
  }
  if (r.newKey) {
    const k = await r.newKey.obtain();
    // Another key is refused (it is not what the journal says was being written); unattended, the
    // rotation is undone instead (see newKeyUnavailable).
    if (k.fingerprint === s.newFingerprint) run.keyring.add(k);
    else if (!r.rollbackWhenNewKeyUnavailable && !r.rollback) {
      throw new Refusal({
        code: 'wrong-new-key',
        source: r.newKey.source,
        rotation: s.id,
        given: { hint: k.hint, fingerprint: k.fingerprint },
        expected: s.newFingerprint ? { hint: s.newHint ?? '', fingerprint: s.newFingerprint } : null,
        next: [next('resume', run.env, '--rollback')],
      }, run.env);
    }
  }
}

/**
 * Going forward needs the new key's value. Without it (no target holds it, no matching source),
 * a person is asked for it — or, unattended, the rotation is undone instead.
 */
async function newKeyUnavailable(run: Run, r: ResumeOptions): Promise<void> {
  const s = run.state;
  const nothingWritten = !anythingWritten(s);
  if (r.rollbackWhenNewKeyUnavailable || !s.newFingerprint || nothingWritten) {
    await run.emit({ step: 'decide', outcome: 'ok', goal: 'rollback', reason: 'requested' });
    return;
  }
  throw new Refusal({
    code: 'new-key-unavailable',
    rotation: s.id,
    expected: { hint: s.newHint ?? '', fingerprint: s.newFingerprint },
    next: [next('resume', run.env, '--new-key', 'SOURCE'), next('resume', run.env, '--rollback')],
  }, run.env);
}

/** Blocked targets that the next steps would have to touch (an untouched one does not stop a rollback). */
function blockedThatMatter(run: Run): string[] {
  const blocked = [...run.preflight].filter(([, p]) => !isReady(p)).map(([n]) => n);
  if (run.state.goal === 'forward') return blocked;
  const needed = new Set(toRestore(run));
  return blocked.filter((n) => needed.has(n));
}

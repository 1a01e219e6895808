import { toTargetError } from '../../core/errors.ts';
import { waitForDisuse } from '../../keys/openai-admin.ts';
import { RevocationRefused } from '../../keys/revocation-check.ts';
import { appendAudit } from '../../state/audit-log.ts';
import type { EndOutcome } from '../../state/journal.ts';
import { next, type KeyRef, type Notice } from '../outcome.ts';
import { PromptCancelled } from '../../core/errors.ts';
import type { Run } from '../run.ts';
import { finalizeAll } from './finalize.ts';

export interface RevocationResult {
  outcome: Extract<EndOutcome, 'awaiting-revocation' | 'completed'>;
  /** The operator cancelled the confirmation prompt (Ctrl-C): the rotation awaits revocation. */
  cancelled?: boolean;
}

export interface RevocationOptions {
  /** Stop at "awaiting revocation": the caller runs the revocation itself (emergency: after its review). */
  defer: boolean;
  /** `revoke.mode`. */
  mode: 'prompt' | 'openai-admin';
}

/** The environment's old key as the journal names it, or null when no target held a key. */
export function oldKeyOf(run: Run): KeyRef | null {
  const s = run.state;
  return s.oldFingerprint ? { hint: s.oldHint ?? '(hint unknown)', fingerprint: s.oldFingerprint } : null;
}

/**
 * The revocation step: reached only when every target is verified, its consumers included
 * (invariant 1; `verified-all` is journaled first). Prompt mode on a terminal asks the operator;
 * the admin mode revokes through the issuer's admin API once the old key shows no use; otherwise
 * the rotation awaits `keyrot revoke`.
 */
export async function revocationStep(run: Run, opts: RevocationOptions): Promise<RevocationResult> {
  await run.emit({ step: 'verified-all', outcome: 'ok', fingerprint: run.state.newFingerprint });
  const old = oldKeyOf(run);
  if (!old) return noOldKey(run);
  if (opts.defer) {
    run.notices.push({ code: 'revocation-next', old });
    return { outcome: 'awaiting-revocation' };
  }
  // Stopped (Ctrl-C, SIGTERM) once every target was verified: no revocation is attempted or asked
  // for; the rotation ends awaiting revocation and `keyrot revoke` finishes it.
  if (run.o.signal?.aborted) {
    run.notices.push({ code: 'awaiting-revocation', old, revokeAt: run.issuer.revokeAt, also: run.state.alsoRevoke, next: next('revoke', run.env) });
    return { outcome: 'awaiting-revocation' };
  }
  if (opts.mode === 'openai-admin') {
    if (await revokeThroughAdmin(run, old, run.o.clock.now())) return { outcome: 'completed' };
    return { outcome: 'awaiting-revocation' };
  }
  return promptRevocation(run, old);
}

function noOldKey(run: Run): Promise<RevocationResult> | RevocationResult {
  // No readable target held a key. Targets that held nothing: nothing to revoke. But a write-only
  // target did hold a key keyrot could not read: it is unknown, not absent, and still live.
  const unreadable = [...run.state.targets.values()].filter((t) => t.info.old === 'unreadable').map((t) => t.info.name);
  if (unreadable.length) {
    run.notices.push({ code: 'awaiting-revocation-unreadable', targets: unreadable, revokeAt: run.issuer.revokeAt, next: next('revoke', run.env) });
    return { outcome: 'awaiting-revocation' };
  }
  run.notices.push({ code: 'nothing-to-revoke' });
  return run.emit({ step: 'revoke', outcome: 'skipped', detail: 'no old key' }).then(() => ({ outcome: 'completed' as const }));
}

async function promptRevocation(run: Run, old: KeyRef): Promise<RevocationResult> {
  const o = run.o;
  const canAsk = o.interactive && !o.yes && o.confirmRevocation;
  // An emergency has no grace period, also when it is resumed.
  const grace = o.inventory.config.revoke.grace;
  if (canAsk && grace > 0 && run.state.mode !== 'emergency') {
    run.reporter.step('grace', `waiting ${Math.round(grace / 1000)}s before revocation (revoke.grace)`);
    const stoppedDuringGrace = await o.clock.sleep(grace, o.signal).then(
      () => false,
      (err: unknown) => {
        if (!o.signal?.aborted) throw err;
        return true;
      },
    );
    if (stoppedDuringGrace) {
      run.notices.push({ code: 'awaiting-revocation', old, revokeAt: run.issuer.revokeAt, also: run.state.alsoRevoke, next: next('revoke', run.env) });
      return { outcome: 'awaiting-revocation' };
    }
  }
  const awaiting: Notice = { code: 'awaiting-revocation', old, revokeAt: run.issuer.revokeAt, also: run.state.alsoRevoke, next: next('revoke', run.env) };
  if (!canAsk) {
    run.notices.push(awaiting);
    return { outcome: 'awaiting-revocation' };
  }
  let confirmed: boolean;
  try {
    confirmed = await o.confirmRevocation!({ oldHint: old.hint, oldFingerprint: old.fingerprint, revokeAt: run.issuer.revokeAt, env: run.env, also: run.state.alsoRevoke });
  } catch (err) {
    if (!(err instanceof PromptCancelled)) throw err;
    // Ctrl-C at the confirmation: every target holds the new key; the rotation awaits revocation.
    run.notices.push(awaiting);
    return { outcome: 'awaiting-revocation', cancelled: true };
  }
  if (!confirmed) {
    run.notices.push(awaiting);
    return { outcome: 'awaiting-revocation' };
  }
  await recordRevoked(run, old, 'operator confirmed revocation in the dashboard');
  run.notices.push({ code: 'revocation-recorded', old, also: run.state.alsoRevoke });
  await finalizeAll(run);
  return { outcome: 'completed' };
}

/** Journals and audits the old key's revocation (the one place a `key.revoked` entry is made). */
export async function recordRevoked(run: Run, old: KeyRef | null, how: string, details: Record<string, unknown> = {}): Promise<void> {
  await run.emit({ step: 'revoke', outcome: 'ok', fingerprint: old?.fingerprint, detail: details.revokedFirst ? 'revoked-first' : how });
  await appendAudit(run.o.state, {
    event: 'key.revoked',
    env: run.env,
    rotation: run.state.id,
    details: { key: old?.fingerprint ?? null, hint: old?.hint ?? null, also: run.state.alsoRevoke.map((a) => a.fingerprint), how, ...details },
  });
}

/**
 * revoke.mode openai-admin: wait until the old key shows no use since every target switched
 * (`since`; skipped in an emergency: the attacker keeps using it), then delete it through the
 * admin API, then finalize. Not revoked (still used, unknown id, API error) → a notice says why
 * and the rotation awaits revocation.
 */
export async function revokeThroughAdmin(run: Run, old: KeyRef, since: number): Promise<boolean> {
  const later = next('revoke', run.env);
  if (!run.issuer.admin) {
    run.notices.push({ code: 'admin-not-configured', next: later });
    return false;
  }
  const s = run.state;
  if (!s.oldKeyId && !s.oldServiceAccountId) {
    run.notices.push({ code: 'admin-key-not-found', old, project: run.o.inventory.config.key.admin?.project ?? '', revokeAt: run.issuer.revokeAt, next: later });
    return false;
  }
  try {
    const admin = await run.issuer.admin();
    if (s.mode !== 'emergency' && s.oldKeyId && !(await idleSince(run, admin, old, since))) return false;
    // The issuer checks these journal records against the admin API before deleting anything.
    const res = await admin.revoke({ keyId: s.oldKeyId ?? undefined, serviceAccountId: s.oldServiceAccountId ?? undefined, hint: old.hint, env: run.env });
    if (!res.revoked) {
      await run.emit({ step: 'revoke', outcome: 'failed', fingerprint: old.fingerprint, detail: res.detail });
      run.notices.push({ code: 'admin-refused', old, detail: res.detail, revokeAt: run.issuer.revokeAt, next: later });
      return false;
    }
    await recordRevoked(run, old, `revoked through the admin API: ${res.detail}`, { keyId: s.oldKeyId, alreadyGone: res.alreadyGone });
    run.notices.push({ code: 'revoked-by-admin', old, alreadyGone: res.alreadyGone, also: s.alsoRevoke, revokeAt: run.issuer.revokeAt, issuer: run.issuer.title });
    await finalizeAll(run);
    return true;
  } catch (err) {
    const e = toTargetError(err);
    await run.emit({ step: 'revoke', outcome: 'failed', fingerprint: old.fingerprint, detail: e.message });
    // A refusal (the records do not check out) is not an API failure: trying again changes nothing.
    if (err instanceof RevocationRefused) run.notices.push({ code: 'admin-refused', old, detail: e.message, revokeAt: run.issuer.revokeAt, next: later });
    else run.notices.push({ code: 'admin-failed', error: e.message, issuer: run.issuer.title, next: later });
    return false;
  }
}

async function idleSince(run: Run, admin: Awaited<ReturnType<NonNullable<Run['issuer']['admin']>>>, old: KeyRef, since: number): Promise<boolean> {
  const d = run.o.inventory.config.revoke.disuse;
  run.reporter.step('disuse', `waiting until ${old.hint} shows no use since the switch (up to ${Math.round(d.limit / 60_000)} min)`);
  const idle = await waitForDisuse(admin, {
    keyId: run.state.oldKeyId!,
    since,
    marginMs: d.margin,
    limitMs: d.limit,
    pollMs: d.poll,
    clock: run.o.clock,
    signal: run.o.signal,
  });
  if (idle.idle) return true;
  await run.emit({ step: 'revoke', outcome: 'skipped', fingerprint: old.fingerprint, detail: `still in use: ${idle.detail}` });
  run.notices.push({ code: 'still-in-use', old, lastUsedAt: idle.lastUsedAt, places: await placesHolding(run, old), next: next('revoke', run.env) });
  return false;
}

/** Where the old key is still held, when its value is at hand (read at preflight) and the caller can search. */
async function placesHolding(run: Run, old: KeyRef): Promise<string[]> {
  const value = run.keyring.get(old.fingerprint);
  if (!value || !run.o.findKey) return [];
  run.reporter.step('discover', `looking for where ${old.hint} is still held`);
  return run.o.findKey(value).catch(() => []);
}

import { randomBytes } from 'node:crypto';
import { EXIT, toTargetError } from '../core/errors.ts';
import { Secret } from '../core/secret.ts';
import type { MintedKey } from '../keys/openai-admin.ts';
import { audit, drive } from '../machine/drive.ts';
import { deleteMintedKey } from '../machine/minted.ts';
import { next, Refusal, type KeyRef, type Notice, type RefusalReason, type RotationReport } from '../machine/outcome.ts';
import { isReady } from '../machine/preflight.ts';
import { Run, type EngineOptions } from '../machine/run.ts';
import { latestStanding, rotationsOf, type RotationState } from '../machine/state.ts';
import { recordRevoked } from '../machine/steps/revocation.ts';
import { failpoint } from '../runtime/failpoints.ts';
import { appendAudit } from '../state/audit-log.ts';
import { withRetry } from '../runtime/retry.ts';
import { newRotationId, type AlsoRevoke, type MintedIds, type TargetStartInfo } from '../state/journal.ts';
import { observedKeys } from './observe.ts';

/** What a key source produced: the key, and its ids when keyrot minted it. */
export type ObtainedKey = Secret | MintedKey;

export interface RotateOptions {
  mode: 'rotate' | 'emergency';
  /** Key source as written (`stdin`, `env:NEW_KEY`...): journaled, never the value. */
  source: string;
  /** Obtains the new key; `openai-admin` mints one (its name carries the env and the rotation id). */
  obtainKey: (ctx: { rotationId: string; env: string }) => Promise<ObtainedKey>;
  /**
   * emergency --revoke-first: called after preflight, before the new key is obtained, with the old
   * key found in the targets; resolves true once the old key is revoked.
   */
  revokeFirst?: (old: Secret | null) => Promise<boolean>;
  /** Called once the old key is known (after preflight): notices it returns join the report. */
  inspectOldKey?: (old: Secret | null) => Promise<Notice[]>;
  /** End at "awaiting revocation" after verification; the caller runs `revoke()` when it is ready. */
  deferRevocation?: boolean;
}

/** `keyrot rotate` / `keyrot emergency`: create the rotation, then drive it like a resume would. */
export async function rotate(o: EngineOptions, r: RotateOptions): Promise<RotationReport> {
  const run = new Run(o);
  const id = newRotationId(o.clock.now(), () => randomBytes(4).toString('hex'));
  await run.acquire(r.mode, id);
  try {
    const carried = await checkNoRotationInTheWay(run, r.mode);
    await run.setupTargets();
    const blocked = [...run.preflight].filter(([, p]) => !isReady(p)).map(([n]) => n);
    if (blocked.length) return await preflightRefused(run, blocked);

    const observed = observedKeys(run);
    const also = retiredAlongside(observed.old, observed.distinct, carried.also);
    const notices: Notice[] = [...carried.notices];
    if (observed.distinct.length > 1) {
      notices.push({ code: 'drift', fingerprints: observed.distinct.map((d) => d.key.fingerprint) });
      o.reporter.warn(`drift: targets held ${observed.distinct.length} different keys before this rotation; all receive the new key`);
    }
    if (r.inspectOldKey) notices.push(...(await r.inspectOldKey(observed.old)));
    const revokedFirst = r.revokeFirst ? await revokeFirst(run, r, observed.old) : false;

    const { key, minted, liveDetail } = await obtainAndCheck(run, r, id, observed.values);
    const oldIds = observed.old ? await findOldKeyIds(run, observed.old, r.mode) : { keyId: null, serviceAccountId: null };
    run.open(id);
    await run.emit({
      step: 'start',
      outcome: 'ok',
      mode: r.mode,
      source: r.source,
      oldFingerprint: observed.old?.fingerprint ?? null,
      oldHint: observed.old?.hint ?? null,
      oldKeyId: oldIds.keyId,
      oldServiceAccountId: oldIds.serviceAccountId,
      alsoRevoke: also,
      targets: startInfo(run),
      newFingerprint: key.fingerprint,
      newHint: key.hint,
      minted,
      revokedFirst,
    });
    failpoint('after-start');
    if (revokedFirst) await recordRevoked(run, observed.old, 'revoked first (emergency --revoke-first)', { revokedFirst: true });
    await run.emit({ step: 'live-check', outcome: liveDetail.startsWith('skipped') ? 'skipped' : 'ok', detail: liveDetail });
    await audit(run, r.mode === 'emergency' ? 'rotation.emergency-started' : 'rotation.started', {
      old: observed.old?.fingerprint ?? null,
      new: key.fingerprint,
      source: r.source,
      targets: run.state.targets.size,
    });
    run.notices.push(...notices);
    return await drive(run, { deferRevocation: r.deferRevocation });
  } finally {
    await run.release();
  }
}

/**
 * An interrupted rotation must be finished or undone first; a revocation still pending blocks a
 * routine rotation (an emergency carries its old key along instead).
 */
async function checkNoRotationInTheWay(run: Run, mode: RotateOptions['mode']): Promise<{ also: AlsoRevoke[]; notices: Notice[] }> {
  const all = await rotationsOf(run.o.state, run.env);
  const last = all[all.length - 1];
  if (last && last.outcome === undefined) {
    throw new Refusal({ code: 'interrupted-rotation', rotation: last.id, next: [next('resume', run.env), next('resume', run.env, '--rollback')] }, run.env);
  }
  const pending = latestStanding(all);
  if (pending?.outcome !== 'awaiting-revocation') return { also: [], notices: [] };
  const pendingOld = keyRef(pending.oldHint, pending.oldFingerprint);
  if (mode === 'rotate') throw new Refusal({ code: 'pending-revocation', rotation: pending.id, old: pendingOld, next: next('revoke', run.env) }, run.env);
  if (!pendingOld) return { also: pending.alsoRevoke, notices: [] };
  return {
    also: [{ hint: pendingOld.hint, fingerprint: pendingOld.fingerprint, why: `rotation ${pending.id} still awaited its revocation` }, ...pending.alsoRevoke],
    notices: [{ code: 'carried-revocation', rotation: pending.id, old: pendingOld }],
  };
}

function keyRef(hint: string | null | undefined, fingerprint: string | null | undefined): KeyRef | null {
  return fingerprint ? { hint: hint ?? '(hint unknown)', fingerprint } : null;
}

async function preflightRefused(run: Run, blocked: string[]): Promise<RotationReport> {
  const summary = [...run.preflight].map(([name, p]) => ({ name, status: p.status, reason: p.status === 'blocked' ? p.reason : undefined }));
  await appendAudit(run.o.state, {
    event: 'rotation.refused',
    env: run.env,
    details: { reason: 'preflight', targets: summary.filter((p) => p.status !== 'ready').map((p) => ({ target: p.name, reason: p.reason })) },
  });
  return {
    env: run.env,
    outcome: 'refused',
    exitCode: EXIT.failed,
    targets: run.live.map((lt) => {
      const p = run.preflight.get(lt.spec.name);
      const cur = p?.current;
      return {
        name: lt.spec.name,
        type: lt.spec.type,
        location: lt.target?.location ?? lt.spec.definition.describe(lt.spec.config),
        holds: cur?.kind === 'value' ? 'old' : cur?.kind === 'absent' ? 'absent' : p?.status === 'ready' ? 'old' : 'unknown',
        fingerprint: cur?.kind === 'value' ? cur.value.fingerprint : cur?.kind === 'absent' ? null : undefined,
        error: p?.status === 'blocked' ? p.reason : undefined,
      };
    }),
    notices: [{ code: 'preflight-blocked', blocked, total: run.preflight.size, next: next('plan', run.env) }],
    preflight: summary,
  };
}

/** Every key this rotation retires besides the main old key must be revoked too. */
function retiredAlongside(old: Secret | null, distinct: Array<{ key: Secret; heldBy: string }>, carried: AlsoRevoke[]): AlsoRevoke[] {
  const also = new Map<string, AlsoRevoke>();
  for (const { key, heldBy } of distinct) {
    if (key.fingerprint !== old?.fingerprint && !also.has(key.fingerprint)) also.set(key.fingerprint, { hint: key.hint, fingerprint: key.fingerprint, why: `held by target ${heldBy} (drift)` });
  }
  for (const c of carried) if (c.fingerprint !== old?.fingerprint && !also.has(c.fingerprint)) also.set(c.fingerprint, c);
  return [...also.values()];
}

async function revokeFirst(run: Run, r: RotateOptions, old: Secret | null): Promise<boolean> {
  if (!(await r.revokeFirst!(old))) throw new Refusal({ code: 'revoke-first-not-confirmed' }, run.env);
  return true;
}

function startInfo(run: Run): TargetStartInfo[] {
  return run.live.map((lt) => {
    const p = run.preflight.get(lt.spec.name);
    const cur = p?.current;
    return {
      name: lt.spec.name,
      type: lt.spec.type,
      location: lt.target!.location,
      old: cur?.kind === 'value' ? cur.value.fingerprint : cur?.kind === 'absent' ? null : 'unreadable',
      readBack: cur?.kind !== 'unreadable',
    };
  });
}

/**
 * The new key, obtained and checked before anything is written: format, not a key the targets
 * already hold, and the issuer's live check. A refused key that keyrot minted is deleted again.
 */
async function obtainAndCheck(run: Run, r: RotateOptions, id: string, held: Secret[]): Promise<{ key: Secret; minted?: MintedIds; liveDetail: string }> {
  run.reporter.step('key', `from ${r.source}`);
  const obtained = await r.obtainKey({ rotationId: id, env: run.env });
  const key = obtained instanceof Secret ? obtained : obtained.key;
  const minted = obtained instanceof Secret ? undefined : { keyId: obtained.keyId, serviceAccountId: obtained.serviceAccountId, expiresAt: obtained.expiresAt };
  const refuse = async (reason: RefusalReason): Promise<never> => {
    if (minted) (reason as { mintedCleanup?: Notice }).mintedCleanup = await deleteMintedKey(run.issuer, minted, { hint: key.hint, fingerprint: key.fingerprint }, run.env);
    throw new Refusal(reason, run.env);
  };
  const fmt = run.issuer.checkFormat(key);
  if (!fmt.ok) return refuse({ code: 'key-format', reason: fmt.reason });
  if (fmt.warning) run.reporter.warn(fmt.warning);
  if (held.some((v) => v.equals(key))) return refuse({ code: 'same-key', key: { hint: key.hint, fingerprint: key.fingerprint } });
  run.keyring.add(key);
  let liveDetail = 'skipped (key.verify: false)';
  if (!run.issuer.liveCheck) liveDetail = `skipped (kind: ${run.issuer.kind} has no live check)`;
  else if (run.o.env.key.verify) {
    run.reporter.step('live-check', 'checking the new key with its issuer');
    try {
      const res = await withRetry(() => run.issuer.liveCheck!(key, run.o.signal), { clock: run.o.clock, policy: { attempts: 3, ...run.o.retry }, random: run.o.random, signal: run.o.signal });
      liveDetail = res.detail;
      if (res.status === 'restricted') run.reporter.warn(res.detail);
    } catch (err) {
      const e = toTargetError(err);
      return refuse(e.kind === 'auth' ? { code: 'key-rejected', error: e.message } : { code: 'live-check-failed', error: e.message });
    }
  }
  return { key, minted, liveDetail };
}

/**
 * The old key's ids at the issuer: minted by an earlier keyrot rotation (its journal has them),
 * or looked up through the admin API while the value is in memory. Only when the admin API will
 * be used (revoke.mode openai-admin, or an emergency's usage review). Unknown → nulls.
 */
async function findOldKeyIds(run: Run, old: Secret, mode: RotateOptions['mode']): Promise<{ keyId: string | null; serviceAccountId: string | null }> {
  const none = { keyId: null, serviceAccountId: null };
  if (!run.issuer.admin || (run.o.inventory.config.revoke.mode !== 'openai-admin' && mode !== 'emergency')) return none;
  const earlier = (await rotationsOf(run.o.state, run.env)).find((x: RotationState) => x.newFingerprint === old.fingerprint && x.minted);
  if (earlier?.minted) return { keyId: earlier.minted.keyId, serviceAccountId: earlier.minted.serviceAccountId };
  try {
    const rec = await (await run.issuer.admin()).find({ key: old });
    // Looked up, not minted: only the key id is recorded, so revocation checks it as a looked-up key
    // (it must still match the hint) and never takes the account for one keyrot minted.
    return rec ? { keyId: rec.id, serviceAccountId: null } : none;
  } catch (err) {
    run.reporter.warn(`could not look the old key up through the admin API: ${toTargetError(err).message}`);
    return none;
  }
}

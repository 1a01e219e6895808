import { randomBytes } from 'node:crypto';
import { appendAudit } from '../state/audit-log.ts';
import { redact } from '../core/redact.ts';
import { checkFormat, liveCheck, openaiEndpoint, OPENAI_KEYS_PAGE } from '../keys/kinds.ts';
import { Secret } from '../core/secret.ts';
import type { PreflightResult, Receipt, Target, VerifyMethod } from '../targets/types.ts';
import { Limiter } from '../runtime/concurrency.ts';
import { EXIT, ExitError, PromptCancelled, TargetError, toTargetError, type ExitCode } from '../core/errors.ts';
import {
  Journal,
  latestRotation,
  latestStanding,
  newRotationId,
  readJournal,
  replay,
  type AlsoRevoke,
  type EndOutcome,
  type RotationState,
  type TargetStartInfo,
} from '../state/journal.ts';
import type { Lock } from '../state/lock.ts';
import { stateOf, type StateRef } from '../state/store.ts';
import { failpoint } from '../runtime/failpoints.ts';
import type { KeyIssuer, MintedKey } from '../keys/openai-admin.ts';
import { RevocationRefused } from '../keys/revocation-check.ts';
import { withRetry, type RetryPolicy } from '../runtime/retry.ts';
import { closeAll, createTargets, preflightAll, removeStrays, type LiveTarget, type RuntimeContext } from './targets.ts';

/** Progress of a rotation, for the live display (TTY) or plain lines. */
export type TargetPhase =
  | 'preflight'
  | 'ready'
  | 'writing'
  | 'written'
  | 'verifying'
  | 'redeploying'
  | 'verified'
  | 'restoring'
  | 'restored'
  | 'failed'
  | 'finalized';

export interface Reporter {
  step(name: string, detail?: string): void;
  target(name: string, phase: TargetPhase, detail?: string): void;
  info(message: string): void;
  warn(message: string): void;
}

export const silentReporter: Reporter = { step() {}, target() {}, info() {}, warn() {} };

/** What the operator is asked at the revocation step (TTY, prompt mode). */
export interface RevocationPrompt {
  oldHint: string;
  oldFingerprint: string;
  where: string;
  env: string;
  /** Other keys to revoke at the same time (drift, an earlier pending revocation). */
  also?: AlsoRevoke[];
}

/** " Also revoke sk-...AB12 (fp, held by target x (drift))." — or '' when there is nothing else. */
export function alsoRevokeText(also: AlsoRevoke[]): string {
  return also.length ? ` Also revoke ${also.map((a) => `${a.hint} (${a.fingerprint}, ${a.why})`).join(', ')}.` : '';
}

export interface EngineOptions extends RuntimeContext {
  /** Where the journal, audit log and locks live (a state directory path, or a store). */
  state: StateRef;
  reporter: Reporter;
  retry?: Partial<RetryPolicy>;
  random?: () => number;
  signal?: AbortSignal;
  /** An operator is at a terminal (revocation may be confirmed interactively). */
  interactive: boolean;
  /** --yes: answer yes to confirmations (never invents a key or a revocation). */
  yes: boolean;
  /** Asks the operator to confirm they revoked the old key; only called when interactive and not --yes. */
  confirmRevocation?: (p: RevocationPrompt) => Promise<boolean>;
  /** The OpenAI Admin API (key.admin), created on first use: minting, revocation, usage. */
  issuer?: () => Promise<KeyIssuer>;
}

export type Holds = 'new' | 'old' | 'absent' | 'unknown' | 'other';

export interface TargetReport {
  name: string;
  type: string;
  location: string;
  holds: Holds;
  /** Fingerprint of what it holds, when known. */
  fingerprint?: string | null;
  verifiedBy?: VerifyMethod;
  detail?: string;
  error?: string;
}

export interface RotationReport {
  rotation?: string;
  env: string;
  outcome: EndOutcome | 'interrupted' | 'refused';
  exitCode: ExitCode;
  old?: { hint: string; fingerprint: string } | null;
  new?: { hint: string; fingerprint: string } | null;
  /** The old key's id at OpenAI, when the Admin API found it (usage review, revocation). */
  oldKeyId?: string | null;
  /** Other keys retired with the old key, to revoke too. */
  alsoRevoke?: AlsoRevoke[];
  targets: TargetReport[];
  messages: string[];
  preflight?: Array<{ name: string; status: string; reason?: string }>;
}

/** The consensus of readable targets: the value most of them hold (ties: the first). */
function consensus(values: Array<Secret | null>): Secret | null {
  const counts = new Map<string, { v: Secret; n: number }>();
  for (const v of values) {
    if (!v) continue;
    const c = counts.get(v.fingerprint);
    if (c) c.n++;
    else counts.set(v.fingerprint, { v, n: 1 });
  }
  let best: { v: Secret; n: number } | undefined;
  for (const c of counts.values()) if (!best || c.n > best.n) best = c;
  return best?.v ?? null;
}

function randomSuffix(): string {
  return randomBytes(4).toString('hex');
}

/**
 * One run of the step machine over an environment: preflight → obtain key → live check →
 * write all → verify all (+ redeploy) → revocation step → finalize. Every outcome is journaled
 * before the next step; any write or verify failure restores every touched target and the
 * revocation step is never reached.
 */
export class RotationRun {
  readonly o: EngineOptions;
  readonly limiter: Limiter;
  targets: LiveTarget[] = [];
  journal!: Journal;
  rotationId = '';
  /** What each target held before this rotation, in memory only. undefined = unknown (write-only). */
  readonly previous = new Map<string, Secret | null | undefined>();
  /** The environment's old key (consensus of readable targets). */
  oldKey: Secret | null = null;
  /** Hint and fingerprint of the old key, known from the journal even when no target holds its value any more. */
  oldInfo: { hint: string; fingerprint: string } | null = null;
  /** The old key's ids at OpenAI, when known (what revoke.mode openai-admin deletes). */
  oldIds: { keyId: string | null; serviceAccountId: string | null } = { keyId: null, serviceAccountId: null };
  /** The new key's ids when keyrot minted it through the Admin API. */
  minted: { keyId: string; serviceAccountId: string; expiresAt: number | null } | null = null;
  mode: 'rotate' | 'emergency' = 'rotate';
  /** Other keys to revoke with the old key (drift, an earlier pending revocation). */
  alsoRevoke: AlsoRevoke[] = [];
  /** Stop at "awaiting revocation": the caller runs the revocation step itself (emergency: after its review). */
  deferRevocation = false;
  newKey: Secret | null = null;
  readonly receipts = new Map<string, Receipt | undefined>();
  readonly written = new Set<string>();
  /** Targets whose write failed midway: they may hold either key. */
  readonly touched = new Set<string>();
  readonly verified = new Map<string, VerifyMethod>();
  readonly errors = new Map<string, string>();
  readonly holds = new Map<string, Holds>();
  lock?: Lock;

  constructor(o: EngineOptions) {
    this.o = o;
    const caps = new Map(o.env.targets.map((t) => [t.type, t.definition.concurrency]));
    this.limiter = new Limiter((p) => caps.get(p) ?? 4);
  }

  get env(): string {
    return this.o.env.name;
  }

  private byName(name: string): Target {
    const t = this.targets.find((x) => x.spec.name === name)?.target;
    if (!t) throw new ExitError(EXIT.failed, `target "${name}" is not in the inventory any more`);
    return t;
  }

  /** The new key's fingerprint when the value itself is not at hand (revoke, after the rotation). */
  newFingerprint = '';

  private op(extra?: Partial<{ fingerprint: string }>) {
    return {
      rotationId: this.rotationId,
      fingerprint: extra?.fingerprint ?? this.newKey?.fingerprint ?? this.newFingerprint,
      signal: this.o.signal,
    };
  }

  retrying<T>(name: string, what: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      clock: this.o.clock,
      policy: this.o.retry,
      random: this.o.random,
      signal: this.o.signal,
      onRetry: ({ attempt, delayMs, error }) =>
        this.o.reporter.target(name, what === 'write' ? 'writing' : 'verifying', `retry ${attempt} in ${Math.round(delayMs)}ms: ${error.message}`),
    });
  }

  async acquire(command: string): Promise<void> {
    this.lock = await (await stateOf(this.o.state)).acquireLock(this.env, { command, rotation: this.rotationId || undefined });
  }

  async release(): Promise<void> {
    await this.lock?.release();
    await closeAll(this.targets);
  }

  async setupTargets(): Promise<Map<string, PreflightResult>> {
    this.o.reporter.step('preflight', `${this.o.env.targets.length} targets`);
    this.targets = await createTargets(this.o);
    // Under the lock, so no write of this environment is live: temp files a crash left go first.
    const strays = await removeStrays(this.targets);
    for (const m of strays.removed) this.o.reporter.info(m);
    for (const m of strays.failed) this.o.reporter.warn(m);
    for (const t of this.targets) this.o.reporter.target(t.spec.name, 'preflight');
    const pf = await preflightAll(this.targets, this.o.signal);
    for (const [name, r] of pf) {
      this.o.reporter.target(name, r.status === 'error' ? 'failed' : 'ready', r.status === 'error' ? r.reason : undefined);
      for (const w of r.warnings ?? []) this.o.reporter.warn(`${name}: ${w}`);
    }
    return pf;
  }

  /** Writes the new key to `names` concurrently (per-provider caps); every outcome journaled. */
  async writeAll(names: string[]): Promise<boolean> {
    const key = this.newKey!;
    this.o.reporter.step('write', `${names.length} targets`);
    const results = await Promise.all(
      names.map(async (name) => {
        const t = this.byName(name);
        return this.limiter.run(t.id, t.lockKey, async () => {
          this.o.reporter.target(name, 'writing');
          this.touched.add(name);
          try {
            const receipt = await this.retrying(name, 'write', () => t.write(key, this.op()));
            this.receipts.set(name, receipt);
            this.written.add(name);
            this.holds.set(name, 'new');
            await this.journal.append({ step: 'write', target: name, outcome: 'ok', fingerprint: key.fingerprint, receipt });
            failpoint(`after-write:${name}`);
            this.o.reporter.target(name, 'written');
            return true;
          } catch (err) {
            const e = toTargetError(err, name, 'write');
            this.errors.set(name, e.message);
            this.holds.set(name, 'unknown');
            await this.journal.append({ step: 'write', target: name, outcome: 'failed', fingerprint: key.fingerprint, detail: e.message });
            this.o.reporter.target(name, 'failed', `write: ${e.message}`);
            return false;
          }
        });
      }),
    );
    return results.every(Boolean);
  }

  /** Proves every target holds the new key (read back or metadata), then redeploys where needed. */
  async verifyAll(names: string[]): Promise<boolean> {
    const key = this.newKey!;
    this.o.reporter.step('verify', `${names.length} targets`);
    const results = await Promise.all(
      names.map(async (name) => {
        const t = this.byName(name);
        return this.limiter.run(t.id, undefined, async () => {
          this.o.reporter.target(name, 'verifying');
          try {
            const v = await this.retrying(name, 'verify', () => t.verify(key, this.op(), this.receipts.get(name)));
            await this.journal.append({ step: 'verify', target: name, outcome: 'ok', fingerprint: key.fingerprint, method: v.method, detail: v.detail });
            failpoint(`after-verify:${name}`);
            let method = v.method;
            if (t.redeploy && t.capabilities.redeploy) {
              this.o.reporter.target(name, 'redeploying');
              const r = await t.redeploy(this.op(), this.receipts.get(name));
              await this.journal.append({ step: 'redeploy', target: name, outcome: 'ok', method: r.method, detail: r.detail });
              if (r.method === 'redeploy' && v.method !== 'read-back') method = 'redeploy';
            }
            this.verified.set(name, method);
            this.o.reporter.target(name, 'verified', method);
            return true;
          } catch (err) {
            const e = toTargetError(err, name, 'verify');
            this.errors.set(name, e.message);
            await this.journal.append({ step: 'verify', target: name, outcome: 'failed', fingerprint: key.fingerprint, detail: e.message });
            this.o.reporter.target(name, 'failed', `verify: ${e.message}`);
            return false;
          }
        });
      }),
    );
    return results.every(Boolean);
  }

  /** The value a target should go back to: its own, or the environment's old key for write-only ones. */
  previousFor(name: string): Secret | null | undefined {
    const p = this.previous.get(name);
    if (p !== undefined) return p;
    return this.oldKey ?? undefined;
  }

  /**
   * Restores every touched target to what it held. A target whose old value is unknown is not
   * guessed at: it is reported, and the rotation stays resumable.
   */
  async rollback(names: string[]): Promise<boolean> {
    if (names.length === 0) return true;
    this.o.reporter.step('restore', `${names.length} targets back to the old key`);
    const results = await Promise.all(
      names.map(async (name) => {
        const t = this.byName(name);
        const prev = this.previousFor(name);
        return this.limiter.run(t.id, t.lockKey, async () => {
          this.o.reporter.target(name, 'restoring');
          if (prev === undefined) {
            // A write-only target and no readable target knew the old key: it cannot be put back.
            // Rather than leave whatever a failed write stored, make sure it holds the new key
            // (valid too: the old key is not revoked), and leave the rotation resumable.
            let msg = 'cannot restore: the old key is not known (no target holds it any more, and keyrot never stores it)';
            if (this.newKey) {
              let rolledForward = false;
              for (let attempt = 0; attempt < 3 && !rolledForward; attempt++) {
                try {
                  const receipt = await withRetry(() => t.write(this.newKey!, this.op()), {
                    clock: this.o.clock,
                    policy: this.o.retry,
                    random: this.o.random,
                    signal: this.o.signal,
                  });
                  await t.verify(this.newKey, this.op(), receipt);
                  this.receipts.set(name, receipt);
                  this.holds.set(name, 'new');
                  await this.journal.append({ step: 'write', target: name, outcome: 'ok', fingerprint: this.newKey.fingerprint, receipt });
                  rolledForward = true;
                } catch {
                  // try again, bounded
                }
              }
              if (!rolledForward) {
                // The failed re-writes may have left anything there: say so, do not claim the new key.
                this.holds.set(name, 'unknown');
                this.verified.delete(name);
              }
              msg += rolledForward ? '; it holds the new key' : ' and re-writing the new key failed too';
            }
            msg += '; run `keyrot resume` to finish, or `keyrot resume --rollback --old-key SOURCE` to undo';
            this.errors.set(name, msg);
            await this.journal.append({ step: 'restore', target: name, outcome: 'failed', detail: msg });
            this.o.reporter.target(name, 'failed', msg);
            return false;
          }
          try {
            await withRetry(() => t.restore(prev, this.op(), this.receipts.get(name)), {
              clock: this.o.clock,
              policy: this.o.retry,
              random: this.o.random,
              signal: this.o.signal,
            });
            this.written.delete(name);
            this.verified.delete(name);
            this.holds.set(name, prev ? 'old' : 'absent');
            await this.journal.append({ step: 'restore', target: name, outcome: 'ok', fingerprint: prev?.fingerprint });
            this.o.reporter.target(name, 'restored');
            return true;
          } catch (err) {
            const e = toTargetError(err, name, 'restore');
            const msg = `restore failed: ${e.message}`;
            this.errors.set(name, msg);
            this.holds.set(name, 'unknown');
            await this.journal.append({ step: 'restore', target: name, outcome: 'failed', detail: e.message });
            this.o.reporter.target(name, 'failed', msg);
            return false;
          }
        });
      }),
    );
    return results.every(Boolean);
  }

  async finalizeAll(): Promise<string[]> {
    const problems: string[] = [];
    const names = this.targets.filter((t) => t.target?.finalize && t.target.capabilities.finalize).map((t) => t.spec.name);
    if (!names.length) return problems;
    this.o.reporter.step('finalize', `${names.length} targets`);
    await Promise.all(
      names.map(async (name) => {
        const t = this.byName(name);
        try {
          await withRetry(() => t.finalize!(this.op(), this.receipts.get(name)), { clock: this.o.clock, policy: this.o.retry, random: this.o.random });
          await this.journal.append({ step: 'finalize', target: name, outcome: 'ok' });
          this.o.reporter.target(name, 'finalized');
        } catch (err) {
          const e = toTargetError(err, name, 'finalize');
          problems.push(`${name}: ${e.message}`);
          await this.journal.append({ step: 'finalize', target: name, outcome: 'failed', detail: e.message });
          this.o.reporter.warn(`${name}: finalize failed (the old key is revoked; clean up by hand or run \`keyrot revoke\` again): ${e.message}`);
        }
      }),
    );
    return problems;
  }

  report(outcome: RotationReport['outcome'], exitCode: ExitCode, messages: string[]): RotationReport {
    const oldFp = this.oldKey?.fingerprint ?? this.oldInfo?.fingerprint ?? null;
    const newFp = this.newKey?.fingerprint ?? (this.newFingerprint || null);
    return {
      rotation: this.rotationId || undefined,
      env: this.env,
      outcome,
      exitCode,
      old: this.oldKey ? { hint: this.oldKey.hint, fingerprint: this.oldKey.fingerprint } : this.oldInfo,
      oldKeyId: this.oldIds.keyId,
      alsoRevoke: this.alsoRevoke,
      new: this.newKey ? { hint: this.newKey.hint, fingerprint: this.newKey.fingerprint } : null,
      messages: messages.map(redact),
      targets: this.targets.map((lt) => {
        const name = lt.spec.name;
        const holds = this.holds.get(name) ?? 'old';
        const prev = this.previous.get(name);
        return {
          name,
          type: lt.spec.type,
          location: lt.target?.location ?? lt.spec.definition.describe(lt.spec.config),
          holds: holds === 'old' && prev === null ? 'absent' : holds,
          fingerprint: holds === 'new' ? newFp : holds === 'old' ? (prev ? prev.fingerprint : prev === null ? null : oldFp) : undefined,
          verifiedBy: this.verified.get(name),
          error: this.errors.get(name),
        };
      }),
    };
  }

  /**
   * The revocation step: reached only when every target is verified (invariant 1).
   * Prompt mode on a terminal asks the operator; otherwise the rotation awaits `keyrot revoke`.
   */
  async revocationStep(kind: 'openai' | 'generic', mode: 'prompt' | 'openai-admin'): Promise<{ outcome: EndOutcome; messages: string[] }> {
    const all = this.targets.map((t) => t.spec.name);
    const unverified = all.filter((n) => !this.verified.has(n));
    if (unverified.length) {
      // Defensive: callers never get here with unverified targets.
      throw new TargetError(`internal: revocation reached with unverified targets ${unverified.join(', ')}`, { kind: 'invalid' });
    }
    await this.journal.append({ step: 'verified-all', outcome: 'ok', fingerprint: this.newKey!.fingerprint });
    const messages: string[] = [];
    const old = this.oldKey ?? this.oldInfo;
    const grace = this.o.inventory.config.revoke.grace;
    const where = kind === 'openai' ? `the OpenAI dashboard, API keys page: ${OPENAI_KEYS_PAGE}` : 'the issuing provider\'s console';
    if (!old) {
      // No readable target held a key. Targets that held nothing: nothing to revoke. But a write-only
      // target did hold a key keyrot could not read: it is unknown, not absent, and still live.
      const unreadable = this.targets.map((t) => t.spec.name).filter((n) => this.previous.has(n) && this.previous.get(n) === undefined);
      if (unreadable.length) {
        messages.push(
          `Every target holds the new key. keyrot could not read the key they held before (write-only: ${unreadable.join(', ')}): revoke that key in ${where}, then run: keyrot revoke -e ${this.env}`,
        );
        return { outcome: 'awaiting-revocation', messages };
      }
      messages.push('No old key was found in any target (they held none): nothing to revoke.');
      await this.journal.append({ step: 'revoke', outcome: 'skipped', detail: 'no old key' });
      return { outcome: 'completed', messages };
    }
    if (this.deferRevocation) {
      messages.push(`Every target holds the new key; the old key ${old.hint} (${old.fingerprint}) is revoked next.`);
      return { outcome: 'awaiting-revocation', messages };
    }
    // Stopped (Ctrl-C, SIGTERM) once every target was verified: no revocation is attempted or asked
    // for; the rotation ends awaiting revocation and `keyrot revoke` finishes it (cli/interrupt.ts).
    const stopped = () => this.o.signal?.aborted === true;
    if (mode === 'openai-admin' && !stopped()) {
      const r = await this.revokeThroughAdmin(old, this.o.clock.now());
      if (r.revoked) {
        const problems = await this.finalizeAll();
        return { outcome: 'completed', messages: [...messages, r.message, ...problems] };
      }
      messages.push(r.message);
      return { outcome: 'awaiting-revocation', messages };
    }
    // An emergency has no grace period (PRODUCT.md), also when it is resumed.
    if (grace > 0 && this.mode !== 'emergency' && this.o.interactive && !this.o.yes && mode === 'prompt') {
      this.o.reporter.step('grace', `waiting ${Math.round(grace / 1000)}s before revocation (revoke.grace)`);
      await this.o.clock.sleep(grace, this.o.signal).catch((err: unknown) => {
        if (!stopped()) throw err;
      });
    }
    if (mode === 'prompt' && this.o.interactive && !this.o.yes && this.o.confirmRevocation && !stopped()) {
      // A cancelled confirmation (Ctrl-C, Ctrl-D) is "not confirmed": the end is journaled as
      // awaiting revocation like a "no", then the command exits 130 (test/cli/tty.test.ts).
      const ok = await this.o.confirmRevocation({ oldHint: old.hint, oldFingerprint: old.fingerprint, where, env: this.env, also: this.alsoRevoke }).catch((err: unknown) => {
        if (err instanceof PromptCancelled) return false;
        throw err;
      });
      if (ok) {
        await this.journal.append({ step: 'revoke', outcome: 'ok', fingerprint: old.fingerprint, detail: 'confirmed by the operator' });
        await appendAudit(this.o.state, {
          event: 'key.revoked',
          env: this.env,
          rotation: this.rotationId,
          details: { key: old.fingerprint, hint: old.hint, also: this.alsoRevoke.map((a) => a.fingerprint), how: 'operator confirmed revocation in the dashboard' },
        });
        const problems = await this.finalizeAll();
        messages.push(`Old key ${old.hint} (${old.fingerprint}) recorded as revoked.`, ...problems);
        return { outcome: 'completed', messages };
      }
    }
    messages.push(
      `Every target holds the new key. Revoke the old key ${old.hint} (fingerprint ${old.fingerprint}) in ${where}, then run: keyrot revoke -e ${this.env}.${alsoRevokeText(this.alsoRevoke)}`,
    );
    return { outcome: 'awaiting-revocation', messages };
  }

  /**
   * revoke.mode openai-admin: wait until the old key shows no use since every target switched
   * (`since`; skipped in an emergency: the attacker keeps using it), then delete it through the
   * Admin API. Not revoked (still used, unknown id, API error) → the rotation awaits revocation.
   */
  async revokeThroughAdmin(old: { hint: string; fingerprint: string }, since: number): Promise<{ revoked: boolean; message: string }> {
    if (!this.o.issuer) {
      return { revoked: false, message: 'revoke.mode is openai-admin but key.admin is not configured: revoke the old key in the dashboard, then run `keyrot revoke`.' };
    }
    if (!this.oldIds.keyId && !this.oldIds.serviceAccountId) {
      return {
        revoked: false,
        message: `The old key ${old.hint} (${old.fingerprint}) was not found in OpenAI project ${this.o.inventory.config.key.admin?.project ?? ''} through the Admin API: revoke it in the dashboard (${OPENAI_KEYS_PAGE}), then run \`keyrot revoke -e ${this.env}\`.`,
      };
    }
    try {
      const issuer = await this.o.issuer();
      if (this.mode !== 'emergency' && this.oldIds.keyId) {
        const d = this.o.inventory.config.revoke.disuse;
        this.o.reporter.step('disuse', `waiting until ${old.hint} shows no use since the switch (up to ${Math.round(d.limit / 60_000)} min)`);
        const idle = await (await import('../keys/openai-admin.ts')).waitForDisuse(issuer, {
          keyId: this.oldIds.keyId,
          since,
          marginMs: d.margin,
          limitMs: d.limit,
          pollMs: d.poll,
          clock: this.o.clock,
          signal: this.o.signal,
        });
        if (!idle.idle) {
          await this.journal.append({ step: 'revoke', outcome: 'skipped', fingerprint: old.fingerprint, detail: `still in use: ${idle.detail}` });
          return {
            revoked: false,
            message: `Not revoked: the old key ${old.hint} was still used at ${new Date(idle.lastUsedAt).toISOString()}, after every target of "${this.env}" switched. Something outside the inventory (another environment, a forgotten deployment, a developer machine) may still use it. Find it, then run \`keyrot revoke -e ${this.env}\`.`,
          };
        }
      }
      // The issuer checks these journal records against the Admin API before deleting anything.
      const res = await issuer.revoke({ keyId: this.oldIds.keyId ?? undefined, serviceAccountId: this.oldIds.serviceAccountId ?? undefined, hint: old.hint, env: this.env });
      if (!res.revoked) {
        await this.journal.append({ step: 'revoke', outcome: 'failed', fingerprint: old.fingerprint, detail: res.detail });
        return { revoked: false, message: `Not revoked: ${res.detail}. Revoke it in the dashboard, then run \`keyrot revoke -e ${this.env}\`.` };
      }
      await this.journal.append({ step: 'revoke', outcome: 'ok', fingerprint: old.fingerprint, detail: `revoked through the OpenAI Admin API: ${res.detail}` });
      await appendAudit(this.o.state, {
        event: 'key.revoked',
        env: this.env,
        rotation: this.rotationId,
        details: { key: old.fingerprint, hint: old.hint, how: 'OpenAI Admin API', keyId: this.oldIds.keyId, alreadyGone: res.alreadyGone },
      });
      const others = this.alsoRevoke.length ? ` Revoke the other retired keys in the dashboard (${OPENAI_KEYS_PAGE}):${alsoRevokeText(this.alsoRevoke).replace(' Also revoke', '')}` : '';
      return { revoked: true, message: `Old key ${old.hint} (${old.fingerprint}) revoked through the OpenAI Admin API${res.alreadyGone ? ' (it was already gone)' : ''}.${others}` };
    } catch (err) {
      const e = toTargetError(err);
      await this.journal.append({ step: 'revoke', outcome: 'failed', fingerprint: old.fingerprint, detail: e.message });
      // A refusal (the records do not check out) is not an API failure: trying again changes nothing.
      if (err instanceof RevocationRefused) return { revoked: false, message: `Not revoked: ${e.message}.` };
      return { revoked: false, message: `Not revoked: the OpenAI Admin API failed: ${e.message}. Run \`keyrot revoke -e ${this.env}\` to try again.` };
    }
  }
}

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
   * key found in the targets; resolves true once the operator confirmed it is revoked.
   */
  revokeFirst?: (old: Secret | null) => Promise<boolean>;
  /** Called once the old key is known (after preflight): notes it returns join the report (emergency: is it already disabled?). */
  inspectOldKey?: (old: Secret | null) => Promise<string[]>;
  /** End at "awaiting revocation" after verification; the caller runs `revoke()` when it is ready. */
  deferRevocation?: boolean;
}

/** `keyrot rotate` / `keyrot emergency`. */
export async function rotate(o: EngineOptions, r: RotateOptions): Promise<RotationReport> {
  const run = new RotationRun(o);
  const cfg = o.inventory.config;
  const kind = o.env.key.kind;
  run.rotationId = newRotationId(o.clock.now(), randomSuffix);
  run.mode = r.mode;
  run.deferRevocation = r.deferRevocation === true;
  await run.acquire(r.mode);
  try {
    const all = replay(await readJournal(o.state, run.env));
    const last = all[all.length - 1];
    if (last && last.outcome === undefined) {
      throw new ExitError(
        EXIT.failed,
        `rotation ${last.id} of "${run.env}" was interrupted: finish it with \`keyrot resume -e ${run.env}\` or undo it with \`keyrot resume -e ${run.env} --rollback\``,
      );
    }
    // A later failed or rolled-back rotation does not settle a pending revocation: look past it.
    const pending = latestStanding(all);
    if (pending?.outcome === 'awaiting-revocation' && r.mode === 'rotate') {
      throw new ExitError(
        EXIT.failed,
        `rotation ${pending.id} of "${run.env}" is still awaiting revocation of ${pending.oldHint ?? 'the old key'} (${pending.oldFingerprint}): revoke it and run \`keyrot revoke -e ${run.env}\` first (an emergency rotation may go ahead regardless)`,
      );
    }
    // An emergency over a pending revocation carries the earlier old key (and its own list) along.
    const carried: AlsoRevoke[] =
      pending?.outcome === 'awaiting-revocation' && pending.oldFingerprint
        ? [
            { hint: pending.oldHint ?? '(hint unknown)', fingerprint: pending.oldFingerprint, why: `rotation ${pending.id} still awaited its revocation` },
            ...pending.alsoRevoke,
          ]
        : [];

    const pf = await run.setupTargets();
    const failed = [...pf].filter(([, p]) => p.status === 'error');
    const pfSummary = [...pf].map(([name, p]) => ({ name, status: p.status, reason: p.reason }));
    for (const [name, p] of pf) {
      run.previous.set(name, p.current.kind === 'value' ? p.current.value : p.current.kind === 'absent' ? null : undefined);
      if (p.current.kind === 'value') run.holds.set(name, 'old');
      if (p.status === 'error') {
        run.errors.set(name, p.reason ?? 'preflight failed');
        // A failed preflight read nothing: what it holds is not known (and not "absent").
        if (p.current.kind !== 'value') run.holds.set(name, 'unknown');
      }
    }
    if (failed.length) {
      await appendAudit(o.state, {
        event: 'rotation.refused',
        env: run.env,
        details: { reason: 'preflight', targets: failed.map(([n, p]) => ({ target: n, reason: p.reason })) },
      });
      const rep = run.report('refused', EXIT.failed, [
        `Preflight failed for ${failed.length} of ${pf.size} targets: nothing was written. Fix the targets above and run again (\`keyrot plan -e ${run.env}\` re-checks without writing).`,
      ]);
      rep.preflight = pfSummary;
      return rep;
    }
    const readable = [...run.previous.values()].filter((v): v is Secret => v instanceof Secret);
    run.oldKey = consensus(readable);
    run.oldInfo = run.oldKey ? { hint: run.oldKey.hint, fingerprint: run.oldKey.fingerprint } : null;
    const distinct = new Set(readable.map((v) => v.fingerprint));
    const notes: string[] = [];
    // Every key this rotation retires besides the main old key must be revoked too.
    const also = new Map<string, AlsoRevoke>();
    for (const lt of run.targets) {
      const v = run.previous.get(lt.spec.name);
      if (v instanceof Secret && v.fingerprint !== run.oldKey?.fingerprint && !also.has(v.fingerprint)) {
        also.set(v.fingerprint, { hint: v.hint, fingerprint: v.fingerprint, why: `held by target ${lt.spec.name} (drift)` });
      }
    }
    for (const c of carried) if (c.fingerprint !== run.oldKey?.fingerprint && !also.has(c.fingerprint)) also.set(c.fingerprint, c);
    run.alsoRevoke = [...also.values()];
    if (carried.length) notes.push(`Rotation ${pending!.id} still awaited the revocation of ${pending!.oldHint ?? 'its old key'} (${pending!.oldFingerprint}): it is carried into this rotation's revocation.`);
    if (distinct.size > 1) {
      notes.push(
        `Drift: targets held ${distinct.size} different keys before this rotation (${[...distinct].join(', ')}); all now receive the new key, and each is restored to its own value on failure.`,
      );
      o.reporter.warn(notes[notes.length - 1]!);
    }

    if (r.inspectOldKey) notes.push(...(await r.inspectOldKey(run.oldKey)));
    let revokedFirst = false;
    if (r.revokeFirst) {
      if (!(await r.revokeFirst(run.oldKey))) {
        throw new ExitError(EXIT.failed, 'the revocation of the old key was not confirmed: nothing was changed');
      }
      revokedFirst = true;
      await appendAudit(o.state, {
        event: 'key.revoked',
        env: run.env,
        rotation: run.rotationId,
        details: { key: run.oldKey?.fingerprint ?? null, hint: run.oldKey?.hint ?? null, how: 'revoked first (emergency --revoke-first), confirmed by the operator' },
      });
    }

    // Obtain and check the new key before anything is written.
    o.reporter.step('key', `from ${r.source}`);
    const obtained = await r.obtainKey({ rotationId: run.rotationId, env: run.env });
    const key = obtained instanceof Secret ? obtained : obtained.key;
    if (!(obtained instanceof Secret)) run.minted = { keyId: obtained.keyId, serviceAccountId: obtained.serviceAccountId, expiresAt: obtained.expiresAt };
    let liveDetail = 'skipped (key.verify: false)';
    try {
      const fmt = checkFormat(kind, key);
      if (!fmt.ok) throw new ExitError(EXIT.failed, `the new key was refused: ${fmt.reason}. Nothing was written.`);
      if (fmt.warning) o.reporter.warn(fmt.warning);
      const same = readable.find((v) => v.equals(key));
      if (same) {
        throw new ExitError(
          EXIT.failed,
          `the new key ${key.hint} (${key.fingerprint}) is the key the targets already hold: create a new key first. Nothing was written.`,
        );
      }
      run.newKey = key;
      if (kind === 'openai' && o.env.key.verify) {
        o.reporter.step('live-check', 'GET /models with the new key');
        const endpoint = openaiEndpoint(o.env.key.endpoint, o.processEnv);
        try {
          const res = await withRetry(() => liveCheck(key, endpoint, o.clock, o.signal), {
            clock: o.clock,
            policy: { attempts: 3, ...o.retry },
            random: o.random,
          });
          liveDetail = res.detail;
          if (res.status === 'restricted') o.reporter.warn(res.detail);
        } catch (err) {
          const e = toTargetError(err);
          const msg =
            e.kind === 'auth'
              ? `${e.message}. Nothing was written.`
              : `the live check of the new key failed: ${e.message}. Nothing was written. Check the network, or set key.verify: false to skip the check.`;
          throw new ExitError(EXIT.failed, msg);
        }
      } else if (kind === 'generic') {
        liveDetail = 'skipped (kind: generic has no live check)';
      }
    } catch (err) {
      // Refused before anything was written: a key keyrot minted for this rotation is used nowhere.
      if (run.minted && o.issuer && err instanceof ExitError) {
        let note = ' The key minted for this rotation was deleted again.';
        try {
          await (await o.issuer()).revoke({ keyId: run.minted.keyId, serviceAccountId: run.minted.serviceAccountId, hint: key.hint, env: run.env });
        } catch (e) {
          note = ` The key minted for this rotation (${key.hint}) could not be deleted: ${toTargetError(e).message}. Delete its service account in the OpenAI dashboard.`;
        }
        throw new ExitError(err.code, err.message + note);
      }
      throw err;
    }

    if (run.oldKey && o.issuer && (cfg.revoke.mode === 'openai-admin' || r.mode === 'emergency')) await findOldKeyIds(run, run.oldKey);
    const targetsInfo: TargetStartInfo[] = run.targets.map((lt) => {
      const prev = run.previous.get(lt.spec.name);
      return {
        name: lt.spec.name,
        type: lt.spec.type,
        location: lt.target!.location,
        old: prev === undefined ? 'unreadable' : prev === null ? null : prev.fingerprint,
        readBack: lt.target!.capabilities.readBack,
      };
    });
    run.journal = new Journal(o.state, run.env, run.rotationId, o.clock.now);
    await run.journal.append({
      step: 'start',
      outcome: 'ok',
      mode: r.mode,
      source: r.source,
      oldFingerprint: run.oldKey?.fingerprint ?? null,
      oldHint: run.oldKey?.hint ?? null,
      oldKeyId: run.oldIds.keyId,
      oldServiceAccountId: run.oldIds.serviceAccountId,
      alsoRevoke: run.alsoRevoke,
      targets: targetsInfo,
    });
    if (revokedFirst) await run.journal.append({ step: 'revoke', outcome: 'ok', fingerprint: run.oldKey?.fingerprint, detail: 'revoked-first' });
    await run.journal.append({
      step: 'key',
      outcome: 'ok',
      fingerprint: key.fingerprint,
      hint: key.hint,
      receipt: run.minted ? { keyId: run.minted.keyId, serviceAccountId: run.minted.serviceAccountId, expiresAt: run.minted.expiresAt } : undefined,
    });
    await run.journal.append({ step: 'live-check', outcome: liveDetail.startsWith('skipped') ? 'skipped' : 'ok', detail: liveDetail });
    failpoint('after-start');
    await appendAudit(o.state, {
      event: r.mode === 'emergency' ? 'rotation.emergency-started' : 'rotation.started',
      env: run.env,
      rotation: run.rotationId,
      details: { old: run.oldKey?.fingerprint ?? null, new: key.fingerprint, source: r.source, targets: targetsInfo.length },
    });

    return await runToEnd(run, run.targets.map((t) => t.spec.name), run.targets.map((t) => t.spec.name), notes, revokedFirst);
  } finally {
    await run.release();
  }
}

/**
 * The old key's ids at OpenAI: minted by an earlier keyrot rotation (its journal has them), or
 * looked up through the Admin API while the value is in memory. Unknown → null (revocation then
 * falls back to the dashboard).
 */
async function findOldKeyIds(run: RotationRun, old: Secret): Promise<void> {
  const earlier = replay(await readJournal(run.o.state, run.env)).find((r) => r.newFingerprint === old.fingerprint && r.minted);
  if (earlier?.minted) {
    run.oldIds = { keyId: earlier.minted.keyId, serviceAccountId: earlier.minted.serviceAccountId };
    return;
  }
  try {
    const rec = await (await run.o.issuer!()).find({ key: old });
    // Looked up, not minted: only the key id is recorded, so revocation checks it as a looked-up key
    // (it must still match the hint) and never takes the account for one keyrot minted.
    if (rec) run.oldIds = { keyId: rec.id, serviceAccountId: null };
  } catch (err) {
    run.o.reporter.warn(`could not look the old key up through the OpenAI Admin API: ${toTargetError(err).message}`);
  }
}

/** Write → verify → revocation step, with rollback on any failure. Shared by rotate and resume. */
async function runToEnd(run: RotationRun, toWrite: string[], toVerify: string[], notes: string[], revokedFirst: boolean): Promise<RotationReport> {
  const o = run.o;
  const cfg = o.inventory.config;
  if (o.signal?.aborted) return stopped(run, notes);
  const writesOk = await run.writeAll(toWrite);
  // A stop request (SIGTERM) lets the in-flight step finish and be journaled, then stops: no
  // rollback, no new step. The journal says exactly where it stopped; resume continues.
  if (o.signal?.aborted) return stopped(run, notes);
  const verifyOk = writesOk ? await run.verifyAll(toVerify) : false;
  // Stopped with every target verified: the revocation step records "awaiting revocation" instead.
  if (o.signal?.aborted && !(writesOk && verifyOk && !revokedFirst)) return stopped(run, notes);
  if ((!writesOk || !verifyOk) && revokedFirst) {
    // The old key is already revoked: going back to it would only spread the outage. Targets that
    // hold the new key keep it; the rotation stays resumable for the failed ones.
    await appendAudit(o.state, { event: 'rotation.interrupted', env: run.env, rotation: run.rotationId, details: { failed: [...run.errors.keys()] } });
    return run.report('interrupted', EXIT.failed, [
      ...notes,
      `Some targets failed (see the table). The old key was revoked first, so nothing was rolled back: fix them and run \`keyrot resume -e ${run.env}\`.`,
    ]);
  }
  if (!writesOk || !verifyOk) return failAndRestore(run, notes);

  if (revokedFirst) {
    await run.journal.append({ step: 'verified-all', outcome: 'ok', fingerprint: run.newKey!.fingerprint });
    const problems = await run.finalizeAll();
    await run.journal.append({ step: 'end', outcome: 'completed' });
    await appendAudit(o.state, {
      event: 'rotation.completed',
      env: run.env,
      rotation: run.rotationId,
      details: { new: run.newKey!.fingerprint, old: run.oldInfo?.fingerprint ?? null, revokedFirst: true },
    });
    return run.report('completed', EXIT.ok, [...notes, 'Every target holds the new key; the old key was revoked first.', ...problems]);
  }
  const rev = await run.revocationStep(o.env.key.kind, cfg.revoke.mode);
  await run.journal.append({ step: 'end', outcome: rev.outcome });
  await appendAudit(o.state, {
    event: rev.outcome === 'completed' ? 'rotation.completed' : 'rotation.awaiting-revocation',
    env: run.env,
    rotation: run.rotationId,
    details: { new: run.newKey!.fingerprint, old: run.oldInfo?.fingerprint ?? null },
  });
  return run.report(rev.outcome, EXIT.ok, [...notes, ...rev.messages]);
}

async function stopped(run: RotationRun, notes: string[]): Promise<RotationReport> {
  await appendAudit(run.o.state, { event: 'rotation.stopped', env: run.env, rotation: run.rotationId, details: { reason: 'stop requested (signal)' } });
  return run.report('interrupted', EXIT.failed, [
    ...notes,
    `Stopped on request after the current step; nothing was rolled back. The journal records every completed step: run \`keyrot resume -e ${run.env}\` (the scheduler does so at its next start). Do not revoke the old key.`,
  ]);
}

async function failAndRestore(run: RotationRun, notes: string[]): Promise<RotationReport> {
  const o = run.o;
  const toRestore = [...run.touched];
  const restored = await run.rollback(toRestore);
  const failedTargets = [...run.errors.keys()];
  if (restored) {
    // A key keyrot minted for this rotation is used nowhere now: undo its issuance too.
    if (run.minted && o.issuer) {
      try {
        await (await o.issuer()).revoke({ keyId: run.minted.keyId, serviceAccountId: run.minted.serviceAccountId, hint: run.newKey?.hint, env: run.env });
        notes.push(`The key minted for this rotation (${run.newKey?.hint}) was deleted again.`);
      } catch (err) {
        notes.push(`The key minted for this rotation (${run.newKey?.hint}) could not be deleted: ${toTargetError(err).message}. Delete its service account in the OpenAI dashboard.`);
      }
    }
    await run.journal.append({ step: 'end', outcome: 'failed', detail: `failed: ${failedTargets.join(', ')}` });
    await appendAudit(o.state, {
      event: 'rotation.failed',
      env: run.env,
      rotation: run.rotationId,
      details: { failed: failedTargets, restored: toRestore, new: run.newKey?.fingerprint },
    });
    return run.report('failed', EXIT.failed, [
      ...notes,
      `The rotation failed (${failedTargets.join(', ')}); every target written was restored to the old key. The old key stays valid: do not revoke it. Nothing needs resuming.`,
    ]);
  }
  await appendAudit(o.state, {
    event: 'rotation.interrupted',
    env: run.env,
    rotation: run.rotationId,
    details: { failed: failedTargets, new: run.newKey?.fingerprint },
  });
  return run.report('interrupted', EXIT.failed, [
    ...notes,
    `The rotation failed and some targets could not be restored (see the table). Do not revoke the old key. Retry the undo with \`keyrot resume -e ${run.env} --rollback\`, or finish the rotation with \`keyrot resume -e ${run.env}\`.`,
  ]);
}

export interface ResumeOptions {
  rollback: boolean;
  /** Source of the new key (must match the journal's fingerprint); default: read it back from a target. */
  newKey?: { source: string; obtain: () => Promise<Secret> };
  /** Source of the old key, for a rollback when no target holds it any more. */
  oldKey?: { source: string; obtain: () => Promise<Secret> };
}

/** `keyrot resume [--rollback]`: continue or undo an interrupted rotation from its journal. */
async function interruptedRotation(o: EngineOptions): Promise<RotationState> {
  const last = await latestRotation(o.state, o.env.name);
  if (!last) throw new ExitError(EXIT.failed, `no rotation of "${o.env.name}" to resume: the journal is empty`);
  if (last.outcome !== undefined) {
    const what =
      last.outcome === 'awaiting-revocation'
        ? `it finished and awaits revocation: run \`keyrot revoke -e ${o.env.name}\``
        : `it ended (${last.outcome})`;
    throw new ExitError(EXIT.failed, `nothing to resume: the latest rotation ${last.id} of "${o.env.name}" is not interrupted; ${what}`);
  }
  return last;
}

export async function resume(o: EngineOptions, r: ResumeOptions): Promise<RotationReport> {
  const run = new RotationRun(o);
  // The lock first (a running rotation is exit 3, not "nothing to resume"), then the journal,
  // read under the lock so another resume or rollback cannot finish it in between.
  await run.acquire(r.rollback ? 'resume --rollback' : 'resume');
  try {
    const last = await interruptedRotation(o);
    run.rotationId = last.id;
    if (r.rollback && last.revokedAt) {
      throw new ExitError(
        EXIT.failed,
        `refusing to roll back rotation ${last.id}: its old key ${last.oldHint ?? ''} (${last.oldFingerprint ?? 'fingerprint unknown'}) was already revoked${last.revokedFirst ? ' (emergency --revoke-first)' : ''}, so every target restored would hold a dead key. Finish the rotation with \`keyrot resume -e ${o.env.name}\`.`,
      );
    }
    run.journal = new Journal(o.state, run.env, run.rotationId, o.clock.now);
    const pf = await run.setupTargets();
    const missing = [...last.targets.keys()].filter((n) => !run.targets.some((t) => t.spec.name === n));
    if (missing.length) {
      throw new ExitError(
        EXIT.failed,
        `the inventory no longer has target(s) ${missing.join(', ')} of rotation ${last.id}: put them back in targets.yaml to resume`,
      );
    }
    const extra = run.targets.filter((t) => !last.targets.has(t.spec.name)).map((t) => t.spec.name);
    if (extra.length) {
      throw new ExitError(
        EXIT.failed,
        `the inventory has target(s) ${extra.join(', ')} that rotation ${last.id} did not include: remove them until the rotation is resumed`,
      );
    }
    // What the targets hold now, by fingerprint. A target that failed preflight without a value
    // read is unknown (not "absent": preflight reports a failure with no current value).
    const current = new Map<string, Secret | null | undefined>();
    for (const [name, p] of pf) {
      current.set(name, p.current.kind === 'value' ? p.current.value : p.current.kind === 'absent' && p.status !== 'error' ? null : undefined);
    }
    const values = [...current.values()].filter((v): v is Secret => v instanceof Secret);
    const withFp = (fp: string | null | undefined) => (fp ? values.find((v) => v.fingerprint === fp) : undefined);
    run.newFingerprint = last.newFingerprint ?? '';
    run.oldInfo = last.oldFingerprint ? { hint: last.oldHint ?? '(hint unknown)', fingerprint: last.oldFingerprint } : null;
    for (const [name, t] of last.targets) {
      const old = t.info.old;
      const cur = current.get(name);
      run.holds.set(
        name,
        cur instanceof Secret
          ? cur.fingerprint === last.newFingerprint
            ? 'new'
            : cur.fingerprint === old || cur.fingerprint === last.oldFingerprint
              ? 'old'
              : 'other'
          : cur === null
            ? 'absent'
            : t.written
              ? 'new'
              : 'unknown',
      );
    }

    const unreachable = [...pf].filter(([, p]) => p.status === 'error');
    if (unreachable.length) {
      for (const [n, p] of unreachable) run.errors.set(n, p.reason ?? 'preflight failed');
      const rep = run.report('interrupted', EXIT.failed, [
        `Cannot resume yet: ${unreachable.map(([n]) => n).join(', ')} failed preflight. Fix them and run \`keyrot resume\` again.`,
      ]);
      rep.rotation = last.id;
      return rep;
    }

    // The old key: from a target that still holds it, or --old-key.
    let oldKey: Secret | undefined = withFp(last.oldFingerprint);
    if (r.oldKey) {
      const k = await r.oldKey.obtain();
      if (last.oldFingerprint && k.fingerprint !== last.oldFingerprint) {
        throw new ExitError(EXIT.usage, `--old-key ${r.oldKey.source} has fingerprint ${k.fingerprint}, but rotation ${last.id} replaced ${last.oldFingerprint}: that is not the old key`);
      }
      oldKey = k;
    }
    run.oldKey = oldKey ?? null;
    run.oldIds = { keyId: last.oldKeyId, serviceAccountId: last.oldServiceAccountId };
    run.alsoRevoke = last.alsoRevoke;
    run.minted = last.minted ?? null;
    run.mode = last.mode;
    for (const [name, t] of last.targets) {
      const old = t.info.old;
      run.previous.set(name, old === null ? null : old === 'unreadable' ? undefined : (withFp(old) ?? (oldKey && oldKey.fingerprint === old ? oldKey : undefined)));
      if (t.receipt) run.receipts.set(name, t.receipt);
    }

    // The new key: --new-key (same fingerprint) or read back from a target that holds it.
    let newKey = withFp(last.newFingerprint);
    if (r.newKey) {
      const k = await r.newKey.obtain();
      if (k.fingerprint !== last.newFingerprint) {
        throw new ExitError(
          EXIT.failed,
          `--new-key ${r.newKey.source} gives key ${k.hint} (${k.fingerprint}), but rotation ${last.id} was writing ${last.newHint ?? ''} (${last.newFingerprint}): use the same key, or undo with --rollback`,
        );
      }
      newKey = k;
    }
    run.newKey = newKey ?? null;

    await appendAudit(o.state, { event: r.rollback ? 'rotation.rollback-resumed' : 'rotation.resumed', env: run.env, rotation: run.rotationId });

    if (r.rollback) {
      // Every target that may have been touched goes back: journaled writes, failed writes, and any
      // target now holding the new key.
      // The writes start right after the live-check is journaled: before that, nothing was written.
      const writesBegan = last.events.some((e) => e.step === 'live-check' || e.step === 'write');
      const names = [...last.targets.keys()].filter((n) => {
        const t = last.targets.get(n)!;
        const h = run.holds.get(n);
        if (h === 'old') return false;
        if (h === 'absent') return t.info.old !== null; // absent before: nothing to undo
        // Cannot be read (write-only): a write in flight at the crash is journaled nowhere, so unless
        // the journal saw it restored, it may hold the new key. Restoring the old value is harmless.
        if (h === 'unknown') return writesBegan && !t.restored;
        // Holds the new key, something else: undo if this rotation may have touched it.
        return h === 'new' || h === 'other' || t.written || t.writeFailed;
      });
      for (const n of names) run.touched.add(n);
      const ok = await run.rollback(names);
      if (ok) {
        const notes: string[] = [];
        // A key keyrot minted for this rotation is used nowhere now: undo its issuance too.
        if (run.minted && o.issuer) {
          try {
            await (await o.issuer()).revoke({ keyId: run.minted.keyId, serviceAccountId: run.minted.serviceAccountId, hint: last.newHint, env: run.env });
            notes.push(`The key minted for this rotation (${last.newHint ?? last.newFingerprint}) was deleted again.`);
          } catch (err) {
            notes.push(
              `The key minted for this rotation (${last.newHint ?? last.newFingerprint}) could not be deleted: ${toTargetError(err).message}. Delete its service account in the OpenAI dashboard.`,
            );
          }
        } else if (run.minted) {
          notes.push(`The key minted for this rotation (${last.newHint ?? last.newFingerprint}) is held by no target now: delete its service account in the OpenAI dashboard.`);
        }
        await run.journal.append({ step: 'end', outcome: 'rolled-back' });
        await appendAudit(o.state, { event: 'rotation.rolled-back', env: run.env, rotation: run.rotationId, details: { restored: names } });
        return run.report('rolled-back', EXIT.ok, [
          `Rotation ${run.rotationId} was undone: ${names.length ? names.join(', ') : 'no target'} restored; every target holds the old key. Do not revoke it.` +
            (last.newFingerprint && !run.minted ? ` The new key ${last.newHint ?? ''} (${last.newFingerprint}) is used nowhere now: delete it where it was created.` : ''),
          ...notes,
        ]);
      }
      const unknownOld = [...run.errors.values()].some((m) => m.includes('the old key is not known'));
      return run.report('interrupted', EXIT.failed, [
        unknownOld
          ? `No target holds the old key ${last.oldHint ?? ''} (${last.oldFingerprint}) any more, and keyrot never stores it: give it back with \`keyrot resume -e ${run.env} --rollback --old-key SOURCE\` (stdin, env:VAR, file:PATH), or finish the rotation with \`keyrot resume -e ${run.env}\`.`
          : `Some targets could not be restored (see the table); fix them and run \`keyrot resume -e ${run.env} --rollback\` again.`,
      ]);
    }

    if (!run.newKey) {
      throw new ExitError(
        EXIT.failed,
        `no target holds the new key ${last.newHint ?? ''} (${last.newFingerprint}) of rotation ${last.id} any more: pass it again with --new-key SOURCE, or undo with --rollback`,
      );
    }
    // Continue: write where the target does not hold the new key yet, verify everything not verified.
    const names = [...last.targets.keys()];
    const toWrite = names.filter((n) => run.holds.get(n) !== 'new' || !last.targets.get(n)!.written);
    for (const n of names) if (last.targets.get(n)!.written || run.holds.get(n) === 'new') run.touched.add(n);
    // Verified means verified AND, for a target whose consumers need a restart, redeployed: a crash
    // between the verify and the redeploy journals leaves the app on the old key.
    const needsRedeploy = (n: string) => {
      const t = run.targets.find((x) => x.spec.name === n)?.target;
      return Boolean(t?.redeploy && t.capabilities.redeploy);
    };
    for (const n of names) {
      const t = last.targets.get(n)!;
      if (!t.verified || toWrite.includes(n)) continue;
      if (needsRedeploy(n) && !t.redeployed) continue;
      const method = t.verifyMethod ?? 'read-back';
      run.verified.set(n, t.redeployed && method !== 'read-back' ? 'redeploy' : method);
    }
    const toVerify = names.filter((n) => !run.verified.has(n));
    return await runToEnd(run, toWrite, toVerify, [`Resuming rotation ${last.id}.`], last.revokedFirst);
  } finally {
    await run.release();
  }
}

/** `keyrot revoke`: record (prompt) the revocation of the old key, then finalize. */
export async function revoke(o: EngineOptions): Promise<RotationReport> {
  // The lock first: while a rotation runs, revoking is exit 3 (and the journal is read under it).
  const run = new RotationRun(o);
  await run.acquire('revoke');
  try {
    return await revokeLocked(o, run);
  } finally {
    await run.release();
  }
}

async function revokeLocked(o: EngineOptions, run: RotationRun): Promise<RotationReport> {
  const all = replay(await readJournal(o.state, o.env.name));
  const latest = all[all.length - 1];
  // The rotation a revocation waits on may sit before a later failed or rolled-back one.
  const last = latest && latest.outcome !== undefined ? (latestStanding(all) ?? latest) : latest;
  if (!last) throw new ExitError(EXIT.failed, `no rotation of "${o.env.name}" yet: nothing to revoke`);
  if (last.outcome !== 'awaiting-revocation') {
    const why =
      last.outcome === undefined
        ? `it was interrupted: finish it with \`keyrot resume -e ${o.env.name}\` first`
        : last.outcome === 'completed'
          ? 'its old key was already revoked'
          : `it ended ${last.outcome}; the old key is still the live one`;
    throw new ExitError(EXIT.failed, `refusing: the latest rotation ${last.id} of "${o.env.name}" is not awaiting revocation (${why})`);
  }
  const unverified = [...last.targets.values()].filter((t) => !t.verified).map((t) => t.info.name);
  if (!last.allVerified || unverified.length) {
    throw new ExitError(EXIT.failed, `refusing: not every target was verified to hold the new key (${unverified.join(', ') || 'verification not recorded'})`);
  }
  const cfg = o.inventory.config;
  run.rotationId = last.id;
  {
    run.journal = new Journal(o.state, run.env, run.rotationId, o.clock.now);
    const oldHint = last.oldHint ?? '(unknown)';
    const oldFp = last.oldFingerprint ?? '(unknown)';
    const where = o.env.key.kind === 'openai' ? `the OpenAI dashboard (${OPENAI_KEYS_PAGE})` : "the issuer's console";
    const finalizeAndEnd = async (messages: string[]): Promise<RotationReport> => {
      const needFinalize = o.env.targets.some((t) => t.definition.capabilities.finalize);
      let problems: string[] = [];
      if (needFinalize) {
        await run.setupTargets();
        for (const [n, t] of last.targets) if (t.receipt) run.receipts.set(n, t.receipt);
        run.newKey = null;
        run.newFingerprint = last.newFingerprint ?? '';
        problems = await run.finalizeAll();
      }
      await run.journal.append({ step: 'end', outcome: 'completed' });
      await appendAudit(o.state, { event: 'rotation.completed', env: run.env, rotation: run.rotationId, details: { new: last.newFingerprint } });
      return {
        rotation: last.id,
        env: o.env.name,
        outcome: 'completed',
        exitCode: EXIT.ok,
        old: last.oldHint && last.oldFingerprint ? { hint: last.oldHint, fingerprint: last.oldFingerprint } : null,
        new: last.newHint && last.newFingerprint ? { hint: last.newHint, fingerprint: last.newFingerprint } : null,
        oldKeyId: last.oldKeyId,
        targets: [],
        messages: [...messages, ...problems],
      };
    };
    if (cfg.revoke.mode === 'openai-admin') {
      // The Admin API performs it, still gated on disuse since every target switched.
      run.oldIds = { keyId: last.oldKeyId, serviceAccountId: last.oldServiceAccountId };
      run.alsoRevoke = last.alsoRevoke;
      run.mode = last.mode;
      // Disuse is judged from now: a straggler found and fixed since the rotation no longer blocks,
      // one still running does (its use shows within the margin).
      const r = await run.revokeThroughAdmin({ hint: oldHint, fingerprint: oldFp }, o.clock.now());
      if (!r.revoked) throw new ExitError(EXIT.failed, r.message);
      return finalizeAndEnd([r.message, `Rotation ${last.id} is complete.`]);
    }
    if (!o.yes) {
      if (!o.interactive || !o.confirmRevocation) {
        throw new ExitError(
          EXIT.usage,
          `in prompt mode keyrot records a revocation you made: revoke ${oldHint} (${oldFp}) in ${where},${alsoRevokeText(last.alsoRevoke).replace(' Also revoke', ' and')} then confirm with \`keyrot revoke -e ${o.env.name} --yes\``,
        );
      }
      const ok = await o.confirmRevocation({ oldHint, oldFingerprint: oldFp, where, env: o.env.name, also: last.alsoRevoke });
      if (!ok) {
        return {
          rotation: last.id,
          env: o.env.name,
          outcome: 'awaiting-revocation',
          exitCode: EXIT.ok,
          targets: [],
          messages: ['Not recorded: the rotation still awaits revocation.'],
        };
      }
    }
    await run.journal.append({ step: 'revoke', outcome: 'ok', fingerprint: last.oldFingerprint ?? undefined, detail: 'confirmed by the operator' });
    await appendAudit(o.state, {
      event: 'key.revoked',
      env: run.env,
      rotation: run.rotationId,
      details: { key: last.oldFingerprint, hint: last.oldHint, also: last.alsoRevoke.map((a) => a.fingerprint), how: 'operator confirmed revocation in the dashboard' },
    });
    const others = last.alsoRevoke.length ? ` (and ${last.alsoRevoke.map((a) => `${a.hint} (${a.fingerprint})`).join(', ')})` : '';
    return await finalizeAndEnd([`Recorded: old key ${oldHint} (${oldFp})${others} revoked. Rotation ${last.id} is complete.`]);
  }
}

export type { RotationState };

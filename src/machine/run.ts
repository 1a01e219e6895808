import { plural } from '../render/plural.ts';
import { EXIT, ExitError, toTargetError, type ExitCode, type TargetError } from '../core/errors.ts';
import type { Secret } from '../core/secret.ts';
import { issuerFor, type AdminApi, type KeyIssuer } from '../issuers/index.ts';
import { Limiter } from '../runtime/concurrency.ts';
import { Pacer, type Lane } from '../runtime/pacer.ts';
import { withRetry, type RetryPolicy } from '../runtime/retry.ts';
import { Journal, type JournalEvent } from '../state/journal.ts';
import type { Lock } from '../state/lock.ts';
import { stateOf, type StateRef } from '../state/store.ts';
import type { OpContext, PreflightResult, Target, TargetDefinition } from '../targets/types.ts';
import { Keyring } from './keyring.ts';
import { closeAll, createTargets, decodeReceipt, removeStrays, type LiveTarget, type RuntimeContext } from './live-targets.ts';
import { next, type Notice, type RotationReport, type TargetReport } from './outcome.ts';
import { preflightAll } from './preflight.ts';
import type { Reporter, TargetPhase } from './progress.ts';
import { apply, mayHoldNew, startState, type RotationState, type TargetRecord } from './state.ts';

/** What the operator is asked at the revocation step (TTY, prompt mode). */
export interface RevocationPrompt {
  oldHint: string;
  oldFingerprint: string;
  /** Where to revoke by hand, or null when keyrot cannot know. */
  revokeAt: import('./outcome.ts').RevokeAt;
  env: string;
  /** Other keys to revoke at the same time (drift, an earlier pending revocation). */
  also?: import('../state/journal.ts').AlsoRevoke[];
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
  /** Asks the operator to confirm they revoked the old key; only called when interactive and not --yes. May throw PromptCancelled. */
  confirmRevocation?: (p: RevocationPrompt) => Promise<boolean>;
  /** The issuer's admin API (key.admin), created on first use: minting, revocation, usage. */
  admin?: () => Promise<AdminApi>;
  /** The key's issuer; by default the one `key.kind` names. */
  keyIssuer?: KeyIssuer;
  /** Every failed provider call (retried or final), by target type: the daemon counts them for /metrics. */
  onProviderError?: (targetType: string, error: TargetError) => void;
  /**
   * Where a quick, bounded discovery finds `key` (locations): asked when the old key is still
   * used after every target switched, to say where it may be used from. Never throws.
   */
  findKey?: (key: Secret) => Promise<string[]>;
}

/** Restores get more patience than writes: they are what stands between a failure and an outage. */
const RESTORE_ATTEMPTS = 8;

/**
 * One engine command's run over an environment: the live targets, the journal, the rotation's
 * state (replayed, then advanced only through `emit`), and the key values at hand.
 */
export class Run {
  readonly o: EngineOptions;
  readonly limiter = new Limiter();
  /** One lane per provider account: every step and request of the run is paced through it. */
  readonly pacer: Pacer;
  readonly keyring = new Keyring();
  readonly issuer: KeyIssuer;
  readonly notices: Notice[] = [];
  live: LiveTarget[] = [];
  preflight = new Map<string, PreflightResult>();
  journal!: Journal;
  state!: RotationState;
  lock?: Lock;

  constructor(o: EngineOptions) {
    this.o = o;
    this.pacer = new Pacer(o.clock, (m) => o.reporter.info(m));
    this.issuer = o.keyIssuer ?? issuerFor(o.env.key, { processEnv: o.processEnv, clock: o.clock, admin: o.admin });
  }

  get env(): string {
    return this.o.env.name;
  }

  get reporter(): Reporter {
    return this.o.reporter;
  }

  /** What creating adapters needs: the engine's options and its pacer. */
  get runtime(): RuntimeContext {
    return { ...this.o, pacer: this.pacer };
  }

  /** Opens the journal of rotation `id` and, when it exists already, its replayed state. */
  open(id: string, state?: RotationState): void {
    this.journal = new Journal(this.o.state, this.env, id, this.o.clock.now);
    if (state) this.state = state;
  }

  /** Appends an event (durable before this returns), then folds it into the state. */
  async emit(e: Omit<JournalEvent, 'v' | 'rotation' | 'env' | 'at'>): Promise<void> {
    const event = await this.journal.append(e);
    if (event.step === 'start') this.state = startState(event);
    apply(this.state, event);
  }

  async acquire(command: string, rotation?: string): Promise<void> {
    this.lock = await (await stateOf(this.o.state)).acquireLock(this.env, { command, rotation });
  }

  async release(): Promise<void> {
    await this.lock?.release();
    await closeAll(this.live);
  }

  /** Creates the adapters and preflights them all (read-only, retried when transient). */
  async setupTargets(): Promise<Map<string, PreflightResult>> {
    this.reporter.step('preflight', plural(this.o.env.targets.length, 'target'));
    this.live = await createTargets(this.runtime);
    // Under the lock, so no write of this environment is live: temp files a crash left go first.
    const strays = await removeStrays(this.live);
    for (const m of strays.removed) this.reporter.info(m);
    for (const m of strays.failed) this.reporter.warn(m);
    for (const t of this.live) this.reporter.target(t.spec.name, 'preflight');
    this.preflight = await preflightAll(this.live, {
      clock: this.o.clock,
      retry: this.o.retry,
      random: this.o.random,
      signal: this.o.signal,
      onRetry: (name, r) => {
        this.o.onProviderError?.(this.typeOf(name), r.error);
        this.reporter.target(name, 'preflight', `retry ${r.attempt} in ${Math.round(r.delayMs)}ms: ${r.message}`);
      },
      onFailure: (name, error) => this.o.onProviderError?.(this.typeOf(name), error),
      onResult: (name, r) => this.#preflighted(name, r),
    });
    return this.preflight;
  }

  #preflighted(name: string, r: PreflightResult): void {
    this.reporter.target(name, r.status === 'ready' ? 'ready' : 'failed', r.status === 'ready' ? undefined : r.reason);
    for (const w of r.warnings ?? []) this.reporter.warn(`${name}: ${w}`);
    if (r.status === 'ready' && r.current.kind === 'value') this.keyring.add(r.current.value);
  }

  /** `live` by name, rebuilt when `live` is replaced: every step looks its target up (a fleet's run: thousands of times). */
  #byName: { of: LiveTarget[]; map: Map<string, LiveTarget> } | undefined;

  #findLive(name: string): LiveTarget | undefined {
    if (this.#byName?.of !== this.live) {
      const map = new Map<string, LiveTarget>();
      for (const x of this.live) if (!map.has(x.spec.name)) map.set(x.spec.name, x);
      this.#byName = { of: this.live, map };
    }
    return this.#byName.map.get(name);
  }

  liveTarget(name: string): LiveTarget {
    const lt = this.#findLive(name);
    if (!lt) throw new ExitError(EXIT.failed, `target "${name}" is not in the inventory any more`);
    return lt;
  }

  target(name: string): Target {
    const t = this.liveTarget(name).target;
    if (!t) throw new ExitError(EXIT.failed, `target "${name}" could not be set up`);
    return t;
  }

  /** The pacing lane of a target's provider account. */
  lane(name: string): Lane {
    return this.liveTarget(name).lane;
  }

  /** Runs one step of a target in its lane (and its turn on a resource shared with other targets). */
  paced<T>(name: string, fn: () => Promise<T>, opts: { exclusive: boolean } = { exclusive: true }): Promise<T> {
    return this.limiter.run(this.lane(name), opts.exclusive ? this.target(name).lockKey : undefined, fn, this.o.signal);
  }

  definition(name: string): TargetDefinition<object, unknown> {
    return this.liveTarget(name).spec.definition as TargetDefinition<object, unknown>;
  }

  record(name: string): TargetRecord {
    return this.state.targets.get(name)!;
  }

  receipt(name: string): unknown {
    return decodeReceipt(this.definition(name), this.record(name), next('resume', this.env, '--rollback'));
  }

  /** For a restore: a receipt this keyrot cannot read is no receipt (restores work without one). */
  receiptOrNone(name: string): unknown {
    try {
      return this.receipt(name);
    } catch {
      return undefined;
    }
  }

  /** Operation context for the value with fingerprint `fp` (the new key's by default). */
  op(fp = this.state?.newFingerprint ?? ''): OpContext {
    return { rotationId: this.state?.id ?? '', fingerprint: fp, signal: this.o.signal };
  }

  get newKey(): Secret | undefined {
    return this.keyring.get(this.state?.newFingerprint);
  }

  /**
   * Runs a provider call with the engine's bounded retries, reporting each retry on the target's
   * line; each attempt tells the target's lane how it went (congestion slows the account down).
   */
  retrying<T>(name: string, phase: TargetPhase, fn: () => Promise<T>, policy?: Partial<RetryPolicy>): Promise<T> {
    const failed = (error: TargetError) => this.o.onProviderError?.(this.typeOf(name), error);
    const lane = this.lane(name);
    return withRetry(() => lane.attempt(fn), {
      clock: this.o.clock,
      policy: { ...this.o.retry, ...policy },
      random: this.o.random,
      signal: this.o.signal,
      onRetry: ({ attempt, delayMs, error }) => {
        failed(error);
        this.reporter.target(name, phase, `retry ${attempt} in ${Math.round(delayMs)}ms: ${error.message}`);
      },
    }).catch((err: unknown) => {
      if (!this.o.signal?.aborted) failed(toTargetError(err));
      throw err;
    });
  }

  /** The target type of a target of this environment (its provider). */
  typeOf(name: string): string {
    return this.o.env.targets.find((t) => t.name === name)?.type ?? 'unknown';
  }

  retryingRestore<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.retrying(name, 'restoring', fn, { attempts: Math.max(RESTORE_ATTEMPTS, this.o.retry?.attempts ?? 0) });
  }

  /** The rotation's report, from its state: what each target holds now, as far as anyone knows. */
  report(outcome: RotationReport['outcome'], exitCode: ExitCode, extra: Partial<RotationReport> = {}): RotationReport {
    const s = this.state;
    const oldKey = s.oldFingerprint ? { hint: s.oldHint ?? '(hint unknown)', fingerprint: s.oldFingerprint } : null;
    const newKey = s.newFingerprint ? { hint: s.newHint ?? '(hint unknown)', fingerprint: s.newFingerprint } : null;
    return {
      rotation: s.id,
      env: this.env,
      outcome,
      exitCode,
      old: oldKey,
      new: newKey,
      oldKeyId: s.oldKeyId,
      alsoRevoke: s.alsoRevoke,
      targets: [...s.targets.values()].map((t) => targetReport(s, t, this.#findLive(t.info.name))),
      notices: [...this.notices],
      ...extra,
    };
  }
}

function targetReport(s: RotationState, t: TargetRecord, lt: LiveTarget | undefined): TargetReport {
  const holds = holdsOf(s, t);
  const redeploys = Boolean(lt?.target?.redeploy);
  const verifiedBy = t.verified && redeploys && t.redeployed && t.verified !== 'read-back' ? 'redeploy' : t.verified;
  return {
    name: t.info.name,
    type: t.info.type,
    location: lt?.target?.location ?? t.info.location,
    holds,
    fingerprint: holds === 'new' ? s.newFingerprint : holds === 'old' ? (t.info.old === 'unreadable' ? s.oldFingerprint : t.info.old) : holds === 'absent' ? null : undefined,
    verifiedBy: holds === 'new' ? verifiedBy : undefined,
    error: t.lastError,
  };
}

function holdsOf(s: RotationState, t: TargetRecord): TargetReport['holds'] {
  if (t.holds === 'unknown') return !mayHoldNew(s, t) && t.info.old === 'unreadable' ? 'old' : 'unknown';
  if (t.holds === null) return 'absent';
  if (t.holds === s.newFingerprint) return 'new';
  if (t.holds === t.info.old || t.holds === s.oldFingerprint) return 'old';
  return 'other';
}

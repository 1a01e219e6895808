import { waitTimeoutMs } from '../types.ts';
import type * as K8s from '@kubernetes/client-node';
import { Secret } from '../../core/secret.ts';
import { TargetError, toTargetError } from '../../core/errors.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { verifyByReadBack } from '../common.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import type { KubernetesConfig, KubernetesReceipt } from './index.ts';
import { POLL_DEFAULTS } from '../../runtime/poll.ts';
import { parseWorkloadRef } from './rollout.ts';
import { Cluster, type Obj } from './cluster.ts';
import { Workloads } from './workloads.ts';

/** What keyrot records on the Secret it writes: which rotation wrote the key, and when. */
export const ANNOTATIONS = {
  rotation: 'keyrot.dev/rotation',
  fingerprint: 'keyrot.dev/fingerprint',
  writtenAt: 'keyrot.dev/written-at',
} as const;

/** Bounded optimistic-concurrency loop on 409 (the one retry the adapter owns; brief: engine/retry.ts). */
export const MAX_CONFLICT_TRIES = 5;
const DEFAULT_ROLLOUT_TIMEOUT_MS = 5 * 60_000;

export interface KubernetesInternals {
  /** Where the pod's service account is mounted (tests). */
  serviceAccountDir?: string;
  /** First rollout poll interval (then POLL_DEFAULTS' backoff and cap). */
  pollMs?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The time this rotation last wrote the key (its annotation), or null when it never did. */
function writtenBy(s: K8s.V1Secret, op: OpContext): number | null {
  const a = s.metadata?.annotations ?? {};
  if (a[ANNOTATIONS.rotation] !== op.rotationId) return null;
  const t = Date.parse(a[ANNOTATIONS.writtenAt] ?? '');
  return Number.isFinite(t) ? t : null;
}

export async function createKubernetesTarget(
  config: KubernetesConfig & CommonTargetConfig,
  ctx: TargetContext & { name: string },
  internals: KubernetesInternals = {},
): Promise<Target<KubernetesReceipt>> {
  const k8s = await import('@kubernetes/client-node');
  return new KubernetesTarget(new Cluster(k8s, config, ctx, internals.serviceAccountDir), config, ctx, internals);
}

/** One key of one Kubernetes Secret; with `restart:`, the workloads that read it are restarted. */
class KubernetesTarget implements Target<KubernetesReceipt> {
  readonly id = 'kubernetes' as const;
  readonly name: string;
  readonly location: string;
  readonly lockKey: string;
  readonly rateLimitKey: string;
  /**
   * Pods read a Secret at start: with workloads listed in restart:, they are restarted (after a
   * write, and again after a restore) and the rollouts waited for. Without, there is no redeploy.
   */
  readonly redeploy?: (op: OpContext) => Promise<VerifyResult>;
  private readonly cluster: Cluster;
  private readonly workloads: Workloads;
  private readonly ctx: TargetContext & { name: string };
  private readonly key: string;
  private readonly timeoutMs: number;
  private readonly where: string;
  private readonly immutable: string;

  constructor(cluster: Cluster, config: KubernetesConfig & CommonTargetConfig, ctx: TargetContext & { name: string }, internals: KubernetesInternals) {
    const { ns, secretName } = cluster;
    this.cluster = cluster;
    this.ctx = ctx;
    this.name = ctx.name;
    this.key = config.key ?? ctx.varName;
    this.timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_ROLLOUT_TIMEOUT_MS);
    const wait = { timeoutMs: this.timeoutMs, pollMs: internals.pollMs ?? POLL_DEFAULTS.intervalMs };
    this.workloads = new Workloads(cluster, (config.restart ?? []).map(parseWorkloadRef), ctx, wait);
    this.where = `Kubernetes secret ${ns}/${secretName} key ${this.key}`;
    this.immutable = `${this.where}: the secret is immutable (immutable: true), so its data cannot change; make it mutable or point the workloads at a new secret`;
    this.location = `${config.context ? `${config.context}:` : ''}${ns}/${secretName}[${this.key}]`;
    this.lockKey = `kubernetes:${config.context ?? ''}:${ns}/${secretName}`;
    this.rateLimitKey = cluster.rateLimitKey;
    if (this.workloads.list.length) this.redeploy = (op) => this.rollOut(op);
  }

  /** The key's value (decoded), or null when the key is absent or empty. Secret data is base64. */
  private valueIn(s: K8s.V1Secret): string | null {
    const raw = s.data?.[this.key];
    if (raw === undefined || raw === null) return null;
    const v = Buffer.from(raw, 'base64').toString('utf8');
    return v === '' ? null : v;
  }

  private asRead(s: K8s.V1Secret): ReadResult {
    const v = this.valueIn(s);
    return v === null ? { kind: 'absent' } : { kind: 'value', value: new Secret(v) };
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    return this.asRead(await this.cluster.readSecret('read', signal));
  }

  async preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const notes: string[] = [];
    const error = (reason: string): PreflightResult => ({ status: 'blocked', reason, current: { kind: 'unreadable', reason } });
    try {
      let s: K8s.V1Secret;
      try {
        s = await this.cluster.readSecret('preflight', signal);
      } catch (err) {
        if (err instanceof TargetError && err.kind === 'not-found') return error(await this.missingSecret(signal));
        throw err;
      }
      const problem = (await this.secretProblem(s, notes, signal)) ?? (await this.workloadProblem(notes, signal));
      if (problem) return error(problem);
      const current = this.asRead(s);
      if (current.kind === 'absent') notes.push(`key ${this.key} is not in secret ${this.cluster.secretName} yet: it will be added`);
      if (this.workloads.list.length) notes.push(`restarts ${this.workloads.labels()} after the write and waits up to ${formatDuration(this.timeoutMs)} for the rollout`);
      return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
    } catch (err) {
      const e = toTargetError(err, this.name, 'preflight');
      // Transient (429, 5xx, timeout): not an answer; the engine retries it, bounded.
      if (e.retryable) throw e;
      return error(e.message);
    }
  }

  /** Why keyrot cannot (or should not) change this Secret; Helm management is only a note. */
  private async secretProblem(s: K8s.V1Secret, notes: string[], signal?: AbortSignal): Promise<string | null> {
    if (s.immutable) return this.immutable;
    const owner = (s.metadata?.ownerReferences ?? []).find((o) => o.controller);
    if (owner) return `${this.where}: the secret is managed by ${owner.kind} ${owner.name} (ownerReferences), which would overwrite keyrot's change; rotate the key at that controller's source instead`;
    if (s.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'Helm') {
      notes.push('the secret is managed by Helm: change the chart values too, or the next helm upgrade puts the old key back');
    }
    return this.cluster.canI('patch', '', 'secrets', this.cluster.secretName, notes, signal);
  }

  /** Why a workload listed in restart: cannot be restarted (missing, refused by kubectl, or not allowed). */
  private async workloadProblem(notes: string[], signal?: AbortSignal): Promise<string | null> {
    for (const w of this.workloads.list) {
      let obj: Obj;
      try {
        obj = await this.cluster.readWorkload(w, 'preflight', signal);
      } catch (err) {
        if (err instanceof TargetError && err.kind === 'not-found') return `Kubernetes ${w.label} (listed in restart:) does not exist in namespace ${this.cluster.ns}`;
        throw err;
      }
      const refusal = this.workloads.unrestartable(w, obj) ?? (await this.cluster.canI('patch', 'apps', w.resource, w.name, notes, signal));
      if (refusal) return refusal;
    }
    return null;
  }

  /** The secret is missing: say whether it is the namespace or the secret. */
  private async missingSecret(signal?: AbortSignal): Promise<string> {
    const { ns, secretName } = this.cluster;
    try {
      await this.cluster.readNamespace(signal);
      return `Kubernetes secret ${secretName} does not exist in namespace ${ns}: create it first (keyrot changes one key of an existing secret and never creates one)`;
    } catch (err) {
      if (err instanceof TargetError && err.kind === 'not-found') return `Kubernetes namespace ${ns} does not exist (context "${this.cluster.context()}")`;
      return `Kubernetes secret ${secretName} not found in namespace ${ns} (or the namespace does not exist)`;
    }
  }

  async write(value: Secret, op: OpContext): Promise<KubernetesReceipt> {
    const { secret, changed } = await this.setKey(value.reveal(), value.fingerprint, op, 'write');
    return {
      context: this.cluster.context(),
      namespace: this.cluster.ns,
      secret: this.cluster.secretName,
      key: this.key,
      resourceVersion: secret.metadata?.resourceVersion ?? null,
      changed,
    };
  }

  verify(value: Secret, op: OpContext): Promise<VerifyResult> {
    return verifyByReadBack(() => this.read(op.signal), value, this.name, `secret ${this.cluster.ns}/${this.cluster.secretName} key ${this.key}`);
  }

  async restore(previous: Secret | null, op: OpContext): Promise<void> {
    const { secret, changed } = await this.setKey(previous ? previous.reveal() : null, previous ? previous.fingerprint : null, op, 'restore');
    if (this.workloads.list.length === 0) return;
    // Pods need a restart only if this rotation ever changed the key. A restore that just put
    // the old value back restarts every workload; a repeated one only those not restarted since.
    const after = writtenBy(secret, op);
    if (after === null) return;
    if (changed) this.ctx.logger.info(`${this.where} restored; restarting ${this.workloads.labels()}`);
    await this.workloads.restartAndWait(after, changed, 'restore', op.signal);
  }

  private async rollOut(op: OpContext): Promise<VerifyResult> {
    const after = writtenBy(await this.cluster.readSecret('redeploy', op.signal), op);
    const restarted = await this.workloads.restartAndWait(after, after === null, 'redeploy', op.signal);
    const skipped = this.workloads.list.length - restarted.length;
    return { method: 'redeploy', detail: `${this.workloads.labels()} rolled out${skipped ? ` (${skipped} already restarted for this change)` : ''}` };
  }

  /**
   * Sets (or, with null, removes) only our key with a JSON merge patch that carries the read
   * `metadata.resourceVersion`: a concurrent writer makes it a 409 (apiserver patch precondition),
   * and keyrot re-reads and tries again, at most MAX_CONFLICT_TRIES times. Other keys are not in
   * the patch, so they cannot change. The same value already there is no write at all.
   */
  private async setKey(value: string | null, fp: string | null, op: OpContext, opName: string): Promise<{ secret: K8s.V1Secret; changed: boolean }> {
    for (let attempt = 1; ; attempt++) {
      const s = await this.cluster.readSecret(opName, op.signal);
      if (this.valueIn(s) === value) return { secret: s, changed: false };
      if (s.immutable) throw new TargetError(this.immutable, { target: this.name, op: opName, kind: 'invalid', retryable: false });
      const body = {
        metadata: {
          resourceVersion: s.metadata?.resourceVersion,
          annotations: { [ANNOTATIONS.rotation]: op.rotationId, [ANNOTATIONS.fingerprint]: fp, [ANNOTATIONS.writtenAt]: iso(this.ctx.clock.now()) },
        },
        data: { [this.key]: value === null ? null : Buffer.from(value, 'utf8').toString('base64') },
      };
      try {
        return { secret: await this.cluster.patchSecret(body, opName, op.signal), changed: true };
      } catch (err) {
        if (!(err instanceof TargetError) || err.kind !== 'conflict') throw err;
        if (attempt >= MAX_CONFLICT_TRIES) {
          throw new TargetError(
            `${this.where}: the secret changed under keyrot ${MAX_CONFLICT_TRIES} times in a row (409 Conflict on resourceVersion); another writer (a controller or a job) keeps updating it: stop it and retry`,
            { target: this.name, op: opName, kind: 'conflict', retryable: false, status: 409, cause: err },
          );
        }
        this.ctx.logger.debug(`${this.where}: resourceVersion conflict, re-reading (attempt ${attempt + 1}/${MAX_CONFLICT_TRIES})`);
        await this.ctx.clock.sleep(100 * attempt, op.signal);
      }
    }
  }
}

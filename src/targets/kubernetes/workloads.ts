import { TargetError } from '../../core/errors.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { poll } from '../../runtime/poll.ts';
import type { TargetContext } from '../types.ts';
import type { Cluster, Obj } from './cluster.ts';
import { RESTARTED_AT, restartedAtValue, rolloutStatus, type WorkloadRef } from './rollout.ts';

/**
 * The workloads listed in `restart:`: restarted as `kubectl rollout restart` does, and waited for
 * as `kubectl rollout status` does, under one deadline.
 */
export class Workloads {
  readonly list: WorkloadRef[];
  private readonly cluster: Cluster;
  private readonly ctx: TargetContext & { name: string };
  private readonly timeoutMs: number;
  private readonly pollMs: number;

  constructor(cluster: Cluster, list: WorkloadRef[], ctx: TargetContext & { name: string }, wait: { timeoutMs: number; pollMs: number }) {
    this.cluster = cluster;
    this.list = list;
    this.ctx = ctx;
    this.timeoutMs = wait.timeoutMs;
    this.pollMs = wait.pollMs;
  }

  labels(): string {
    return this.list.map((w) => w.label).join(', ');
  }

  /** Why `kubectl rollout restart` / `rollout status` would refuse this workload, or null. */
  unrestartable(w: WorkloadRef, obj: Obj): string | null {
    const { ns } = this.cluster;
    if (w.kind === 'deployment' && obj.spec?.paused) {
      return `Kubernetes ${w.label} in namespace ${ns} is paused, and kubectl refuses to restart a paused deployment: run kubectl -n ${ns} rollout resume ${w.label} first`;
    }
    if (w.kind !== 'deployment' && (obj.spec?.updateStrategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') {
      return `Kubernetes ${w.label} in namespace ${ns} uses the ${obj.spec.updateStrategy.type} update strategy: a restart does not replace its pods, so they would keep the old key; switch it to RollingUpdate or restart its pods yourself`;
    }
    return null;
  }

  /**
   * Restarts the listed workloads, then waits for all their rollouts under one deadline.
   * `after` is this rotation's last write of the key (null: unknown). With `all` false, a workload
   * whose restartedAt is later than that write was already restarted for it and is left alone, so
   * a repeated call restarts nothing new.
   */
  async restartAndWait(after: number | null, all: boolean, op: string, signal?: AbortSignal): Promise<string[]> {
    const deadline = this.ctx.clock.now() + this.timeoutMs;
    const restarted: string[] = [];
    for (const w of this.list) {
      const obj = await this.cluster.readWorkload(w, op, signal);
      const refusal = this.unrestartable(w, obj);
      if (refusal) throw new TargetError(refusal, { target: this.ctx.name, op, kind: 'invalid', retryable: false });
      const last = Date.parse(obj.spec?.template?.metadata?.annotations?.[RESTARTED_AT] ?? '');
      if (!all && after !== null && Number.isFinite(last) && last > after) continue;
      await this.restart(w, obj, after, op, signal);
      restarted.push(w.label);
    }
    for (const w of this.list) await this.waitRollout(w, deadline, op, signal);
    return restarted;
  }

  /** `kubectl rollout restart`: a strategic-merge patch of the pod template's restartedAt annotation. */
  private async restart(w: WorkloadRef, obj: Obj, after: number | null, op: string, signal?: AbortSignal): Promise<void> {
    const ts = restartedAtValue(this.ctx.clock.now(), after, obj.spec?.template?.metadata?.annotations?.[RESTARTED_AT]);
    const body = { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: ts } } } } };
    await this.cluster.patchWorkload(w, body, op, signal);
    this.ctx.logger.info(`restarted ${w.label} in namespace ${this.cluster.ns}`);
  }

  /** `kubectl rollout status` with a deadline, polling with ctx.clock. Transient read errors keep polling. */
  private async waitRollout(w: WorkloadRef, deadline: number, op: string, signal?: AbortSignal): Promise<void> {
    const { ns } = this.cluster;
    const { ctx } = this;
    let seen = 'no status read yet';
    await poll({
      check: () => this.cluster.readWorkload(w, op, signal),
      until: (obj) => {
        const v = rolloutStatus(w.kind, obj);
        if (v.failure) {
          throw new TargetError(`Kubernetes ${w.label} in namespace ${ns}: ${v.failure}; check kubectl -n ${ns} describe ${w.label}`, { target: ctx.name, op, kind: 'timeout', retryable: false });
        }
        seen = v.message;
        return v.done;
      },
      deadlineMs: Math.max(0, deadline - ctx.clock.now()),
      intervalMs: this.pollMs,
      clock: ctx.clock,
      signal,
      target: ctx.name,
      op,
      describe: (_last, err) =>
        `Kubernetes ${w.label} in namespace ${ns} did not finish its rollout within ${formatDuration(this.timeoutMs)} (last seen: ${(err?.message ?? seen).replace(/\.\.\.$/, '')}); check kubectl -n ${ns} rollout status ${w.label}`,
    });
  }
}

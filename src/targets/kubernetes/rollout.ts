/**
 * `kubectl rollout restart` and `kubectl rollout status`, for Deployments, StatefulSets and
 * DaemonSets, as pure functions over the objects client-node returns.
 */
export const WORKLOAD_KINDS = ['deployment', 'statefulset', 'daemonset'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export interface WorkloadRef {
  kind: WorkloadKind;
  name: string;
  /** `deployment/api`: how messages name it (and what kubectl accepts). */
  label: string;
  /** RBAC resource: deployments, statefulsets, daemonsets. */
  resource: string;
}

/** The annotation `kubectl rollout restart` sets on the pod template (kubectl objectrestarter.go). */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

const ALIASES: Record<string, WorkloadKind> = {
  deployment: 'deployment',
  deployments: 'deployment',
  deploy: 'deployment',
  statefulset: 'statefulset',
  statefulsets: 'statefulset',
  sts: 'statefulset',
  daemonset: 'daemonset',
  daemonsets: 'daemonset',
  ds: 'daemonset',
};

/** `deploy/api`, `deployments.apps/api`, `sts/db` → a normalized reference (the schema validated the shape). */
export function parseWorkloadRef(ref: string): WorkloadRef {
  const [rawKind = '', name = ''] = ref.split('/');
  const kind = ALIASES[rawKind.toLowerCase().replace(/\.apps$/, '')];
  if (!kind || !name) throw new Error(`not a workload reference: ${ref}`);
  return { kind, name, label: `${kind}/${name}`, resource: `${kind}s` };
}

/**
 * The restartedAt value. kubectl writes `time.Now().Format(time.RFC3339)` (whole seconds); keyrot
 * writes RFC 3339 with milliseconds, and never earlier than just after `after` (the write the
 * restart follows), so comparing the annotation with the secret's keyrot.dev/written-at tells
 * whether the pods were restarted after that write. A template that already carries the exact
 * value gets the next millisecond (an unchanged template would start no rollout).
 */
export function restartedAtValue(now: number, after: number | null, current: string | undefined): string {
  let t = after === null ? now : Math.max(now, after + 1);
  if (current === new Date(t).toISOString()) t += 1;
  return new Date(t).toISOString();
}

export interface RolloutVerdict {
  done: boolean;
  /** kubectl's own progress line ("Waiting for deployment "api" rollout to finish: ..."). */
  message: string;
  /** The rollout cannot finish (progress deadline exceeded) or cannot be judged (OnDelete). */
  failure?: string;
}

type Obj = Record<string, any>;

/**
 * kubectl's rules, transcribed from kubernetes/kubectl pkg/polymorphichelpers/rollout_status.go
 * @ 53ef3abb02e5 (DeploymentStatusViewer, DaemonSetStatusViewer, StatefulSetStatusViewer).
 */
export function rolloutStatus(kind: WorkloadKind, obj: Obj): RolloutVerdict {
  const name: string = obj.metadata?.name ?? '';
  const generation: number = obj.metadata?.generation ?? 0;
  const st: Obj = obj.status ?? {};
  const observed: number = st.observedGeneration ?? 0;

  if (kind === 'deployment') {
    if (generation <= observed) {
      const progressing = (st.conditions ?? []).find((c: Obj) => c.type === 'Progressing');
      if (progressing?.reason === 'ProgressDeadlineExceeded') {
        return { done: false, message: `deployment "${name}" exceeded its progress deadline`, failure: `deployment "${name}" exceeded its progress deadline` };
      }
      const replicas: number | undefined = obj.spec?.replicas;
      const updated: number = st.updatedReplicas ?? 0;
      if (replicas !== undefined && updated < replicas) {
        return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${replicas} new replicas have been updated...` };
      }
      if ((st.replicas ?? 0) > updated) {
        return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${(st.replicas ?? 0) - updated} old replicas are pending termination...` };
      }
      if ((st.availableReplicas ?? 0) < updated) {
        return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${st.availableReplicas ?? 0} of ${updated} updated replicas are available...` };
      }
      return { done: true, message: `deployment "${name}" successfully rolled out` };
    }
    return { done: false, message: 'Waiting for deployment spec update to be observed...' };
  }

  if (kind === 'daemonset') {
    if ((obj.spec?.updateStrategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') {
      return { done: false, message: '', failure: 'rollout status is only available for RollingUpdate strategy type' };
    }
    if (generation <= observed) {
      const desired: number = st.desiredNumberScheduled ?? 0;
      const updated: number = st.updatedNumberScheduled ?? 0;
      if (updated < desired) {
        return { done: false, message: `Waiting for daemon set "${name}" rollout to finish: ${updated} out of ${desired} new pods have been updated...` };
      }
      if ((st.numberAvailable ?? 0) < desired) {
        return { done: false, message: `Waiting for daemon set "${name}" rollout to finish: ${st.numberAvailable ?? 0} of ${desired} updated pods are available...` };
      }
      return { done: true, message: `daemon set "${name}" successfully rolled out` };
    }
    return { done: false, message: 'Waiting for daemon set spec update to be observed...' };
  }

  const strategy: Obj = obj.spec?.updateStrategy ?? { type: 'RollingUpdate' };
  if ((strategy.type ?? 'RollingUpdate') !== 'RollingUpdate') {
    return { done: false, message: '', failure: 'rollout status is only available for RollingUpdate strategy type' };
  }
  if (observed === 0 || generation > observed) return { done: false, message: 'Waiting for statefulset spec update to be observed...' };
  const replicas: number | undefined = obj.spec?.replicas;
  if (replicas !== undefined && (st.readyReplicas ?? 0) < replicas) {
    return { done: false, message: `Waiting for ${replicas - (st.readyReplicas ?? 0)} pods to be ready...` };
  }
  const partition: number | undefined = strategy.rollingUpdate?.partition;
  if (strategy.rollingUpdate && replicas !== undefined && partition !== undefined) {
    if ((st.updatedReplicas ?? 0) < replicas - partition) {
      return { done: false, message: `Waiting for partitioned roll out to finish: ${st.updatedReplicas ?? 0} out of ${replicas - partition} new pods have been updated...` };
    }
  }
  if (strategy.rollingUpdate) return { done: true, message: `partitioned roll out complete: ${st.updatedReplicas ?? 0} new pods have been updated...` };
  if (st.updateRevision !== st.currentRevision) {
    return { done: false, message: `waiting for statefulset rolling update to complete ${st.updatedReplicas ?? 0} pods at revision ${st.updateRevision}...` };
  }
  return { done: true, message: `statefulset rolling update complete ${st.currentReplicas ?? 0} pods at revision ${st.currentRevision}...` };
}

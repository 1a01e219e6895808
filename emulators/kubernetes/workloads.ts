import { createHash } from 'node:crypto';

/**
 * The controller side of the emulator: how Deployment / StatefulSet / DaemonSet status moves after
 * a pod-template change (e.g. `kubectl rollout restart`). Status is computed from the time since the
 * template changed, so a test can share a fake clock with the adapter's polling.
 *
 * The fields follow what kubectl's rollout status rules read (kubernetes/kubectl
 * pkg/polymorphichelpers/rollout_status.go @ 53ef3abb02e5): a rollout in progress shows first an
 * unobserved generation, then a surge pod that is updated but old pods still present, then done.
 */
export const WORKLOAD_KINDS = ['deployments', 'statefulsets', 'daemonsets'] as const;
export type WorkloadResource = (typeof WORKLOAD_KINDS)[number];

export type RolloutBehaviour =
  /** The rollout completes `delayMs` after the template change (the default). */
  | { mode: 'progress'; delayMs?: number }
  /** New pods never become available: the rollout never completes. */
  | { mode: 'stuck' }
  /** Like stuck, and after `delayMs` the Deployment reports ProgressDeadlineExceeded. */
  | { mode: 'deadline'; delayMs?: number };

export interface RolloutState {
  /** When the current template was set (null: steady since seeding). */
  startedAt: number | null;
  /** Hash of the template before the change (StatefulSet currentRevision while rolling). */
  previousRevision: string;
  /** DaemonSets: how many nodes the emulated cluster schedules a pod on. */
  nodes: number;
  /**
   * What the pods read from the Secrets their template names (`envFrom`): `serving`, the pods
   * that run now; `next`, the pods of a rollout under way (they read the Secrets when the rollout
   * started; they take over once it completes). What a consumer of the key really runs.
   */
  serving: Record<string, string>;
  next?: Record<string, string>;
}

/** Whether the rollout started at `state.startedAt` has completed by `now`. */
export function rolloutDone(state: RolloutState, behaviour: RolloutBehaviour, now: number): boolean {
  if (state.startedAt === null) return true;
  const delay = behaviour.mode === 'stuck' ? Infinity : (behaviour.delayMs ?? 1500);
  return behaviour.mode === 'progress' && now - state.startedAt >= delay;
}

type Obj = Record<string, any>;

export function templateRevision(name: string, template: unknown): string {
  return `${name}-${createHash('sha256').update(JSON.stringify(template ?? {})).digest('hex').slice(0, 10)}`;
}

function condition(type: string, status: 'True' | 'False', reason: string, message: string, at: string): Obj {
  return { type, status, reason, message, lastUpdateTime: at, lastTransitionTime: at };
}

/** The `status` the controller would report now. */
export function workloadStatus(
  resource: WorkloadResource,
  obj: Obj,
  state: RolloutState,
  behaviour: RolloutBehaviour,
  now: number,
): Obj {
  const gen: number = obj.metadata.generation ?? 1;
  const name: string = obj.metadata.name;
  const delay = behaviour.mode === 'stuck' ? Infinity : (behaviour.delayMs ?? 1500);
  const elapsed = state.startedAt === null ? Infinity : now - state.startedAt;
  const steady = rolloutDone(state, behaviour, now);
  // The controller needs a moment to notice the new generation.
  const observed = steady || elapsed >= Math.min(250, delay / 4) ? gen : gen - 1;
  const at = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const rev = templateRevision(name, obj.spec?.template);

  if (resource === 'deployments') {
    const r: number = obj.spec?.replicas ?? 1;
    if (steady || r === 0) {
      return {
        observedGeneration: gen,
        replicas: r,
        updatedReplicas: r,
        readyReplicas: r,
        availableReplicas: r,
        conditions: [
          condition('Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.', at),
          condition('Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${rev}" has successfully progressed.`, at),
        ],
      };
    }
    const deadline = behaviour.mode === 'deadline' && elapsed >= delay;
    return {
      observedGeneration: observed,
      // One surge pod of the new ReplicaSet, the old ones still serving.
      replicas: r + 1,
      updatedReplicas: 1,
      readyReplicas: r,
      availableReplicas: r,
      unavailableReplicas: 1,
      conditions: [
        condition('Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.', at),
        deadline
          ? condition('Progressing', 'False', 'ProgressDeadlineExceeded', `ReplicaSet "${rev}" has timed out progressing.`, at)
          : condition('Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${rev}" is progressing.`, at),
      ],
    };
  }

  if (resource === 'statefulsets') {
    const r: number = obj.spec?.replicas ?? 1;
    if (steady || r === 0) {
      return {
        observedGeneration: gen,
        replicas: r,
        readyReplicas: r,
        currentReplicas: r,
        updatedReplicas: r,
        availableReplicas: r,
        currentRevision: rev,
        updateRevision: rev,
        collisionCount: 0,
      };
    }
    // The highest ordinal is being replaced: one pod not ready, none updated yet.
    return {
      observedGeneration: observed,
      replicas: r,
      readyReplicas: r - 1,
      currentReplicas: r - 1,
      updatedReplicas: 0,
      availableReplicas: r - 1,
      currentRevision: state.previousRevision,
      updateRevision: rev,
      collisionCount: 0,
    };
  }

  const n = state.nodes;
  if (steady || n === 0) {
    return {
      observedGeneration: gen,
      desiredNumberScheduled: n,
      currentNumberScheduled: n,
      numberMisscheduled: 0,
      numberReady: n,
      numberAvailable: n,
      updatedNumberScheduled: n,
    };
  }
  return {
    observedGeneration: observed,
    desiredNumberScheduled: n,
    currentNumberScheduled: n,
    numberMisscheduled: 0,
    numberReady: n - 1,
    numberAvailable: n - 1,
    numberUnavailable: 1,
    updatedNumberScheduled: 0,
  };
}

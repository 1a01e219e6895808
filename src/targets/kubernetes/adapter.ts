import { waitTimeoutMs } from '../types.ts';
import type * as K8s from '@kubernetes/client-node';
import { Secret } from '../../core/secret.ts';
import { TargetError, toTargetError } from '../../core/errors.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { verifyByReadBack } from '../common.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import type { KubernetesConfig, KubernetesReceipt } from './index.ts';
import { loadKubeConfig, type LoadedKubeConfig } from './kubeconfig.ts';
import { k8sError, type Call } from './errors.ts';
import { manualRedirectLibrary } from './transport.ts';
import { POLL_DEFAULTS, poll } from '../../runtime/poll.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, deadlineSignal } from '../../runtime/deadline.ts';
import { RESTARTED_AT, parseWorkloadRef, restartedAtValue, rolloutStatus, type WorkloadKind, type WorkloadRef } from './rollout.ts';

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

interface Clients {
  loaded: LoadedKubeConfig;
  core: K8s.CoreV1Api;
  apps: K8s.AppsV1Api;
  authz: K8s.AuthorizationV1Api;
}

type Obj = Record<string, any>;

const iso = (ms: number) => new Date(ms).toISOString();

export async function createKubernetesTarget(
  config: KubernetesConfig & CommonTargetConfig,
  ctx: TargetContext & { name: string },
  internals: KubernetesInternals = {},
): Promise<Target<KubernetesReceipt>> {
  const k8s = await import('@kubernetes/client-node');
  const httpApi = manualRedirectLibrary(k8s);
  const requestTimeoutMs = waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
  const ns = config.namespace;
  const secretName = config.secret;
  const key = config.key ?? ctx.varName;
  const workloads = (config.restart ?? []).map(parseWorkloadRef);
  const timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_ROLLOUT_TIMEOUT_MS);
  const pollMs = internals.pollMs ?? POLL_DEFAULTS.intervalMs;
  const secretLabel = `secret ${secretName}`;
  const where = `Kubernetes secret ${ns}/${secretName} key ${key}`;
  const immutable = `${where}: the secret is immutable (immutable: true), so its data cannot change; make it mutable or point the workloads at a new secret`;

  let clients: Clients | undefined;
  function connect(): Clients {
    if (!clients) {
      const loaded = loadKubeConfig(k8s, { context: config.context, env: ctx.env, target: ctx.name, serviceAccountDir: internals.serviceAccountDir });
      clients = {
        loaded,
        core: loaded.kc.makeApiClient(k8s.CoreV1Api),
        apps: loaded.kc.makeApiClient(k8s.AppsV1Api),
        authz: loaded.kc.makeApiClient(k8s.AuthorizationV1Api),
      };
    }
    return clients;
  }

  /**
   * Per-call options: the HTTP library that refuses redirects (transport.ts), the caller's abort
   * signal under the call's deadline (client-node has none of its own; the signal also ends a
   * stalled body), and optionally the PATCH Content-Type. client-node's default PATCH type is json-patch
   * (the first entry of the generated list; README "Provider facts"); `setHeaderOptions` overrides it
   * (kubernetes-client/javascript src/middleware.ts, `middlewareMergeStrategy: 'append'`).
   */
  function options(signal: AbortSignal | undefined, contentType?: string): K8s.ConfigurationOptions {
    const sig = deadlineSignal(requestTimeoutMs, signal);
    const withSignal: K8s.ObservableMiddleware = {
      pre: (req) => {
        req.setSignal(sig);
        return new k8s.Observable(Promise.resolve(req));
      },
      post: (res) => new k8s.Observable(Promise.resolve(res)),
    };
    const opts: K8s.ConfigurationOptions = { httpApi, middleware: [withSignal], middlewareMergeStrategy: 'append' };
    return contentType ? k8s.setHeaderOptions('Content-Type', contentType, opts) : opts;
  }

  async function call<T>(c: Call, op: string, fn: (x: Clients) => Promise<T>): Promise<T> {
    const x = connect();
    try {
      return await fn(x);
    } catch (err) {
      throw k8sError(err, c, { target: ctx.name, op, context: x.loaded.context, server: x.loaded.server, now: ctx.clock.now(), timeoutMs: requestTimeoutMs });
    }
  }

  const secretCall = (verb: string): Call => ({ verb, resource: 'secrets', name: secretName, namespace: ns, what: secretLabel });

  function readSecret(op: string, signal?: AbortSignal): Promise<K8s.V1Secret> {
    return call(secretCall('get'), op, (x) => x.core.readNamespacedSecret({ name: secretName, namespace: ns }, options(signal)));
  }

  /** The key's value (decoded), or null when the key is absent or empty. Secret data is base64. */
  function valueIn(s: K8s.V1Secret): string | null {
    const raw = s.data?.[key];
    if (raw === undefined || raw === null) return null;
    const v = Buffer.from(raw, 'base64').toString('utf8');
    return v === '' ? null : v;
  }

  function asRead(s: K8s.V1Secret): ReadResult {
    const v = valueIn(s);
    return v === null ? { kind: 'absent' } : { kind: 'value', value: new Secret(v) };
  }

  async function read(signal?: AbortSignal): Promise<ReadResult> {
    return asRead(await readSecret('read', signal));
  }

  /** The time this rotation last wrote the key (its annotation), or null when it never did. */
  function writtenBy(s: K8s.V1Secret, op: OpContext): number | null {
    const a = s.metadata?.annotations ?? {};
    if (a[ANNOTATIONS.rotation] !== op.rotationId) return null;
    const t = Date.parse(a[ANNOTATIONS.writtenAt] ?? '');
    return Number.isFinite(t) ? t : null;
  }

  /**
   * Sets (or, with null, removes) only our key with a JSON merge patch that carries the read
   * `metadata.resourceVersion`: a concurrent writer makes it a 409 (apiserver patch precondition),
   * and keyrot re-reads and tries again, at most MAX_CONFLICT_TRIES times. Other keys are not in
   * the patch, so they cannot change. The same value already there is no write at all.
   */
  async function setKey(value: string | null, fp: string | null, op: OpContext, opName: string): Promise<{ secret: K8s.V1Secret; changed: boolean }> {
    for (let attempt = 1; ; attempt++) {
      const s = await readSecret(opName, op.signal);
      if (valueIn(s) === value) return { secret: s, changed: false };
      if (s.immutable) {
        throw new TargetError(immutable, {
          target: ctx.name,
          op: opName,
          kind: 'invalid',
          retryable: false,
        });
      }
      const body = {
        metadata: {
          resourceVersion: s.metadata?.resourceVersion,
          annotations: {
            [ANNOTATIONS.rotation]: op.rotationId,
            [ANNOTATIONS.fingerprint]: fp,
            [ANNOTATIONS.writtenAt]: iso(ctx.clock.now()),
          },
        },
        data: { [key]: value === null ? null : Buffer.from(value, 'utf8').toString('base64') },
      };
      try {
        const out = await call(secretCall('patch'), opName, (x) =>
          x.core.patchNamespacedSecret({ name: secretName, namespace: ns, body }, options(op.signal, k8s.PatchStrategy.MergePatch)),
        );
        return { secret: out, changed: true };
      } catch (err) {
        if (!(err instanceof TargetError) || err.kind !== 'conflict') throw err;
        if (attempt >= MAX_CONFLICT_TRIES) {
          throw new TargetError(
            `${where}: the secret changed under keyrot ${MAX_CONFLICT_TRIES} times in a row (409 Conflict on resourceVersion); another writer (a controller or a job) keeps updating it: stop it and retry`,
            { target: ctx.name, op: opName, kind: 'conflict', retryable: false, status: 409, cause: err },
          );
        }
        ctx.logger.debug(`${where}: resourceVersion conflict, re-reading (attempt ${attempt + 1}/${MAX_CONFLICT_TRIES})`);
        await ctx.clock.sleep(100 * attempt, op.signal);
      }
    }
  }

  // ------------------------------------------------------------------ workloads

  const workloadCall = (w: WorkloadRef, verb: string): Call => ({ verb, resource: w.resource, name: w.name, namespace: ns, what: w.label });

  const appsOps: Record<WorkloadKind, { read: (x: Clients, o: K8s.ConfigurationOptions, name: string) => Promise<object>; patch: (x: Clients, o: K8s.ConfigurationOptions, name: string, body: object) => Promise<object> }> = {
    deployment: {
      read: (x, o, name) => x.apps.readNamespacedDeployment({ name, namespace: ns }, o),
      patch: (x, o, name, body) => x.apps.patchNamespacedDeployment({ name, namespace: ns, body }, o),
    },
    statefulset: {
      read: (x, o, name) => x.apps.readNamespacedStatefulSet({ name, namespace: ns }, o),
      patch: (x, o, name, body) => x.apps.patchNamespacedStatefulSet({ name, namespace: ns, body }, o),
    },
    daemonset: {
      read: (x, o, name) => x.apps.readNamespacedDaemonSet({ name, namespace: ns }, o),
      patch: (x, o, name, body) => x.apps.patchNamespacedDaemonSet({ name, namespace: ns, body }, o),
    },
  };

  async function readWorkload(w: WorkloadRef, op: string, signal?: AbortSignal): Promise<Obj> {
    return (await call(workloadCall(w, 'get'), op, (x) => appsOps[w.kind].read(x, options(signal), w.name))) as Obj;
  }

  /** Why `kubectl rollout restart` / `rollout status` would refuse this workload, or null. */
  function unrestartable(w: WorkloadRef, obj: Obj): string | null {
    if (w.kind === 'deployment' && obj.spec?.paused) {
      return `Kubernetes ${w.label} in namespace ${ns} is paused, and kubectl refuses to restart a paused deployment: run kubectl -n ${ns} rollout resume ${w.label} first`;
    }
    if (w.kind !== 'deployment' && (obj.spec?.updateStrategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') {
      return `Kubernetes ${w.label} in namespace ${ns} uses the ${obj.spec.updateStrategy.type} update strategy: a restart does not replace its pods, so they would keep the old key; switch it to RollingUpdate or restart its pods yourself`;
    }
    return null;
  }

  /** `kubectl rollout restart`: a strategic-merge patch of the pod template's restartedAt annotation. */
  async function restart(w: WorkloadRef, obj: Obj, after: number | null, op: string, signal?: AbortSignal): Promise<void> {
    const ts = restartedAtValue(ctx.clock.now(), after, obj.spec?.template?.metadata?.annotations?.[RESTARTED_AT]);
    const body = { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: ts } } } } };
    await call(workloadCall(w, 'patch'), op, (x) => appsOps[w.kind].patch(x, options(signal, k8s.PatchStrategy.StrategicMergePatch), w.name, body));
    ctx.logger.info(`restarted ${w.label} in namespace ${ns}`);
  }

  /** `kubectl rollout status` with a deadline, polling with ctx.clock. Transient read errors keep polling. */
  async function waitRollout(w: WorkloadRef, deadline: number, op: string, signal?: AbortSignal): Promise<void> {
    let seen = 'no status read yet';
    await poll({
      check: () => readWorkload(w, op, signal),
      until: (obj) => {
        const v = rolloutStatus(w.kind, obj);
        if (v.failure) {
          throw new TargetError(`Kubernetes ${w.label} in namespace ${ns}: ${v.failure}; check kubectl -n ${ns} describe ${w.label}`, {
            target: ctx.name,
            op,
            kind: 'timeout',
            retryable: false,
          });
        }
        seen = v.message;
        return v.done;
      },
      deadlineMs: Math.max(0, deadline - ctx.clock.now()),
      intervalMs: pollMs,
      clock: ctx.clock,
      signal,
      target: ctx.name,
      op,
      describe: (_last, err) =>
        `Kubernetes ${w.label} in namespace ${ns} did not finish its rollout within ${formatDuration(timeoutMs)} (last seen: ${(err?.message ?? seen).replace(/\.\.\.$/, '')}); check kubectl -n ${ns} rollout status ${w.label}`,
    });
  }

  /**
   * Restarts the listed workloads, then waits for all their rollouts under one deadline.
   * `after` is this rotation's last write of the key (null: unknown). With `all` false, a workload
   * whose restartedAt is later than that write was already restarted for it and is left alone, so
   * a repeated call restarts nothing new.
   */
  async function restartAndWait(after: number | null, all: boolean, op: string, signal?: AbortSignal): Promise<string[]> {
    const deadline = ctx.clock.now() + timeoutMs;
    const restarted: string[] = [];
    for (const w of workloads) {
      const obj = await readWorkload(w, op, signal);
      const refusal = unrestartable(w, obj);
      if (refusal) throw new TargetError(refusal, { target: ctx.name, op, kind: 'invalid', retryable: false });
      const last = Date.parse(obj.spec?.template?.metadata?.annotations?.[RESTARTED_AT] ?? '');
      if (!all && after !== null && Number.isFinite(last) && last > after) continue;
      await restart(w, obj, after, op, signal);
      restarted.push(w.label);
    }
    for (const w of workloads) await waitRollout(w, deadline, op, signal);
    return restarted;
  }

  // ------------------------------------------------------------------ preflight

  /** Whether the credentials may `verb` the object, asked with a SelfSubjectAccessReview (`kubectl auth can-i`). */
  async function canI(verb: string, group: string, resource: string, name: string, notes: string[], signal?: AbortSignal): Promise<string | null> {
    const review = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: ns, verb, group, resource, name } } };
    try {
      const res = await call({ verb: 'create', resource: 'selfsubjectaccessreviews', namespace: ns, what: 'access review' }, 'preflight', (x) =>
        x.authz.createSelfSubjectAccessReview({ body: review }, options(signal)),
      );
      if (res.status?.allowed) return null;
      return `Kubernetes denied ${verb} on ${resource}/${name} in namespace ${ns} (SelfSubjectAccessReview): grant "${verb}" on ${resource} named ${name} in a Role bound to the identity keyrot runs as (see the kubernetes target README)`;
    } catch (err) {
      if (err instanceof TargetError && (err.kind === 'permission' || err.kind === 'not-found')) {
        notes.push(`could not check in advance whether ${verb} on ${resource}/${name} is allowed (SelfSubjectAccessReview unavailable)`);
        return null;
      }
      throw err;
    }
  }

  /** The secret is missing: say whether it is the namespace or the secret. */
  async function missingSecret(signal?: AbortSignal): Promise<string> {
    try {
      await call({ verb: 'get', resource: 'namespaces', name: ns, namespace: ns, what: `namespace ${ns}` }, 'preflight', (x) =>
        x.core.readNamespace({ name: ns }, options(signal)),
      );
      return `Kubernetes secret ${secretName} does not exist in namespace ${ns}: create it first (keyrot changes one key of an existing secret and never creates one)`;
    } catch (err) {
      if (err instanceof TargetError && err.kind === 'not-found') return `Kubernetes namespace ${ns} does not exist (context "${connect().loaded.context}")`;
      return `Kubernetes secret ${secretName} not found in namespace ${ns} (or the namespace does not exist)`;
    }
  }

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const notes: string[] = [];
    const error = (reason: string): PreflightResult => ({ status: 'blocked', reason, current: { kind: 'unreadable', reason } });
    try {
      let s: K8s.V1Secret;
      try {
        s = await readSecret('preflight', signal);
      } catch (err) {
        if (err instanceof TargetError && err.kind === 'not-found') return error(await missingSecret(signal));
        throw err;
      }
      if (s.immutable) return error(immutable);
      const owner = (s.metadata?.ownerReferences ?? []).find((o) => o.controller);
      if (owner) {
        return error(`${where}: the secret is managed by ${owner.kind} ${owner.name} (ownerReferences), which would overwrite keyrot's change; rotate the key at that controller's source instead`);
      }
      if (s.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'Helm') {
        notes.push('the secret is managed by Helm: change the chart values too, or the next helm upgrade puts the old key back');
      }
      const denied = await canI('patch', '', 'secrets', secretName, notes, signal);
      if (denied) return error(denied);
      for (const w of workloads) {
        let obj: Obj;
        try {
          obj = await readWorkload(w, 'preflight', signal);
        } catch (err) {
          if (err instanceof TargetError && err.kind === 'not-found') return error(`Kubernetes ${w.label} (listed in restart:) does not exist in namespace ${ns}`);
          throw err;
        }
        const refusal = unrestartable(w, obj);
        if (refusal) return error(refusal);
        const no = await canI('patch', 'apps', w.resource, w.name, notes, signal);
        if (no) return error(no);
      }
      const current = asRead(s);
      if (current.kind === 'absent') notes.push(`key ${key} is not in secret ${secretName} yet: it will be added`);
      if (workloads.length) {
        notes.push(`restarts ${workloads.map((w) => w.label).join(', ')} after the write and waits up to ${formatDuration(timeoutMs)} for the rollout`);
      }
      return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
    } catch (err) {
      const e = toTargetError(err, ctx.name, 'preflight');
      // Transient (429, 5xx, timeout): not an answer; the engine retries it, bounded.
      if (e.retryable) throw e;
      return error(e.message);
    }
  }

  // ------------------------------------------------------------------ the target

  const target: Target<KubernetesReceipt> = {
    id: 'kubernetes',
    name: ctx.name,
    location: `${config.context ? `${config.context}:` : ''}${ns}/${secretName}[${key}]`,
    lockKey: `kubernetes:${config.context ?? ''}:${ns}/${secretName}`,
    preflight,
    read,
    async write(value, op): Promise<KubernetesReceipt> {
      const { secret, changed } = await setKey(value.reveal(), value.fingerprint, op, 'write');
      return {
        context: connect().loaded.context,
        namespace: ns,
        secret: secretName,
        key,
        resourceVersion: secret.metadata?.resourceVersion ?? null,
        changed,
      };
    },
    verify: (value, op) => verifyByReadBack(() => read(op.signal), value, ctx.name, `secret ${ns}/${secretName} key ${key}`),
    async restore(previous, op) {
      const { secret, changed } = await setKey(previous ? previous.reveal() : null, previous ? previous.fingerprint : null, op, 'restore');
      if (workloads.length === 0) return;
      // Pods need a restart only if this rotation ever changed the key. A restore that just put
      // the old value back restarts every workload; a repeated one only those not restarted since.
      const after = writtenBy(secret, op);
      if (after === null) return;
      if (changed) ctx.logger.info(`${where} restored; restarting ${workloads.map((w) => w.label).join(', ')}`);
      await restartAndWait(after, changed, 'restore', op.signal);
    },
  };
  // Pods read a Secret at start: with workloads listed in restart:, they are restarted (after a
  // write, and again after a restore) and the rollouts waited for. Without, there is no redeploy.
  if (workloads.length) target.redeploy = redeploy;
  return target;

  async function redeploy(op: OpContext): Promise<VerifyResult> {
    const after = writtenBy(await readSecret('redeploy', op.signal), op);
    const restarted = await restartAndWait(after, after === null, 'redeploy', op.signal);
    const skipped = workloads.length - restarted.length;
    return { method: 'redeploy', detail: `${workloads.map((w) => w.label).join(', ')} rolled out${skipped ? ` (${skipped} already restarted for this change)` : ''}` };
  }
}

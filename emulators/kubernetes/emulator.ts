import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { HttpEmulator, bearer, type EmuRequest, type EmuResponse } from '../server.ts';
import { PatchError, clone, jsonPatch, mergePatch, strategicMergePatch } from './patch.ts';
import {
  WORKLOAD_KINDS,
  rolloutDone,
  templateRevision,
  workloadStatus,
  type RolloutBehaviour,
  type RolloutState,
  type WorkloadResource,
} from './workloads.ts';

export type { RolloutBehaviour } from './workloads.ts';

/**
 * A loopback subset of the Kubernetes API server, enough for keyrot's kubernetes target and its
 * Lease lock, spoken to by the real @kubernetes/client-node:
 * - discovery: /version, /api, /apis, /api/v1, /apis/{group}/v1;
 * - core/v1 namespaces (get), secrets and configmaps (get, list, create, replace, patch, delete;
 *   a ConfigMap's data is limited to 1 MiB like the API server's);
 * - lists in a namespace or across all of them (`/api/v1/secrets`), in key order, paged with
 *   `limit` and an opaque `continue` token (metadata.continue, remainingItemCount);
 * - apps/v1 deployments, statefulsets, daemonsets (same verbs): a spec change bumps
 *   `metadata.generation`, a pod-template change starts a rollout whose status catches up over time;
 * - coordination.k8s.io/v1 leases (same verbs; an update must carry `metadata.resourceVersion`);
 * - authorization.k8s.io/v1 selfsubjectaccessreviews (answers from the injected denials).
 * Errors are real `Status` objects (kind Status, apiVersion v1, status Failure, message, reason,
 * details, code) with the API server's message texts; resourceVersion preconditions give 409.
 * Bearer-token auth: a missing or unknown token gets the API server's 401.
 */

interface ResourceType {
  resource: string;
  kind: string;
  group: string;
  /** Update (PUT) without metadata.resourceVersion allowed (strategy AllowUnconditionalUpdate). */
  unconditionalUpdate: boolean;
}

const TYPES: Record<string, ResourceType> = {
  secrets: { resource: 'secrets', kind: 'Secret', group: '', unconditionalUpdate: true },
  // pkg/registry/core/configmap/strategy.go: AllowUnconditionalUpdate() = true (keyrot's state
  // store always sends the read resourceVersion anyway).
  configmaps: { resource: 'configmaps', kind: 'ConfigMap', group: '', unconditionalUpdate: true },
  deployments: { resource: 'deployments', kind: 'Deployment', group: 'apps', unconditionalUpdate: true },
  statefulsets: { resource: 'statefulsets', kind: 'StatefulSet', group: 'apps', unconditionalUpdate: true },
  daemonsets: { resource: 'daemonsets', kind: 'DaemonSet', group: 'apps', unconditionalUpdate: true },
  // kubernetes pkg/registry/coordination/lease/strategy.go: AllowUnconditionalUpdate() = false.
  leases: { resource: 'leases', kind: 'Lease', group: 'coordination.k8s.io', unconditionalUpdate: false },
};

const qualified = (t: ResourceType) => (t.group ? `${t.resource}.${t.group}` : t.resource);
const apiVersionOf = (t: ResourceType) => (t.group ? `${t.group}/v1` : 'v1');
const prefixOf = (t: ResourceType) => (t.group ? `/apis/${t.group}/v1` : '/api/v1');

type Obj = Record<string, any>;

/** A `Status` failure body, as the API server writes it (apimachinery metav1.Status). */
export function statusFailure(code: number, reason: string, message: string, details?: Obj): EmuResponse {
  return {
    status: code,
    body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code },
  };
}

class ApiError extends Error {
  readonly response: EmuResponse;
  constructor(response: EmuResponse) {
    super(String((response.body as Obj | undefined)?.message ?? response.status));
    this.response = response;
  }
}

function detailsOf(t: ResourceType, name?: string): Obj {
  return { ...(name ? { name } : {}), ...(t.group ? { group: t.group } : {}), kind: t.resource };
}

const notFound = (t: ResourceType, name: string) =>
  new ApiError(statusFailure(404, 'NotFound', `${qualified(t)} "${name}" not found`, detailsOf(t, name)));

const conflict = (t: ResourceType, name: string) =>
  new ApiError(
    statusFailure(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualified(t)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      detailsOf(t, name),
    ),
  );

function invalid(t: ResourceType, name: string, field: string, detail: string): ApiError {
  const kind = t.group ? `${t.kind}.${t.group}` : t.kind;
  return new ApiError(
    statusFailure(422, 'Invalid', `${kind} "${name}" is invalid: ${field}: ${detail}`, {
      name,
      ...(t.group ? { group: t.group } : {}),
      kind: t.kind,
      causes: [{ reason: 'FieldValueInvalid', message: detail, field }],
    }),
  );
}

const badRequest = (message: string) => new ApiError(statusFailure(400, 'BadRequest', message));

const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
] as const;

const DATA_KEY_RE = /^[-._a-zA-Z0-9]+$/;
/** core/v1 validation.MaxSecretSize = 1 MiB: data plus binaryData of a ConfigMap (ValidateConfigMap). */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// metav1.MicroTime is parsed with RFC3339Micro ("2006-01-02T15:04:05.000000Z07:00"): exactly 6 digits.
const MICROTIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

export interface Denial {
  verb: string;
  resource: string;
  namespace?: string;
  name?: string;
  /** Only the all-namespaces request is denied (Roles in namespaces, no ClusterRole). */
  clusterScope?: boolean;
}

export interface KubernetesEmulatorOptions {
  /** The time source of the controllers (rollout progress). Share a test's fake clock here. */
  now?: () => number;
  /** How long a rollout takes to complete by default (ms). */
  rolloutDelayMs?: number;
  /** The user the token authenticates as (shown in Forbidden messages). */
  user?: string;
  /** Serve HTTPS with this self-signed certificate (its cert is put in the kubeconfig as the CA). */
  tls?: { key: string; cert: string };
}

export interface SeedSecretOptions {
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  type?: string;
  immutable?: boolean;
  ownerReferences?: Obj[];
}

export interface SeedWorkloadOptions {
  replicas?: number;
  paused?: boolean;
  /** StatefulSet / DaemonSet update strategy (default RollingUpdate). */
  updateStrategy?: 'RollingUpdate' | 'OnDelete';
  /** DaemonSet: nodes it runs on (default 1). */
  nodes?: number;
  annotations?: Record<string, string>;
  /** The Secret its container reads its environment from (`envFrom`; default openai-api-key). */
  secret?: string;
}

export interface SecretView {
  /** Decoded (UTF-8) values. */
  data: Record<string, string>;
  /** The base64 strings as stored. */
  rawData: Record<string, string>;
  annotations: Record<string, string>;
  labels: Record<string, string>;
  resourceVersion: string;
  object: Obj;
}

/** `deployment/x`, `deploy`, `deployments`, `sts`, `ds` → the plural resource. */
export function workloadResource(kind: string): WorkloadResource {
  const k = kind.toLowerCase().replace(/\.apps$/, '');
  if (['deployment', 'deployments', 'deploy'].includes(k)) return 'deployments';
  if (['statefulset', 'statefulsets', 'sts'].includes(k)) return 'statefulsets';
  if (['daemonset', 'daemonsets', 'ds'].includes(k)) return 'daemonsets';
  throw new Error(`not a workload kind: ${kind}`);
}

export class KubernetesEmulator extends HttpEmulator {
  readonly user: string;
  /** Successful writes (create, replace, patch, delete) per resource, e.g. writes.secrets. */
  readonly writes: Record<string, number> = {};
  private readonly now: () => number;
  private readonly objects = new Map<string, Obj>();
  private readonly namespaces = new Map<string, Obj>();
  private readonly rollouts = new Map<string, RolloutState>();
  private readonly behaviours = new Map<string, RolloutBehaviour>();
  private readonly denials: Denial[] = [];
  private readonly conflicts: Array<{ resource: string; times: number; mutate?: (obj: Obj) => void }> = [];
  private readonly tokens = new Map<string, string>();
  private readonly tls: { key: string; cert: string } | undefined;
  private defaultBehaviour: RolloutBehaviour;
  private rv = 1000;
  private concurrentWrites = 0;
  token: string;

  constructor(opts: KubernetesEmulatorOptions = {}) {
    super({
      name: 'kubernetes',
      tls: opts.tls,
      notFound: (req) =>
        statusFailure(404, 'NotFound', `the server could not find the requested resource (kubernetes emulator: no route for ${req.method} ${req.path})`, {}),
    });
    this.now = opts.now ?? Date.now;
    this.user = opts.user ?? 'system:serviceaccount:keyrot:keyrot';
    this.defaultBehaviour = { mode: 'progress', delayMs: opts.rolloutDelayMs ?? 1500 };
    this.tls = opts.tls;
    this.token = this.newToken();
    this.routes();
  }

  // ---------------------------------------------------------------- test and demo helpers

  /** A new valid bearer token for `user` (default: the emulator's user). */
  newToken(user = this.user): string {
    const t = `emu-${randomBytes(24).toString('base64url')}`;
    this.tokens.set(t, user);
    return t;
  }

  /** The current token stops working: every call with it answers 401 from now on. */
  revokeToken(token = this.token): void {
    this.tokens.delete(token);
  }

  seedNamespace(ns: string): void {
    if (!this.namespaces.has(ns)) {
      this.namespaces.set(ns, {
        kind: 'Namespace',
        apiVersion: 'v1',
        metadata: { name: ns, uid: randomUUID(), resourceVersion: this.nextRv(), creationTimestamp: this.timestamp(), labels: { 'kubernetes.io/metadata.name': ns } },
        spec: { finalizers: ['kubernetes'] },
        status: { phase: 'Active' },
      });
    }
  }

  /** Put a Secret in place (plain-string values, stored base64 like the API server does). */
  seedSecret(ns: string, name: string, data: Record<string, string>, opts: SeedSecretOptions = {}): void {
    this.seedNamespace(ns);
    const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
    this.objects.set(this.key('secrets', ns, name), {
      kind: 'Secret',
      apiVersion: 'v1',
      metadata: {
        name,
        namespace: ns,
        uid: randomUUID(),
        resourceVersion: this.nextRv(),
        creationTimestamp: this.timestamp(),
        ...(opts.labels ? { labels: { ...opts.labels } } : {}),
        ...(opts.annotations ? { annotations: { ...opts.annotations } } : {}),
        ...(opts.ownerReferences ? { ownerReferences: clone(opts.ownerReferences) } : {}),
      },
      ...(opts.immutable !== undefined ? { immutable: opts.immutable } : {}),
      data: encoded,
      type: opts.type ?? 'Opaque',
    });
  }

  getSecret(ns: string, name: string): SecretView | undefined {
    const o = this.objects.get(this.key('secrets', ns, name));
    if (!o) return undefined;
    const rawData: Record<string, string> = { ...(o.data ?? {}) };
    return {
      rawData,
      data: Object.fromEntries(Object.entries(rawData).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
      annotations: { ...(o.metadata.annotations ?? {}) },
      labels: { ...(o.metadata.labels ?? {}) },
      resourceVersion: o.metadata.resourceVersion,
      object: clone(o),
    };
  }

  /** Put a ConfigMap in place (plain-string data). */
  seedConfigMap(ns: string, name: string, data: Record<string, string>): void {
    this.seedNamespace(ns);
    this.objects.set(this.key('configmaps', ns, name), {
      kind: 'ConfigMap',
      apiVersion: 'v1',
      metadata: { name, namespace: ns, uid: randomUUID(), resourceVersion: this.nextRv(), creationTimestamp: this.timestamp() },
      data: { ...data },
    });
  }

  getConfigMap(ns: string, name: string): { data: Record<string, string>; resourceVersion: string; object: Obj } | undefined {
    const o = this.objects.get(this.key('configmaps', ns, name));
    if (!o) return undefined;
    return { data: { ...(o.data ?? {}) }, resourceVersion: o.metadata.resourceVersion, object: clone(o) };
  }

  /** Any stored object (a copy), e.g. getObject('leases', 'keyrot', 'keyrot-production'). */
  getObject(resource: string, ns: string, name: string): Obj | undefined {
    const o = this.objects.get(this.key(resource, ns, name));
    return o ? this.present(resource, o) : undefined;
  }

  /** A Deployment / StatefulSet / DaemonSet with one container, fully rolled out. */
  seedWorkload(kind: string, ns: string, name: string, opts: SeedWorkloadOptions = {}): void {
    const resource = workloadResource(kind);
    const t = TYPES[resource]!;
    this.seedNamespace(ns);
    const labels = { app: name };
    const template = {
      metadata: { labels, ...(opts.annotations ? { annotations: { ...opts.annotations } } : {}) },
      spec: { containers: [{ name: 'app', image: `registry.example/${name}:1`, envFrom: [{ secretRef: { name: opts.secret ?? 'openai-api-key' } }] }] },
    };
    const spec: Obj = { selector: { matchLabels: labels }, template };
    if (resource !== 'daemonsets') spec.replicas = opts.replicas ?? 1;
    if (resource === 'deployments') {
      spec.strategy = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
      spec.progressDeadlineSeconds = 600;
      if (opts.paused) spec.paused = true;
    } else {
      spec.updateStrategy =
        (opts.updateStrategy ?? 'RollingUpdate') === 'RollingUpdate'
          ? { type: 'RollingUpdate', rollingUpdate: resource === 'statefulsets' ? { partition: 0 } : { maxUnavailable: 1, maxSurge: 0 } }
          : { type: 'OnDelete' };
      if (resource === 'statefulsets') spec.serviceName = name;
    }
    const k = this.key(resource, ns, name);
    this.objects.set(k, {
      kind: t.kind,
      apiVersion: 'apps/v1',
      metadata: { name, namespace: ns, uid: randomUUID(), resourceVersion: this.nextRv(), generation: 1, creationTimestamp: this.timestamp(), labels },
      spec,
    });
    this.rollouts.set(k, { startedAt: null, previousRevision: templateRevision(name, template), nodes: opts.nodes ?? 1, serving: this.envOf(ns, template) });
  }

  /**
   * What the running pods of a workload read from the Secrets their template names (`envFrom`),
   * decoded: the values the app really uses. A rollout's new pods take over once it completes.
   */
  runningEnv(kind: string, ns: string, name: string): Record<string, string> | undefined {
    const resource = workloadResource(kind);
    const state = this.rollouts.get(this.key(resource, ns, name));
    if (!state) return undefined;
    this.settle(resource, name, state);
    return { ...state.serving };
  }

  /** The Secrets' values a pod of `template` in `ns` starts with (its containers' `envFrom`). */
  private envOf(ns: string, template: Obj | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of template?.spec?.containers ?? []) {
      for (const from of c.envFrom ?? []) {
        const ref = from.secretRef?.name;
        if (ref) Object.assign(out, this.getSecret(ns, ref)?.data ?? {});
      }
    }
    return out;
  }

  /** A completed rollout's pods are the ones serving. */
  private settle(resource: string, name: string, state: RolloutState): void {
    if (state.next && rolloutDone(state, this.behaviourFor(resource, name), this.now())) {
      state.serving = state.next;
      state.next = undefined;
    }
  }

  /** The workload as the API would return it now (status included). */
  getWorkload(kind: string, ns: string, name: string): Obj | undefined {
    const resource = workloadResource(kind);
    const o = this.objects.get(this.key(resource, ns, name));
    return o ? this.present(resource, o) : undefined;
  }

  /**
   * How rollouts behave from now on: for one workload (`deployment/api`, any namespace) or for
   * every workload (`*`). Applies to rollouts already under way too.
   */
  setRolloutBehaviour(target: string, behaviour: RolloutBehaviour): void {
    if (target === '*') {
      this.defaultBehaviour = behaviour;
      return;
    }
    const [kind, name] = target.split('/');
    this.behaviours.set(`${workloadResource(kind!)}/${name}`, behaviour);
  }

  /** RBAC-ish denial: `verb` on `resource` (optionally one namespace / object) answers 403. */
  deny(verb: string, resource: string, opts: { namespace?: string; name?: string; clusterScope?: boolean } = {}): void {
    this.denials.push({ verb, resource, ...opts });
  }

  allowAll(): void {
    this.denials.length = 0;
  }

  /**
   * Another writer changes the object between keyrot's read and its next write: the write's
   * resourceVersion is then stale and the API server answers 409. `mutate` is what the other
   * writer does (default: it sets an annotation).
   */
  conflictNext(opts: { resource?: string; times?: number; mutate?: (obj: Obj) => void } = {}): void {
    this.conflicts.push({ resource: opts.resource ?? 'secrets', times: opts.times ?? 1, mutate: opts.mutate });
  }

  /** The next request (optionally to `path`) answers APF's 429 with Retry-After. */
  failNextWithRateLimit(opts: { retryAfterSeconds?: number; path?: string | RegExp; times?: number } = {}): void {
    const s = opts.retryAfterSeconds ?? 1;
    const res = statusFailure(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: s });
    this.server.failNext({
      status: 429,
      headers: { 'Retry-After': String(s), 'X-Kubernetes-PF-FlowSchema-UID': randomUUID(), 'X-Kubernetes-PF-PriorityLevel-UID': randomUUID() },
      body: res.body,
      path: opts.path,
      times: opts.times,
    });
  }

  /** A kubeconfig (YAML) whose current context points at this emulator with a token user. */
  kubeconfig(opts: { context?: string; namespace?: string; token?: string } = {}): string {
    const name = opts.context ?? 'keyrot-emulator';
    const cluster: Obj = { server: this.url };
    // client-node 2.x refuses an http:// server unless the cluster skips TLS verification
    // (config.js createDispatcherOptions: "HTTP protocol is not allowed when skipTLSVerify is not set").
    if (this.tls) cluster['certificate-authority-data'] = Buffer.from(this.tls.cert).toString('base64');
    else cluster['insecure-skip-tls-verify'] = true;
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name, cluster }],
      users: [{ name: `${name}-user`, user: { token: opts.token ?? this.token } }],
      contexts: [{ name, context: { cluster: name, user: `${name}-user`, ...(opts.namespace ? { namespace: opts.namespace } : {}) } }],
      'current-context': name,
      preferences: {},
    });
  }

  async writeKubeconfig(path: string, opts: { context?: string; namespace?: string; token?: string } = {}): Promise<string> {
    await writeFile(path, this.kubeconfig(opts), { mode: 0o600 });
    return path;
  }

  // ---------------------------------------------------------------- internals

  private key(resource: string, ns: string, name: string): string {
    return `${resource}/${ns}/${name}`;
  }

  private nextRv(): string {
    return String(++this.rv);
  }

  private timestamp(): string {
    return new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  private behaviourFor(resource: string, name: string): RolloutBehaviour {
    return this.behaviours.get(`${resource}/${name}`) ?? this.defaultBehaviour;
  }

  private present(resource: string, o: Obj): Obj {
    const out = clone(o);
    if ((WORKLOAD_KINDS as readonly string[]).includes(resource)) {
      const k = this.key(resource, o.metadata.namespace, o.metadata.name);
      out.status = workloadStatus(resource as WorkloadResource, o, this.rollouts.get(k)!, this.behaviourFor(resource, o.metadata.name), this.now());
    }
    return out;
  }

  private authenticate(req: EmuRequest): string {
    const token = bearer(req);
    const user = token ? this.tokens.get(token) : undefined;
    if (!user) throw new ApiError(statusFailure(401, 'Unauthorized', 'Unauthorized'));
    return user;
  }

  /** `ns` undefined: a request across all namespaces (the cluster scope). */
  private authorize(user: string, verb: string, t: ResourceType, ns: string | undefined, name?: string): void {
    if (!this.denied(verb, t.resource, ns, name)) return;
    // The authorization filter's text (apiserver endpoints/handlers/responsewriters forbidden()).
    const subject = name ? `${qualified(t)} "${name}"` : qualified(t);
    const scope = ns === undefined ? 'at the cluster scope' : `in the namespace "${ns}"`;
    throw new ApiError(
      statusFailure(403, 'Forbidden', `${subject} is forbidden: User "${user}" cannot ${verb} resource "${t.resource}" in API group "${t.group}" ${scope}`, detailsOf(t, name)),
    );
  }

  private denied(verb: string, resource: string, ns: string | undefined, name?: string): boolean {
    return this.denials.some(
      (d) =>
        (d.verb === verb || d.verb === '*') &&
        (d.resource === resource || d.resource === '*') &&
        (d.clusterScope ? ns === undefined : !d.namespace || d.namespace === ns) &&
        (!d.name || d.name === name),
    );
  }

  private wrap(fn: (req: EmuRequest, user: string) => EmuResponse | Promise<EmuResponse>) {
    return async (req: EmuRequest): Promise<EmuResponse> => {
      try {
        const user = this.authenticate(req);
        return await fn(req, user);
      } catch (err) {
        if (err instanceof ApiError) return err.response;
        throw err;
      }
    };
  }

  private routes(): void {
    const s = this.server;
    s.route('GET', '/version', this.wrap(() => ({
      status: 200,
      body: { major: '1', minor: '32', gitVersion: 'v1.32.0-keyrot-emulator', gitCommit: '', gitTreeState: 'clean', buildDate: '2025-01-01T00:00:00Z', goVersion: 'go1.23.4', compiler: 'gc', platform: 'linux/amd64' },
    })));
    s.route('GET', '/api', this.wrap(() => ({
      status: 200,
      body: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: new URL(this.url).host }] },
    })));
    const groups = ['apps', 'authorization.k8s.io', 'coordination.k8s.io'];
    s.route('GET', '/apis', this.wrap(() => ({
      status: 200,
      body: {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: groups.map((g) => ({ name: g, versions: [{ groupVersion: `${g}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${g}/v1`, version: 'v1' } })),
      },
    })));
    const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update'];
    const resourceList = (groupVersion: string, resources: Obj[]) => this.wrap(() => ({ status: 200, body: { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources } }));
    s.route('GET', '/api/v1', resourceList('v1', [
      { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get'], shortNames: ['ns'] },
      { name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs },
      { name: 'configmaps', singularName: 'configmap', namespaced: true, kind: 'ConfigMap', verbs, shortNames: ['cm'] },
    ]));
    s.route('GET', '/apis/apps/v1', resourceList('apps/v1', [
      { name: 'daemonsets', singularName: 'daemonset', namespaced: true, kind: 'DaemonSet', verbs, shortNames: ['ds'] },
      { name: 'deployments', singularName: 'deployment', namespaced: true, kind: 'Deployment', verbs, shortNames: ['deploy'] },
      { name: 'statefulsets', singularName: 'statefulset', namespaced: true, kind: 'StatefulSet', verbs, shortNames: ['sts'] },
    ]));
    s.route('GET', '/apis/coordination.k8s.io/v1', resourceList('coordination.k8s.io/v1', [
      { name: 'leases', singularName: 'lease', namespaced: true, kind: 'Lease', verbs },
    ]));
    s.route('GET', '/apis/authorization.k8s.io/v1', resourceList('authorization.k8s.io/v1', [
      { name: 'selfsubjectaccessreviews', singularName: 'selfsubjectaccessreview', namespaced: false, kind: 'SelfSubjectAccessReview', verbs: ['create'] },
    ]));

    s.route('GET', '/api/v1/namespaces/:name', this.wrap((req, user) => {
      const ns = req.params.name!;
      if (this.denied('get', 'namespaces', '', ns)) {
        throw new ApiError(statusFailure(403, 'Forbidden', `namespaces "${ns}" is forbidden: User "${user}" cannot get resource "namespaces" in API group "" at the cluster scope`, { name: ns, kind: 'namespaces' }));
      }
      const o = this.namespaces.get(ns);
      if (!o) throw new ApiError(statusFailure(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' }));
      return { status: 200, body: clone(o) };
    }));

    s.route('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', this.wrap((req, user) => {
      if (this.denied('create', 'selfsubjectaccessreviews', '')) {
        throw new ApiError(statusFailure(403, 'Forbidden', `selfsubjectaccessreviews.authorization.k8s.io is forbidden: User "${user}" cannot create resource "selfsubjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope`, { group: 'authorization.k8s.io', kind: 'selfsubjectaccessreviews' }));
      }
      const body = (req.body ?? {}) as Obj;
      const ra = body.spec?.resourceAttributes as Obj | undefined;
      if (!ra) throw invalid({ resource: 'selfsubjectaccessreviews', kind: 'SelfSubjectAccessReview', group: 'authorization.k8s.io', unconditionalUpdate: true }, '', 'spec.resourceAttributes', 'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified');
      const deny = this.denied(ra.verb ?? '', ra.resource ?? '', ra.namespace || undefined, ra.name || undefined);
      return {
        status: 201,
        body: {
          kind: 'SelfSubjectAccessReview',
          apiVersion: 'authorization.k8s.io/v1',
          metadata: { creationTimestamp: null },
          spec: clone(body.spec),
          status: deny ? { allowed: false } : { allowed: true, reason: 'RBAC: allowed by RoleBinding "keyrot/' + (ra.namespace ?? '') + '" of Role "keyrot" to ServiceAccount "keyrot/keyrot"' },
        },
      };
    }));

    for (const t of Object.values(TYPES)) {
      const base = `${prefixOf(t)}/namespaces/:ns/${t.resource}`;
      s.route('GET', `${prefixOf(t)}/${t.resource}`, this.wrap((req, user) => this.list(t, req, user)));
      s.route('GET', base, this.wrap((req, user) => this.list(t, req, user)));
      s.route('POST', base, this.wrap((req, user) => this.create(t, req, user)));
      s.route('GET', `${base}/:name`, this.wrap((req, user) => this.get(t, req, user)));
      s.route('PUT', `${base}/:name`, this.wrap((req, user) => this.replace(t, req, user)));
      s.route('PATCH', `${base}/:name`, this.wrap((req, user) => this.patch(t, req, user)));
      s.route('DELETE', `${base}/:name`, this.wrap((req, user) => this.remove(t, req, user)));
    }
  }

  private existing(t: ResourceType, ns: string, name: string): Obj {
    const o = this.objects.get(this.key(t.resource, ns, name));
    if (!o) throw notFound(t, name);
    return o;
  }

  /** A pending injected conflict: another writer changes the object first. */
  private concurrentWriter(t: ResourceType, ns: string, name: string): void {
    const i = this.conflicts.findIndex((c) => c.resource === t.resource);
    const o = this.objects.get(this.key(t.resource, ns, name));
    if (i < 0 || !o) return;
    const c = this.conflicts[i]!;
    if (--c.times <= 0) this.conflicts.splice(i, 1);
    this.concurrentWrites++;
    if (c.mutate) c.mutate(o);
    else (o.metadata.annotations ??= {})['emulator.keyrot.dev/concurrent-write'] = String(this.concurrentWrites);
    o.metadata.resourceVersion = this.nextRv();
  }

  private get(t: ResourceType, req: EmuRequest, user: string): EmuResponse {
    const { ns, name } = req.params as { ns: string; name: string };
    this.authorize(user, 'get', t, ns, name);
    return { status: 200, body: this.present(t.resource, this.existing(t, ns, name)) };
  }

  /** A namespace's objects, or every namespace's (no `:ns`), in key order, paged by `limit` / `continue`. */
  private list(t: ResourceType, req: EmuRequest, user: string): EmuResponse {
    const ns = req.params.ns;
    if (/^(true|1)$/.test(req.query.get('watch') ?? '')) {
      // Loud rather than a list that a watcher would misread as an event stream.
      return statusFailure(405, 'MethodNotAllowed', 'the kubernetes emulator does not implement watch: poll with get or list');
    }
    this.authorize(user, 'list', t, ns);
    const prefix = `${t.resource}/${ns === undefined ? '' : `${ns}/`}`;
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    const { from, limit } = this.listWindow(req);
    const start = from === undefined ? 0 : keys.findIndex((k) => k > from);
    const slice = (start < 0 ? [] : keys.slice(start)).slice(0, limit ?? keys.length);
    const rest = start < 0 ? 0 : keys.length - start - slice.length;
    const items = slice.map((k) => this.present(t.resource, this.objects.get(k)!));
    // metadata.continue: an opaque token naming the last key returned (apiserver storage: the
    // key plus the list's resourceVersion); remainingItemCount alongside (ListMeta docs).
    const cont = rest > 0 ? Buffer.from(JSON.stringify({ rv: this.rv, start: slice.at(-1) }), 'utf8').toString('base64url') : undefined;
    const metadata = { resourceVersion: String(this.rv), ...(cont ? { continue: cont, remainingItemCount: rest } : {}) };
    return { status: 200, body: { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata, items } };
  }

  /** `limit` (positive; absent or 0: everything) and the key a `continue` token resumes after. */
  private listWindow(req: EmuRequest): { from: string | undefined; limit: number | undefined } {
    const limit = Number(req.query.get('limit') ?? 0) > 0 ? Number(req.query.get('limit')) : undefined;
    const token = req.query.get('continue');
    if (!token) return { from: undefined, limit };
    try {
      const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { start?: unknown };
      if (typeof parsed.start === 'string') return { from: parsed.start, limit };
    } catch {
      // answered below
    }
    throw badRequest('continue key is not valid: invalid continue token');
  }

  private create(t: ResourceType, req: EmuRequest, user: string): EmuResponse {
    const ns = req.params.ns!;
    const body = clone((req.body ?? {}) as Obj);
    if (typeof body !== 'object' || Array.isArray(body)) throw badRequest(`${t.kind} in version "v1" cannot be handled as a ${t.kind}: expected an object`);
    const name: string | undefined = body.metadata?.name;
    this.authorize(user, 'create', t, ns, undefined);
    if (!this.namespaces.has(ns)) throw new ApiError(statusFailure(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' }));
    if (!name) throw invalid(t, '', 'metadata.name', 'Required value: name or generateName is required');
    if (body.metadata.namespace && body.metadata.namespace !== ns) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const k = this.key(t.resource, ns, name);
    if (this.objects.has(k)) {
      throw new ApiError(statusFailure(409, 'AlreadyExists', `${qualified(t)} "${name}" already exists`, detailsOf(t, name)));
    }
    const obj: Obj = {
      ...body,
      kind: t.kind,
      apiVersion: apiVersionOf(t),
      metadata: { ...body.metadata, namespace: ns, uid: randomUUID(), resourceVersion: this.nextRv(), creationTimestamp: this.timestamp() },
    };
    delete obj.status;
    this.validate(t, obj, undefined);
    if ((WORKLOAD_KINDS as readonly string[]).includes(t.resource)) {
      obj.metadata.generation = 1;
      this.rollouts.set(k, { startedAt: null, previousRevision: templateRevision(name, obj.spec?.template), nodes: 1, serving: this.envOf(ns, obj.spec?.template) });
    }
    this.objects.set(k, obj);
    this.count(t);
    return { status: 201, body: this.present(t.resource, obj) };
  }

  private replace(t: ResourceType, req: EmuRequest, user: string): EmuResponse {
    const { ns, name } = req.params as { ns: string; name: string };
    this.authorize(user, 'update', t, ns, name);
    const body = clone((req.body ?? {}) as Obj);
    if (typeof body !== 'object' || Array.isArray(body)) throw badRequest(`${t.kind} in version "v1" cannot be handled as a ${t.kind}: expected an object`);
    if (body.metadata?.name !== name) {
      throw badRequest(`the name of the object (${String(body.metadata?.name ?? '')}) does not match the name on the URL (${name})`);
    }
    this.concurrentWriter(t, ns, name);
    const old = this.existing(t, ns, name);
    const rv: string | undefined = body.metadata?.resourceVersion;
    if (!rv && !t.unconditionalUpdate) {
      throw invalid(t, name, 'metadata.resourceVersion', 'Invalid value: 0x0: must be specified for an update');
    }
    if (rv && rv !== old.metadata.resourceVersion) throw conflict(t, name);
    return this.commit(t, old, body);
  }

  private patch(t: ResourceType, req: EmuRequest, user: string): EmuResponse {
    const { ns, name } = req.params as { ns: string; name: string };
    this.authorize(user, 'patch', t, ns, name);
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!(PATCH_TYPES as readonly string[]).includes(ct)) {
      return statusFailure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`);
    }
    if (ct === 'application/apply-patch+yaml') {
      return statusFailure(415, 'UnsupportedMediaType', 'the kubernetes emulator does not implement server-side apply (application/apply-patch+yaml)');
    }
    if (typeof req.body === 'string') throw badRequest(`error decoding patch: invalid character in ${ct} body`);
    this.concurrentWriter(t, ns, name);
    const old = this.existing(t, ns, name);
    let next: Obj;
    try {
      const current = clone(old);
      next = (ct === 'application/json-patch+json'
        ? jsonPatch(current, req.body)
        : ct === 'application/merge-patch+json'
          ? mergePatch(current, req.body)
          : strategicMergePatch(current, req.body)) as Obj;
    } catch (err) {
      if (err instanceof PatchError) throw new ApiError(statusFailure(422, 'Invalid', err.message));
      throw err;
    }
    if (typeof next !== 'object' || next === null || Array.isArray(next)) throw badRequest('the patch did not produce an object');
    if (next.metadata?.name !== name) throw badRequest(`the name of the object (${String(next.metadata?.name ?? '')}) does not match the name on the URL (${name})`);
    // A resourceVersion carried in the patch is a precondition (apiserver patch.go: a changed
    // resourceVersion after patching means the client asked for a specific version).
    const rv: string | undefined = next.metadata?.resourceVersion;
    if (rv !== undefined && rv !== old.metadata.resourceVersion) throw conflict(t, name);
    return this.commit(t, old, next);
  }

  private remove(t: ResourceType, req: EmuRequest, user: string): EmuResponse {
    const { ns, name } = req.params as { ns: string; name: string };
    this.authorize(user, 'delete', t, ns, name);
    this.concurrentWriter(t, ns, name);
    const old = this.existing(t, ns, name);
    const pre = (req.body as Obj | undefined)?.preconditions?.resourceVersion as string | undefined;
    if (pre && pre !== old.metadata.resourceVersion) {
      throw new ApiError(
        statusFailure(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${qualified(t)} "${name}": Precondition failed: ResourceVersion in precondition: ${pre}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`,
          detailsOf(t, name),
        ),
      );
    }
    this.objects.delete(this.key(t.resource, ns, name));
    this.rollouts.delete(this.key(t.resource, ns, name));
    this.count(t);
    return { status: 200, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { ...detailsOf(t, name), uid: old.metadata.uid } } };
  }

  /** Store an update: server-owned fields kept, validation, generation and rollout bookkeeping. */
  private commit(t: ResourceType, old: Obj, body: Obj): EmuResponse {
    const next: Obj = {
      ...body,
      kind: t.kind,
      apiVersion: apiVersionOf(t),
      metadata: {
        ...body.metadata,
        name: old.metadata.name,
        namespace: old.metadata.namespace,
        uid: old.metadata.uid,
        creationTimestamp: old.metadata.creationTimestamp,
      },
    };
    delete next.status;
    this.validate(t, next, old);
    const k = this.key(t.resource, old.metadata.namespace, old.metadata.name);
    if ((WORKLOAD_KINDS as readonly string[]).includes(t.resource)) {
      const specChanged = JSON.stringify(next.spec) !== JSON.stringify(old.spec);
      next.metadata.generation = (old.metadata.generation ?? 1) + (specChanged ? 1 : 0);
      const tmplChanged = JSON.stringify(next.spec?.template) !== JSON.stringify(old.spec?.template);
      const onDelete = next.spec?.updateStrategy?.type === 'OnDelete';
      if (tmplChanged && !onDelete) {
        const state = this.rollouts.get(k)!;
        this.settle(t.resource, old.metadata.name, state);
        // The new pods read the Secrets now; the old ones keep serving until the rollout completes.
        const rolling = this.envOf(old.metadata.namespace, next.spec?.template);
        this.rollouts.set(k, { ...state, startedAt: this.now(), previousRevision: templateRevision(old.metadata.name, old.spec?.template), next: rolling });
      }
    }
    const same = JSON.stringify({ ...next, metadata: { ...next.metadata, resourceVersion: undefined } }) ===
      JSON.stringify({ ...old, metadata: { ...old.metadata, resourceVersion: undefined } });
    // A no-op update keeps the resourceVersion (the API server skips the etcd write).
    next.metadata.resourceVersion = same ? old.metadata.resourceVersion : this.nextRv();
    this.objects.set(k, next);
    if (!same) this.count(t);
    return { status: 200, body: this.present(t.resource, next) };
  }

  private count(t: ResourceType): void {
    this.writes[t.resource] = (this.writes[t.resource] ?? 0) + 1;
  }

  private validate(t: ResourceType, obj: Obj, old: Obj | undefined): void {
    const name: string = obj.metadata.name;
    if (t.resource === 'secrets') {
      // stringData is a write-only convenience merged into data (core/v1 Secret docs).
      if (obj.stringData && typeof obj.stringData === 'object') {
        obj.data = { ...(obj.data ?? {}) };
        for (const [k, v] of Object.entries(obj.stringData as Record<string, string>)) obj.data[k] = Buffer.from(String(v), 'utf8').toString('base64');
        delete obj.stringData;
      }
      for (const [k, v] of Object.entries((obj.data ?? {}) as Record<string, unknown>)) {
        if (!DATA_KEY_RE.test(k)) {
          throw invalid(t, name, `data[${k}]`, `Invalid value: "${k}": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`);
        }
        if (typeof v !== 'string' || !BASE64_RE.test(v)) {
          throw badRequest(`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0`);
        }
      }
      if (old) {
        if (old.immutable === true) {
          if (JSON.stringify(obj.data ?? {}) !== JSON.stringify(old.data ?? {})) throw invalid(t, name, 'data', 'Forbidden: field is immutable when `immutable` is set');
          if (obj.immutable !== true) throw invalid(t, name, 'immutable', 'Forbidden: field is immutable when `immutable` is set');
        }
        if ((obj.type ?? 'Opaque') !== (old.type ?? 'Opaque')) throw invalid(t, name, 'type', `Invalid value: "${String(obj.type)}": field is immutable`);
      }
      obj.type ??= 'Opaque';
    }
    if (t.resource === 'configmaps') this.validateConfigMap(t, obj, old);
    if (t.resource === 'leases') {
      for (const f of ['acquireTime', 'renewTime'] as const) {
        const v = obj.spec?.[f];
        if (v !== undefined && v !== null && (typeof v !== 'string' || !MICROTIME_RE.test(v))) {
          throw badRequest(`Lease in version "v1" cannot be handled as a Lease: parsing time "${String(v)}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse as ".000000"`);
        }
      }
    }
  }

  /** core/v1 ValidateConfigMap: key syntax, string values, the 1 MiB total, immutability. */
  private validateConfigMap(t: ResourceType, obj: Obj, old: Obj | undefined): void {
    const name: string = obj.metadata.name;
    let size = 0;
    for (const field of ['data', 'binaryData'] as const) {
      for (const [k, v] of Object.entries((obj[field] ?? {}) as Record<string, unknown>)) {
        if (!DATA_KEY_RE.test(k)) {
          throw invalid(t, name, `${field}[${k}]`, `Invalid value: "${k}": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`);
        }
        if (typeof v !== 'string') throw badRequest(`ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal ${typeof v} into Go struct field ConfigMap.${field} of type string`);
        if (field === 'binaryData' && !BASE64_RE.test(v)) throw badRequest('ConfigMap in version "v1" cannot be handled as a ConfigMap: illegal base64 data at input byte 0');
        size += Buffer.byteLength(k) + (field === 'binaryData' ? Buffer.from(v, 'base64').length : Buffer.byteLength(v));
      }
    }
    if (size > CONFIGMAP_MAX_BYTES) throw invalid(t, name, '[]', `Too long: must have at most ${CONFIGMAP_MAX_BYTES} bytes`);
    if (old?.immutable === true) {
      if (JSON.stringify(obj.data ?? {}) !== JSON.stringify(old.data ?? {}) || JSON.stringify(obj.binaryData ?? {}) !== JSON.stringify(old.binaryData ?? {})) {
        throw invalid(t, name, 'data', 'Forbidden: field is immutable when `immutable` is set');
      }
      if (obj.immutable !== true) throw invalid(t, name, 'immutable', 'Forbidden: field is immutable when `immutable` is set');
    }
  }
}

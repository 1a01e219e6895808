import type * as K8s from '@kubernetes/client-node';
import { TargetError } from '../../core/errors.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, deadlineSignal } from '../../runtime/deadline.ts';
import { waitTimeoutMs, type CommonTargetConfig, type TargetContext } from '../types.ts';
import { kubernetes, type KubernetesConfig } from './index.ts';
import type { Lane } from '../../runtime/pacer.ts';
import { laneOf } from '../common.ts';
import { loadKubeConfig, type LoadedKubeConfig } from './kubeconfig.ts';
import { k8sError, type Call } from './errors.ts';
import { manualRedirectLibrary } from './transport.ts';
import type { WorkloadKind, WorkloadRef } from './rollout.ts';

/**
 * The calls the kubernetes target makes, through @kubernetes/client-node: one namespace's Secret,
 * its workloads, and access reviews. Every call has a deadline and refuses redirects, and its
 * failure comes out as a TargetError in product words (errors.ts).
 */

type K8sModule = typeof import('@kubernetes/client-node');
export type Obj = Record<string, any>;

interface Clients {
  loaded: LoadedKubeConfig;
  core: K8s.CoreV1Api;
  apps: K8s.AppsV1Api;
  authz: K8s.AuthorizationV1Api;
}

type AppsOp = {
  read: (x: Clients, o: K8s.ConfigurationOptions, ns: string, name: string) => Promise<object>;
  patch: (x: Clients, o: K8s.ConfigurationOptions, ns: string, name: string, body: object) => Promise<object>;
};

const APPS_OPS: Record<WorkloadKind, AppsOp> = {
  deployment: {
    read: (x, o, namespace, name) => x.apps.readNamespacedDeployment({ name, namespace }, o),
    patch: (x, o, namespace, name, body) => x.apps.patchNamespacedDeployment({ name, namespace, body }, o),
  },
  statefulset: {
    read: (x, o, namespace, name) => x.apps.readNamespacedStatefulSet({ name, namespace }, o),
    patch: (x, o, namespace, name, body) => x.apps.patchNamespacedStatefulSet({ name, namespace, body }, o),
  },
  daemonset: {
    read: (x, o, namespace, name) => x.apps.readNamespacedDaemonSet({ name, namespace }, o),
    patch: (x, o, namespace, name, body) => x.apps.patchNamespacedDaemonSet({ name, namespace, body }, o),
  },
};

export class Cluster {
  readonly ns: string;
  readonly secretName: string;
  /**
   * The API server's rate-limit domain: the kubeconfig context (its server and user). API Priority
   * and Fairness publishes no fixed rate: the lane's window and the 429's Retry-After pace it.
   */
  readonly rateLimitKey: string;
  private readonly lane: Lane;
  private clients: Clients | undefined;
  private readonly k8s: K8sModule;
  private readonly httpApi: K8s.HttpLibrary;
  private readonly requestTimeoutMs: number;
  private readonly config: KubernetesConfig & CommonTargetConfig;
  private readonly ctx: TargetContext & { name: string };
  private readonly serviceAccountDir: string | undefined;

  constructor(k8s: K8sModule, config: KubernetesConfig & CommonTargetConfig, ctx: TargetContext & { name: string }, serviceAccountDir: string | undefined) {
    this.k8s = k8s;
    this.config = config;
    this.ctx = ctx;
    this.serviceAccountDir = serviceAccountDir;
    this.ns = config.namespace;
    this.secretName = config.secret;
    this.httpApi = manualRedirectLibrary(k8s);
    this.requestTimeoutMs = waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
    this.rateLimitKey = `kubernetes:${config.context ?? ''}`;
    this.lane = laneOf(ctx, this.rateLimitKey, kubernetes);
  }

  /** The kubeconfig context in use (loaded on first use). */
  context(): string {
    return this.connect().loaded.context;
  }

  /** The namespace the kubeconfig context sets (kubectl's default namespace), if any. */
  contextNamespace(): string | undefined {
    const { loaded } = this.connect();
    return loaded.kc.getContextObject(loaded.context)?.namespace || undefined;
  }

  private connect(): Clients {
    if (!this.clients) {
      const { k8s } = this;
      const loaded = loadKubeConfig(k8s, { context: this.config.context, env: this.ctx.env, target: this.ctx.name, serviceAccountDir: this.serviceAccountDir });
      this.clients = {
        loaded,
        core: loaded.kc.makeApiClient(k8s.CoreV1Api),
        apps: loaded.kc.makeApiClient(k8s.AppsV1Api),
        authz: loaded.kc.makeApiClient(k8s.AuthorizationV1Api),
      };
    }
    return this.clients;
  }

  /**
   * Per-call options: the HTTP library that refuses redirects (transport.ts), the caller's abort
   * signal under the call's deadline (client-node has none of its own; the signal also ends a
   * stalled body), and optionally the PATCH Content-Type. client-node's default PATCH type is json-patch
   * (the first entry of the generated list; README "Provider facts"); `setHeaderOptions` overrides it
   * (kubernetes-client/javascript src/middleware.ts, `middlewareMergeStrategy: 'append'`).
   */
  private options(signal: AbortSignal | undefined, contentType?: string): K8s.ConfigurationOptions {
    const { k8s } = this;
    const sig = deadlineSignal(this.requestTimeoutMs, signal);
    const withSignal: K8s.ObservableMiddleware = {
      pre: (req) => {
        req.setSignal(sig);
        return new k8s.Observable(Promise.resolve(req));
      },
      post: (res) => new k8s.Observable(Promise.resolve(res)),
    };
    const opts: K8s.ConfigurationOptions = { httpApi: this.httpApi, middleware: [withSignal], middlewareMergeStrategy: 'append' };
    return contentType ? k8s.setHeaderOptions('Content-Type', contentType, opts) : opts;
  }

  /** One API request through the context's lane (client-node makes one request per call, no retries), its failure in product words. */
  private call<T>(c: Call, op: string, fn: (x: Clients) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    const x = this.connect();
    return this.lane.request(async () => {
      try {
        return await fn(x);
      } catch (err) {
        throw k8sError(err, c, { target: this.ctx.name, op, context: x.loaded.context, server: x.loaded.server, now: this.ctx.clock.now(), timeoutMs: this.requestTimeoutMs });
      }
    }, { signal });
  }

  private secretCall(verb: string): Call {
    return { verb, resource: 'secrets', name: this.secretName, namespace: this.ns, what: `secret ${this.secretName}` };
  }

  readSecret(op: string, signal?: AbortSignal): Promise<K8s.V1Secret> {
    return this.call(this.secretCall('get'), op, (x) => x.core.readNamespacedSecret({ name: this.secretName, namespace: this.ns }, this.options(signal)), signal);
  }

  /**
   * One page (`limit` 100) of the Secrets of `namespace`, or of every namespace (undefined:
   * listSecretForAllNamespaces, which needs a ClusterRole), for `keyrot discover`.
   */
  listSecrets(namespace: string | undefined, cont: string | undefined, signal?: AbortSignal): Promise<K8s.V1SecretList> {
    const c: Call = { verb: 'list', resource: 'secrets', namespace: namespace ?? '', what: namespace ? `the secrets of namespace ${namespace}` : 'the secrets of all namespaces' };
    const page = { limit: 100, ...(cont ? { _continue: cont } : {}) };
    return this.call(c, 'discover', (x) =>
      namespace === undefined ? x.core.listSecretForAllNamespaces(page, this.options(signal)) : x.core.listNamespacedSecret({ namespace, ...page }, this.options(signal)),
      signal,
    );
  }

  /** A JSON merge patch of the Secret. */
  patchSecret(body: object, op: string, signal?: AbortSignal): Promise<K8s.V1Secret> {
    const o = this.options(signal, this.k8s.PatchStrategy.MergePatch);
    return this.call(this.secretCall('patch'), op, (x) => x.core.patchNamespacedSecret({ name: this.secretName, namespace: this.ns, body }, o), signal);
  }

  private workloadCall(w: WorkloadRef, verb: string): Call {
    return { verb, resource: w.resource, name: w.name, namespace: this.ns, what: w.label };
  }

  async readWorkload(w: WorkloadRef, op: string, signal?: AbortSignal): Promise<Obj> {
    return (await this.call(this.workloadCall(w, 'get'), op, (x) => APPS_OPS[w.kind].read(x, this.options(signal), this.ns, w.name), signal)) as Obj;
  }

  /** A strategic-merge patch of a workload (what `kubectl rollout restart` sends). */
  async patchWorkload(w: WorkloadRef, body: object, op: string, signal?: AbortSignal): Promise<void> {
    const o = this.options(signal, this.k8s.PatchStrategy.StrategicMergePatch);
    await this.call(this.workloadCall(w, 'patch'), op, (x) => APPS_OPS[w.kind].patch(x, o, this.ns, w.name, body), signal);
  }

  async readNamespace(signal?: AbortSignal): Promise<void> {
    const { ns } = this;
    await this.call({ verb: 'get', resource: 'namespaces', name: ns, namespace: ns, what: `namespace ${ns}` }, 'preflight', (x) => x.core.readNamespace({ name: ns }, this.options(signal)), signal);
  }

  /** Whether the credentials may `verb` the object, asked with a SelfSubjectAccessReview (`kubectl auth can-i`). */
  async canI(verb: string, group: string, resource: string, name: string, notes: string[], signal?: AbortSignal): Promise<string | null> {
    const { ns } = this;
    const review = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: ns, verb, group, resource, name } } };
    try {
      const res = await this.call({ verb: 'create', resource: 'selfsubjectaccessreviews', namespace: ns, what: 'access review' }, 'preflight', (x) =>
        x.authz.createSelfSubjectAccessReview({ body: review }, this.options(signal)),
        signal,
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
}

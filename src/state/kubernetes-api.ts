import type * as K8s from '@kubernetes/client-node';
import type { Clock } from '../runtime/clock.ts';
import { TargetError } from '../core/errors.ts';
import { k8sError } from '../targets/kubernetes/errors.ts';
import { manualRedirectLibrary } from '../targets/kubernetes/transport.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, deadlineSignal } from '../runtime/deadline.ts';
import { loadKubeConfig, type LoadedKubeConfig } from '../targets/kubernetes/kubeconfig.ts';

/**
 * The cluster as `state: kubernetes` speaks to it: client-node loaded on first use, a deadline per
 * call and no redirects (as the kubernetes target), and failures in words that name the RBAC
 * grant they need (deploy/kubernetes/role.yaml grants exactly that).
 */

type K8sModule = typeof import('@kubernetes/client-node');

export interface Clients {
  k8s: K8sModule;
  loaded: LoadedKubeConfig;
  core: K8s.CoreV1Api;
  leases: K8s.CoordinationV1Api;
  /** client-node's HTTP library with redirects refused (targets/kubernetes/transport.ts). */
  httpApi: K8s.HttpLibrary;
}

export type StateResource = 'configmaps' | 'leases' | 'secrets';

export function statusCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof err === 'object' && err !== null && 'headers' in err && typeof c === 'number' ? c : undefined;
}

/** The Status body of an ApiException (client-node 2.x may hand it over as the raw JSON text: gen/apis/exception.ts). */
export function statusBody(err: unknown): { reason?: string; message?: string } {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as { reason?: string; message?: string };
    } catch {
      return {};
    }
  }
  return typeof body === 'object' && body !== null ? (body as { reason?: string; message?: string }) : {};
}

export const isAlreadyExists = (err: unknown) => statusCode(err) === 409 && statusBody(err).reason === 'AlreadyExists';

/** What RBAC must grant, for a 403's message (deploy/kubernetes/role.yaml grants exactly this). */
function needs(resource: StateResource, object: string): string {
  if (resource === 'configmaps') return `get, create and update on configmaps named ${object}`;
  if (resource === 'secrets') return `get on the secret named ${object} (and create, for its first use)`;
  return `get, create, update and delete on leases (coordination.k8s.io) named ${object}`;
}

function described(resource: StateResource, object: string): string {
  if (resource === 'configmaps') return `ConfigMap ${object} (keyrot's state)`;
  if (resource === 'secrets') return `Secret ${object} (keyrot's state key)`;
  return `Lease ${object} (keyrot's lock)`;
}

export class StateApi {
  private clients: Promise<Clients> | undefined;
  private readonly ns: string;
  private readonly clock: Clock;
  private readonly load: { context?: string; env: NodeJS.ProcessEnv; serviceAccountDir?: string };

  constructor(ns: string, clock: Clock, load: { context?: string; env: NodeJS.ProcessEnv; serviceAccountDir?: string }) {
    this.ns = ns;
    this.clock = clock;
    this.load = load;
  }

  connect(): Promise<Clients> {
    this.clients ??= (async () => {
      // client-node takes ~1 s to import: only when the state is first used.
      const k8s = await import('@kubernetes/client-node');
      const loaded = loadKubeConfig(k8s, { ...this.load, target: 'kubernetes state' });
      return { k8s, loaded, core: loaded.kc.makeApiClient(k8s.CoreV1Api), leases: loaded.kc.makeApiClient(k8s.CoordinationV1Api), httpApi: manualRedirectLibrary(k8s) };
    })().catch((err: unknown) => {
      this.clients = undefined;
      throw err;
    });
    return this.clients;
  }

  /** A deadline per call (client-node has none of its own) and no redirects: as the kubernetes target. */
  options(c: Clients): K8s.ConfigurationOptions {
    const signal = deadlineSignal(DEFAULT_REQUEST_TIMEOUT_MS);
    const withSignal: K8s.ObservableMiddleware = {
      pre: (req) => {
        req.setSignal(signal);
        return new c.k8s.Observable(Promise.resolve(req));
      },
      post: (res) => new c.k8s.Observable(Promise.resolve(res)),
    };
    return { httpApi: c.httpApi, middleware: [withSignal], middlewareMergeStrategy: 'append' };
  }

  /** Any failure → a TargetError in product words; a 403 names the verb, the resource and the grant. */
  failure(c: Clients, err: unknown, verb: string, resource: StateResource, object: string, op: string): TargetError {
    const { ns } = this;
    const what = described(resource, object);
    const e = k8sError(err, { verb, resource, name: object, namespace: ns, what }, {
      target: 'kubernetes state',
      op,
      context: c.loaded.context,
      server: c.loaded.server,
      now: this.clock.now(),
    });
    if (e.kind === 'permission') {
      const user = /User "([^"]+)"/.exec(statusBody(err).message ?? '')?.[1];
      const qualified = resource === 'leases' ? 'leases.coordination.k8s.io' : resource;
      return new TargetError(
        `Kubernetes denied ${verb} on ${qualified}/${object} in namespace ${ns}${user ? ` to ${user}` : ''}: keyrot's state (state: kubernetes) needs ${needs(resource, object)} in namespace ${ns}; see deploy/kubernetes/role.yaml`,
        { kind: 'permission', op, retryable: false, status: 403, cause: err },
      );
    }
    if (statusCode(err) === 404 && verb === 'create') {
      return new TargetError(`cannot create ${what}: namespace ${ns} does not exist (context "${c.loaded.context}"); create it or set state.namespace`, {
        kind: 'not-found',
        op,
        retryable: false,
        status: 404,
        cause: err,
      });
    }
    return e;
  }
}

import type * as K8s from '@kubernetes/client-node';
import type { Clock } from '../runtime/clock.ts';
import { TargetError } from '../core/errors.ts';
import { isAlreadyExists, statusCode, type Clients, type StateApi } from './kubernetes-api.ts';

/**
 * keyrot's journal and audit log in one ConfigMap `<name>-state`, one data key per stream, appended
 * with optimistic concurrency (the why and the sizes: state/kubernetes.ts).
 */

/** Kubernetes' limit on a ConfigMap's data (k8s.io/kubernetes pkg/apis/core/validation MaxSecretSize). */
export const CONFIGMAP_LIMIT_BYTES = 1024 * 1024;
/** Appends retried on 409 at most this many times: each round one concurrent writer wins. */
export const MAX_APPEND_TRIES = 20;

function sizeOf(data: Record<string, string>): number {
  let n = 0;
  for (const [k, v] of Object.entries(data)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

export class StateConfigMap {
  private cached: K8s.V1ConfigMap | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private warnedFull = false;
  private readonly api: StateApi;
  private readonly ns: string;
  private readonly cmName: string;
  private readonly labels: Record<string, string>;
  private readonly clock: Clock;
  private readonly warn: (message: string) => void;

  constructor(api: StateApi, where: { ns: string; cmName: string; labels: Record<string, string> }, clock: Clock, warn: (message: string) => void) {
    this.api = api;
    this.ns = where.ns;
    this.cmName = where.cmName;
    this.labels = where.labels;
    this.clock = clock;
    this.warn = warn;
  }

  async readData(op: string): Promise<Record<string, string>> {
    const c = await this.api.connect();
    return (await this.read(c, op))?.data ?? {};
  }

  /**
   * Appends `make(current text)` plus a newline to one data key: read (or the copy our last write
   * returned) → replace carrying its resourceVersion. A 409 means another writer was first: re-read
   * and recompute (the audit line depends on the last one), with a jittered pause, at most
   * MAX_APPEND_TRIES times. A missing ConfigMap is created; AlreadyExists means another writer
   * created it first: re-read.
   */
  append(key: string, make: (text: string) => string, op: string): Promise<string> {
    return this.serial(async () => {
      const c = await this.api.connect();
      for (let attempt = 1; ; attempt++) {
        const cm = this.cached ?? (await this.read(c, op));
        const text = cm?.data?.[key] ?? '';
        const line = make(text);
        const data = { ...(cm?.data ?? {}), [key]: `${text}${text && !text.endsWith('\n') ? '\n' : ''}${line}\n` };
        this.checkSize(data, op);
        try {
          this.cached = await this.write(c, cm, data);
          return line;
        } catch (err) {
          await this.afterConflict(c, err, cm, attempt, op);
        }
      }
    });
  }

  /** Appends of this process go one at a time: they would only make each other 409. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => {});
    return p;
  }

  private async read(c: Clients, op: string): Promise<K8s.V1ConfigMap | undefined> {
    try {
      this.cached = await c.core.readNamespacedConfigMap({ name: this.cmName, namespace: this.ns }, this.api.options(c));
      return this.cached;
    } catch (err) {
      if (statusCode(err) === 404) {
        this.cached = undefined;
        return undefined;
      }
      throw this.api.failure(c, err, 'get', 'configmaps', this.cmName, op);
    }
  }

  private write(c: Clients, cm: K8s.V1ConfigMap | undefined, data: Record<string, string>): Promise<K8s.V1ConfigMap> {
    const { ns, cmName } = this;
    if (!cm) {
      const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: cmName, namespace: ns, labels: this.labels }, data };
      return c.core.createNamespacedConfigMap({ namespace: ns, body }, this.api.options(c));
    }
    return c.core.replaceNamespacedConfigMap({ name: cmName, namespace: ns, body: { ...cm, data } }, this.api.options(c));
  }

  /** 409 Conflict (stale resourceVersion), 409 AlreadyExists (created meanwhile), 404 (deleted meanwhile): re-read after a pause. */
  private async afterConflict(c: Clients, err: unknown, cm: K8s.V1ConfigMap | undefined, attempt: number, op: string): Promise<void> {
    const code = statusCode(err);
    if (code !== 409 && !(code === 404 && cm)) throw this.api.failure(c, err, cm ? 'update' : 'create', 'configmaps', this.cmName, op);
    this.cached = undefined;
    if (attempt >= MAX_APPEND_TRIES) {
      throw new TargetError(
        `keyrot's state ConfigMap ${this.ns}/${this.cmName} changed under keyrot ${MAX_APPEND_TRIES} times in a row (409 on resourceVersion): something else keeps writing it; only keyrot should`,
        { kind: 'conflict', op, retryable: false, status: 409, cause: err },
      );
    }
    if (attempt > 1 || !isAlreadyExists(err)) await this.clock.sleep(Math.min(1000, 20 * attempt) * (0.5 + Math.random()));
  }

  private checkSize(data: Record<string, string>, op: string): void {
    const { ns, cmName } = this;
    const size = sizeOf(data);
    if (size > CONFIGMAP_LIMIT_BYTES) {
      throw new TargetError(
        `keyrot's state ConfigMap ${ns}/${cmName} would exceed Kubernetes' 1 MiB ConfigMap limit (${size} bytes): archive it (kubectl -n ${ns} get configmap ${cmName} -o yaml > keyrot-state-archive.yaml), then remove old journal.<env>.ndjson keys of environments with no rotation in progress, then run \`keyrot history --reanchor\` (the anchor of the heads would otherwise report the cut)`,
        { kind: 'invalid', op, retryable: false },
      );
    }
    if (size > CONFIGMAP_LIMIT_BYTES * 0.8 && !this.warnedFull) {
      this.warnedFull = true;
      this.warn(`keyrot's state ConfigMap ${ns}/${cmName} uses ${Math.round((size / CONFIGMAP_LIMIT_BYTES) * 100)}% of Kubernetes' 1 MiB limit: archive old journal entries soon`);
    }
  }
}

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type * as K8s from '@kubernetes/client-node';
import { systemClock, type Clock } from '../runtime/clock.ts';
import { ConfigError, LockedError, TargetError } from '../core/errors.ts';
import type { Lock, LockInfo } from './lock.ts';
import { k8sError } from '../targets/kubernetes/errors.ts';
import { manualRedirectLibrary } from '../targets/kubernetes/transport.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, deadlineSignal } from '../runtime/deadline.ts';
import { loadKubeConfig, SERVICE_ACCOUNT_DIR, type LoadedKubeConfig } from '../targets/kubernetes/kubeconfig.ts';
import type { StateStore } from './store.ts';
import type { CredentialRef } from '../inventory/credentials.ts';
import { kubernetesTrust } from './kubernetes-trust.ts';
import { printable } from '../core/printable.ts';

/**
 * `state: kubernetes`: keyrot's journal, audit log and per-environment lock in the cluster, so
 * several CronJob runs (overlapping schedules, a retried Job, a manual `kubectl create job
 * --from=cronjob/...`) share one state and exactly one of them rotates an environment.
 *
 * Lock: one coordination.k8s.io/v1 Lease per environment, `<name>-<env>` (kubernetes target README, "Provider facts").
 *   - acquire = POST the Lease. 409 AlreadyExists: read it; a holder whose `renewTime +
 *     leaseDurationSeconds` is still ahead of our clock is alive → LockedError naming it. An expired
 *     (or released, empty holderIdentity) Lease is taken over with a PUT carrying the
 *     resourceVersion we read: of several racing take-overs the API server accepts one and answers
 *     409 Conflict to the others (Lease updates are never unconditional: lease/strategy.go
 *     AllowUnconditionalUpdate() = false), which become LockedError.
 *   - while held, the Lease is renewed every leaseSeconds/3 (an unref'd timer, like client-go's
 *     leader election renewing well inside its lease duration), so a long rotation (rollouts that
 *     take minutes) keeps it; a holder that died stops renewing and its Lease expires by itself.
 *   - release = DELETE with a resourceVersion precondition, so only a Lease that is still ours is
 *     removed (a successor's is left alone). If RBAC forbids delete, the Lease is released the way
 *     client-go's leader election does it: a PUT that empties holderIdentity.
 *   - expiry is judged with the local clock against the holder's renewTime; clock skew between
 *     nodes eats into the lease, so leaseSeconds (default 60) must stay well above the skew.
 *   - MicroTime fields are sent as client-node's V1MicroTime (`...sss000Z`): the API server parses
 *     them with RFC3339Micro and rejects plain `toISOString()` output (client-node src/types.ts).
 *
 * Journal and audit log: one ConfigMap `<name>-state`, data keys `journal.<env>.ndjson` and
 * `audit.ndjson` (the same NDJSON lines as the local state directory).
 *   Why a ConfigMap and not a Secret: the journal and audit log hold fingerprints (12 hex of
 *   SHA-256) and hints (last 4 characters) only, never a key value (README "Security model", invariant 3; every
 *   line goes through redact()), so there is nothing secret in them. A ConfigMap is readable with
 *   plain RBAC by the operators who need the history (`kubectl get cm keyrot-state -o yaml`),
 *   while a Secret would only add base64 and obscurity (Secrets are not encrypted either unless
 *   the cluster enables encryption at rest, and granting `get` on Secrets is what least-privilege
 *   setups avoid). What matters is who may WRITE it: every line carries an HMAC under the state
 *   key, which lives in a Secret of its own (kubernetes-trust.ts), and the streams' heads are
 *   anchored in a third object, so a writer of this ConfigMap without the key cannot forge a line
 *   nor cut the log short unnoticed; RBAC should still restrict update on it to keyrot's identity.
 *   Appends are read → replace with the read resourceVersion; a 409 (another writer was first)
 *   re-reads and retries, bounded. That optimistic concurrency is what serialises appends across
 *   pods, so the chains never fork.
 *   Size: a ConfigMap's data is limited to 1 MiB (core/v1 validation MaxSecretSize, enforced on
 *   data + binaryData). Measured (test/state/kubernetes-state.test.ts, end-to-end rotation): a
 *   journal event is ~330 bytes and an audit entry ~460 bytes (each with its ~90-byte MAC); a
 *   rotation of two targets wrote 9 events and 2 audit entries, 3.9 KB. A monthly rotation of an
 *   environment with 5 targets plus its revocation is ~8 KiB, so one environment fits ~10 years
 *   and five environments ~2 years.
 *   keyrot warns at 80% and refuses an append that would pass the limit (naming it) rather than
 *   losing it.
 */

export const DEFAULT_LEASE_SECONDS = 60;
export const DEFAULT_STATE_NAME = 'keyrot';
/** Kubernetes' limit on a ConfigMap's data (k8s.io/kubernetes pkg/apis/core/validation MaxSecretSize). */
export const CONFIGMAP_LIMIT_BYTES = 1024 * 1024;
/** Appends retried on 409 at most this many times: each round one concurrent writer wins. */
export const MAX_APPEND_TRIES = 20;

export const LEASE_ANNOTATIONS = {
  pid: 'keyrot.dev/pid',
  host: 'keyrot.dev/host',
  command: 'keyrot.dev/command',
  rotation: 'keyrot.dev/rotation',
} as const;
const LABELS = { 'app.kubernetes.io/name': 'keyrot', 'app.kubernetes.io/managed-by': 'keyrot' };

export interface KubernetesStateOptions {
  namespace: string;
  /** Base name: ConfigMap `<name>-state`, Leases `<name>-<env>`. */
  name: string;
  /** kubeconfig context; default: the current context (or the pod's service account). */
  context?: string;
  /** The environment keyrot runs with (KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST...). */
  env: NodeJS.ProcessEnv;
  leaseSeconds?: number;
  clock?: Clock;
  /** How often a held Lease is renewed (default leaseSeconds / 3). */
  renewEveryMs?: number;
  /** Non-fatal problems: a lost Lease, a failed release, a nearly full ConfigMap. Default: stderr. */
  warn?: (message: string) => void;
  /** Where the pod's service account is mounted (tests). */
  serviceAccountDir?: string;
  /** `state_key` of the inventory; without it the key lives in the Secret `keySecret`. */
  stateKey?: CredentialRef;
  /** Default `<name>-state-key`. */
  keySecret?: string;
  /** Directory of targets.yaml (a relative `state_key: file:` is resolved against it). */
  baseDir?: string;
  /** The one-time message when keyrot generates the state key. Default: stderr. */
  notice?: (message: string) => void;
}

/** A LockInfo read from a Lease: the holder plus what decides staleness. */
export interface LeaseLockInfo extends LockInfo {
  holderIdentity: string;
  renewedAt: string;
  expiresAt: string;
}

type K8sModule = typeof import('@kubernetes/client-node');

interface Clients {
  k8s: K8sModule;
  loaded: LoadedKubeConfig;
  core: K8s.CoreV1Api;
  leases: K8s.CoordinationV1Api;
  /** client-node's HTTP library with redirects refused (targets/kubernetes/transport.ts). */
  httpApi: K8s.HttpLibrary;
}

const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The Lease name of an environment: `<name>-<env>`, made a valid DNS-1123 name (lowercase
 * alphanumerics and '-'). Environment names may hold capitals, '_' and '.', so a changed name
 * gets 8 hex of the original's SHA-256: `Prod` and `prod` stay two different locks.
 */
export function leaseName(name: string, env: string): string {
  let s = env.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-+|-+$/g, '');
  if (s !== env) s = `${s ? `${s}-` : ''}${createHash('sha256').update(env).digest('hex').slice(0, 8)}`;
  // metadata.name of a Lease is a DNS-1123 subdomain: at most 253 characters.
  const room = 253 - name.length - 1;
  if (s.length > room) s = `${s.slice(0, room - 9).replace(/-+$/, '')}-${createHash('sha256').update(env).digest('hex').slice(0, 8)}`;
  return `${name}-${s}`;
}

function validate(namespace: string, name: string): void {
  if (namespace.length > 63 || !DNS_LABEL_RE.test(namespace)) {
    throw new ConfigError(`"${namespace}" is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63 characters)`, undefined, 'state.namespace');
  }
  if (name.length > 200 || !DNS_LABEL_RE.test(name)) {
    throw new ConfigError(`"${name}" cannot name keyrot's ConfigMap and Leases: use lowercase letters, digits and '-' (at most 200 characters)`, undefined, 'state.name');
  }
}

/**
 * `state: kubernetes` / `{ type: kubernetes, namespace?, name?, context? }` with the inventory's
 * defaults: the namespace of the pod's service account
 * (/var/run/secrets/kubernetes.io/serviceaccount/namespace, as client-go's in-cluster config reads
 * it) when keyrot runs in a pod, else `default`; name `keyrot`.
 */
export function kubernetesStateFromConfig(
  cfg: { namespace?: string; name?: string; context?: string; key_secret?: string; stateKey?: CredentialRef; baseDir?: string },
  env: NodeJS.ProcessEnv,
  internals: { serviceAccountDir?: string; clock?: Clock; leaseSeconds?: number } = {},
): StateStore {
  return kubernetesState({
    namespace: cfg.namespace ?? podNamespace(internals.serviceAccountDir ?? SERVICE_ACCOUNT_DIR) ?? 'default',
    name: cfg.name ?? DEFAULT_STATE_NAME,
    context: cfg.context,
    env,
    stateKey: cfg.stateKey,
    keySecret: cfg.key_secret,
    baseDir: cfg.baseDir,
    clock: internals.clock,
    leaseSeconds: internals.leaseSeconds,
    serviceAccountDir: internals.serviceAccountDir,
  });
}

function podNamespace(dir: string): string | undefined {
  const file = join(dir, 'namespace');
  if (!existsSync(file)) return undefined;
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ client-node errors

function statusCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof err === 'object' && err !== null && 'headers' in err && typeof c === 'number' ? c : undefined;
}

/** The Status body of an ApiException (client-node 2.x may hand it over as the raw JSON text: gen/apis/exception.ts). */
function statusBody(err: unknown): { reason?: string; message?: string } {
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

const isAlreadyExists = (err: unknown) => statusCode(err) === 409 && statusBody(err).reason === 'AlreadyExists';

function micros(k8s: K8sModule, ms: number): K8s.V1MicroTime {
  return new k8s.V1MicroTime(ms);
}

/** A MicroTime as read back: client-node 2.x leaves it the API server's string (it has no deserializer for it). */
function timeOf(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  return typeof v === 'string' ? Date.parse(v) : NaN;
}

const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : 'an unknown time');

export function kubernetesState(opts: KubernetesStateOptions): StateStore {
  const { namespace: ns, name } = opts;
  validate(ns, name);
  const clock = opts.clock ?? systemClock;
  const leaseSeconds = Math.max(1, Math.round(opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS));
  const renewEveryMs = opts.renewEveryMs ?? Math.max(200, Math.floor((leaseSeconds * 1000) / 3));
  const warn = opts.warn ?? ((m: string) => process.stderr.write(printable(`keyrot: warning: ${m}`) + '\n'));
  const cmName = `${name}-state`;
  const where = `ConfigMap ${ns}/${cmName} (Leases ${name}-<env>)`;
  const journalKey = (env: string) => `journal.${env}.ndjson`;
  const AUDIT_KEY = 'audit.ndjson';

  let clients: Promise<Clients> | undefined;
  function connect(): Promise<Clients> {
    clients ??= (async () => {
      // client-node takes ~1 s to import: only when the state is first used.
      const k8s = await import('@kubernetes/client-node');
      const loaded = loadKubeConfig(k8s, { context: opts.context, env: opts.env, target: 'kubernetes state', serviceAccountDir: opts.serviceAccountDir });
      return { k8s, loaded, core: loaded.kc.makeApiClient(k8s.CoreV1Api), leases: loaded.kc.makeApiClient(k8s.CoordinationV1Api), httpApi: manualRedirectLibrary(k8s) };
    })().catch((err: unknown) => {
      clients = undefined;
      throw err;
    });
    return clients;
  }

  /** A deadline per call (client-node has none of its own) and no redirects: as the kubernetes target. */
  function options(c: Clients): K8s.ConfigurationOptions {
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

  /** What RBAC must grant, for a 403's message (deploy/kubernetes/role.yaml grants exactly this). */
  const needs = (resource: string, object: string) =>
    resource === 'configmaps'
      ? `get, create and update on configmaps named ${object}`
      : resource === 'secrets'
        ? `get on the secret named ${object} (and create, for its first use)`
        : `get, create, update and delete on leases (coordination.k8s.io) named ${object}`;

  /** Any failure → a TargetError in product words; a 403 names the verb, the resource and the grant. */
  function failure(c: Clients, err: unknown, verb: string, resource: 'configmaps' | 'leases' | 'secrets', object: string, op: string): TargetError {
    const what =
      resource === 'configmaps' ? `ConfigMap ${object} (keyrot's state)` : resource === 'secrets' ? `Secret ${object} (keyrot's state key)` : `Lease ${object} (keyrot's lock)`;
    const e = k8sError(err, { verb, resource, name: object, namespace: ns, what }, {
      target: 'kubernetes state',
      op,
      context: c.loaded.context,
      server: c.loaded.server,
      now: clock.now(),
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

  // ---------------------------------------------------------------- the ConfigMap

  let cached: K8s.V1ConfigMap | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let warnedFull = false;

  /** Appends of this process go one at a time: they would only make each other 409. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  }

  async function readConfigMap(c: Clients, op: string): Promise<K8s.V1ConfigMap | undefined> {
    try {
      cached = await c.core.readNamespacedConfigMap({ name: cmName, namespace: ns }, options(c));
      return cached;
    } catch (err) {
      if (statusCode(err) === 404) {
        cached = undefined;
        return undefined;
      }
      throw failure(c, err, 'get', 'configmaps', cmName, op);
    }
  }

  function sizeOf(data: Record<string, string>): number {
    let n = 0;
    for (const [k, v] of Object.entries(data)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
    return n;
  }

  function checkSize(data: Record<string, string>, op: string): void {
    const size = sizeOf(data);
    if (size > CONFIGMAP_LIMIT_BYTES) {
      throw new TargetError(
        `keyrot's state ConfigMap ${ns}/${cmName} would exceed Kubernetes' 1 MiB ConfigMap limit (${size} bytes): archive it (kubectl -n ${ns} get configmap ${cmName} -o yaml > keyrot-state-archive.yaml), then remove old journal.<env>.ndjson keys of environments with no rotation in progress, then run keyrot history --reanchor (the anchor of the heads would otherwise report the cut)`,
        { kind: 'invalid', op, retryable: false },
      );
    }
    if (size > CONFIGMAP_LIMIT_BYTES * 0.8 && !warnedFull) {
      warnedFull = true;
      warn(`keyrot's state ConfigMap ${ns}/${cmName} uses ${Math.round((size / CONFIGMAP_LIMIT_BYTES) * 100)}% of Kubernetes' 1 MiB limit: archive old journal entries soon`);
    }
  }

  /**
   * Appends `make(current text)` plus a newline to one data key: read (or the copy our last write
   * returned) → replace carrying its resourceVersion. A 409 means another writer was first: re-read
   * and recompute (the audit line depends on the last one), with a jittered pause, at most
   * MAX_APPEND_TRIES times. A missing ConfigMap is created; AlreadyExists means another writer
   * created it first: re-read.
   */
  function append(key: string, make: (text: string) => string, op: string): Promise<string> {
    return serial(async () => {
      const c = await connect();
      for (let attempt = 1; ; attempt++) {
        const cm = cached ?? (await readConfigMap(c, op));
        const text = cm?.data?.[key] ?? '';
        const line = make(text);
        const data = { ...(cm?.data ?? {}), [key]: `${text}${text && !text.endsWith('\n') ? '\n' : ''}${line}\n` };
        checkSize(data, op);
        try {
          if (!cm) {
            cached = await c.core.createNamespacedConfigMap(
              { namespace: ns, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: cmName, namespace: ns, labels: LABELS }, data } },
              options(c),
            );
          } else {
            cached = await c.core.replaceNamespacedConfigMap({ name: cmName, namespace: ns, body: { ...cm, data } }, options(c));
          }
          return line;
        } catch (err) {
          const code = statusCode(err);
          // 409 Conflict (stale resourceVersion), 409 AlreadyExists (created meanwhile), 404 (deleted meanwhile).
          if (code !== 409 && !(code === 404 && cm)) throw failure(c, err, cm ? 'update' : 'create', 'configmaps', cmName, op);
          cached = undefined;
          if (attempt >= MAX_APPEND_TRIES) {
            throw new TargetError(
              `keyrot's state ConfigMap ${ns}/${cmName} changed under keyrot ${MAX_APPEND_TRIES} times in a row (409 on resourceVersion): something else keeps writing it; only keyrot should`,
              { kind: 'conflict', op, retryable: false, status: 409, cause: err },
            );
          }
          if (attempt > 1 || !isAlreadyExists(err)) await clock.sleep(Math.min(1000, 20 * attempt) * (0.5 + Math.random()));
        }
      }
    });
  }

  async function readData(op: string): Promise<Record<string, string>> {
    const c = await connect();
    return (await readConfigMap(c, op))?.data ?? {};
  }

  // ---------------------------------------------------------------- the Lease

  function leaseInfo(lease: K8s.V1Lease): LeaseLockInfo | null {
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (!holder) return null;
    const a = lease.metadata?.annotations ?? {};
    // holderIdentity is `${hostname}/${pid}/${random}`; the annotations say the same for humans.
    const [host, pid] = holder.split('/');
    const renewed = timeOf(spec.renewTime ?? spec.acquireTime);
    const acquired = timeOf(spec.acquireTime ?? spec.renewTime);
    const duration = (spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
    return {
      pid: Number(a[LEASE_ANNOTATIONS.pid] ?? pid) || 0,
      host: a[LEASE_ANNOTATIONS.host] ?? host ?? holder,
      at: iso(acquired),
      ...(a[LEASE_ANNOTATIONS.rotation] ? { rotation: a[LEASE_ANNOTATIONS.rotation] } : {}),
      ...(a[LEASE_ANNOTATIONS.command] ? { command: a[LEASE_ANNOTATIONS.command] } : {}),
      holderIdentity: holder,
      renewedAt: iso(renewed),
      expiresAt: iso(renewed + duration),
    };
  }

  function isStale(info: LockInfo): boolean {
    const exp = Date.parse((info as Partial<LeaseLockInfo>).expiresAt ?? '');
    return Number.isFinite(exp) ? exp <= clock.now() : false;
  }

  function lockedError(env: string, lname: string, h: LeaseLockInfo | null): LockedError {
    if (!h) return new LockedError(`environment "${env}": another keyrot took the Lease ${ns}/${lname} at the same moment; it rotates, this run stops`);
    return new LockedError(
      `environment "${env}" is locked by ${h.command ?? 'another keyrot'} (pid ${h.pid} on ${h.host}, since ${h.at}${h.rotation ? `, rotation ${h.rotation}` : ''}; ` +
        `Lease ${ns}/${lname} held by ${h.holderIdentity}, renewed ${h.renewedAt}). Wait for it to finish. ` +
        `If that process is gone, its Lease expires by itself at ${h.expiresAt}; then keyrot resume can take over.`,
    );
  }

  async function readLease(c: Clients, lname: string, op: string): Promise<K8s.V1Lease | undefined> {
    try {
      return await c.leases.readNamespacedLease({ name: lname, namespace: ns }, options(c));
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw failure(c, err, 'get', 'leases', lname, op);
    }
  }

  async function acquireLock(env: string, meta: { rotation?: string; command: string }): Promise<Lock> {
    const c = await connect();
    const lname = leaseName(name, env);
    const identity = `${hostname()}/${process.pid}/${randomBytes(6).toString('hex')}`;
    const ours: Record<string, string> = {
      [LEASE_ANNOTATIONS.pid]: String(process.pid),
      [LEASE_ANNOTATIONS.host]: hostname(),
      [LEASE_ANNOTATIONS.command]: meta.command,
      ...(meta.rotation ? { [LEASE_ANNOTATIONS.rotation]: meta.rotation } : {}),
    };
    const spec = (now: number, transitions: number): K8s.V1LeaseSpec => ({
      holderIdentity: identity,
      leaseDurationSeconds: leaseSeconds,
      acquireTime: micros(c.k8s, now),
      renewTime: micros(c.k8s, now),
      leaseTransitions: transitions,
    });

    for (let attempt = 0; attempt < 3; attempt++) {
      const now = clock.now();
      try {
        const created = await c.leases.createNamespacedLease(
          {
            namespace: ns,
            body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: lname, namespace: ns, labels: LABELS, annotations: ours }, spec: spec(now, 0) },
          },
          options(c),
        );
        return held(c, env, lname, identity, created, meta, now);
      } catch (err) {
        if (!isAlreadyExists(err)) throw failure(c, err, 'create', 'leases', lname, 'lock');
      }
      const current = await readLease(c, lname, 'lock');
      if (!current) continue; // released between our create and our read: create again.
      const holder = leaseInfo(current);
      if (holder && !isStale(holder)) throw lockedError(env, lname, holder);
      // Expired (its holder stopped renewing: crashed, killed, partitioned) or released: take it over.
      const others = Object.fromEntries(Object.entries(current.metadata?.annotations ?? {}).filter(([k]) => !k.startsWith('keyrot.dev/')));
      const body: K8s.V1Lease = {
        ...current,
        metadata: { ...current.metadata, annotations: { ...others, ...ours } },
        spec: { ...current.spec, ...spec(now, (current.spec?.leaseTransitions ?? 0) + 1) },
      };
      try {
        const taken = await c.leases.replaceNamespacedLease({ name: lname, namespace: ns, body }, options(c));
        return held(c, env, lname, identity, taken, meta, now);
      } catch (err) {
        const code = statusCode(err);
        if (code === 404) continue; // deleted meanwhile: create again.
        if (code !== 409) throw failure(c, err, 'update', 'leases', lname, 'lock');
        // Another keyrot's take-over won (same resourceVersion, it was first): name it if we can.
        const now2 = await readLease(c, lname, 'lock').catch(() => undefined);
        throw lockedError(env, lname, now2 ? leaseInfo(now2) : null);
      }
    }
    throw new LockedError(`environment "${env}": could not take the Lease ${ns}/${lname}; other keyrot runs keep taking and releasing it`);
  }

  /** A held Lease: renewed on a timer until released; lost when someone else took it over. */
  function held(c: Clients, env: string, lname: string, identity: string, lease: K8s.V1Lease, meta: { rotation?: string; command: string }, now: number): Lock {
    let current = lease;
    let renewedAt = now;
    let lost = false;
    let released = false;
    let inflight: Promise<void> | undefined;
    const lose = (why: string) => {
      if (lost) return;
      lost = true;
      clearInterval(timer);
      warn(`environment "${env}": keyrot lost its lock, the Lease ${ns}/${lname}: ${why}. Another keyrot may now rotate the same environment; check keyrot status.`);
    };
    /** Re-reads after a 409/404: still ours (someone touched metadata) or taken. */
    const check = async () => {
      const cur = await readLease(c, lname, 'renew');
      if (cur?.spec?.holderIdentity === identity) current = cur;
      else lose(cur ? `it is now held by ${cur.spec?.holderIdentity || 'nobody (released)'}` : 'it was deleted');
    };
    const renew = async () => {
      if (lost || released) return;
      const t = clock.now();
      const spec = current.spec ?? {};
      const body: K8s.V1Lease = {
        ...current,
        spec: { ...spec, acquireTime: micros(c.k8s, timeOf(spec.acquireTime) || t), renewTime: micros(c.k8s, t) },
      };
      try {
        current = await c.leases.replaceNamespacedLease({ name: lname, namespace: ns, body }, options(c));
        renewedAt = t;
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || code === 404) await check().catch(() => {});
        else if (clock.now() - renewedAt >= leaseSeconds * 1000) {
          lose(`it could not be renewed for ${leaseSeconds}s (${err instanceof Error ? failure(c, err, 'update', 'leases', lname, 'renew').message : String(err)})`);
        }
      }
    };
    const timer = setInterval(() => {
      inflight ??= renew().finally(() => (inflight = undefined));
    }, renewEveryMs);
    timer.unref();

    async function release(): Promise<void> {
      if (released) return;
      released = true;
      clearInterval(timer);
      await inflight;
      if (lost) return;
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await c.leases.deleteNamespacedLease(
            { name: lname, namespace: ns, body: { preconditions: { resourceVersion: current.metadata?.resourceVersion } } },
            options(c),
          );
          return;
        } catch (err) {
          const code = statusCode(err);
          if (code === 404) return;
          if (code === 409) {
            // Precondition failed: changed since our last write. Delete only if it is still ours.
            const cur = await readLease(c, lname, 'unlock').catch(() => undefined);
            if (!cur || cur.spec?.holderIdentity !== identity) return;
            current = cur;
            continue;
          }
          if (code === 403) {
            // No delete permission: release as client-go's leader election does, by emptying the holder.
            try {
              const spec = current.spec ?? {};
              await c.leases.replaceNamespacedLease(
                {
                  name: lname,
                  namespace: ns,
                  body: { ...current, spec: { ...spec, holderIdentity: '', acquireTime: micros(c.k8s, timeOf(spec.acquireTime) || clock.now()), renewTime: micros(c.k8s, clock.now()) } },
                },
                options(c),
              );
              return;
            } catch (err2) {
              warn(`could not release the Lease ${ns}/${lname} (${failure(c, err2, 'update', 'leases', lname, 'unlock').message}); it expires by itself within ${leaseSeconds}s`);
              return;
            }
          }
          // The rotation's outcome matters more than the release: an unreleased Lease just expires.
          warn(`could not release the Lease ${ns}/${lname} (${failure(c, err, 'delete', 'leases', lname, 'unlock').message}); it expires by itself within ${leaseSeconds}s`);
          return;
        }
      }
    }

    return {
      path: `Lease ${ns}/${lname}`,
      info: { pid: process.pid, host: hostname(), at: new Date(now).toISOString(), ...(meta.rotation ? { rotation: meta.rotation } : {}), command: meta.command },
      release,
    };
  }

  const trust = kubernetesTrust(
    {
      namespace: ns,
      labels: LABELS,
      core: async () => (await connect()).core,
      options: async () => options(await connect()),
      failure: async (err, verb, resource, object, op) => failure(await connect(), err, verb, resource, object, op),
      statusCode,
      notice: opts.notice ?? ((m) => process.stderr.write(printable(`keyrot: ${m}`) + '\n')),
    },
    { keySecret: opts.keySecret ?? `${name}-state-key`, anchorConfigMap: `${name}-anchor` },
    { ref: opts.stateKey, baseDir: opts.baseDir ?? process.cwd(), env: opts.env },
  );

  return {
    kind: 'kubernetes',
    where,
    trust,
    appendJournalLine(env, make) {
      return append(journalKey(env), (text) => make(text.split('\n').filter((l) => l.trim())), 'journal');
    },
    async readJournalText(env) {
      return (await readData('journal'))[journalKey(env)] ?? '';
    },
    async journalEnvs() {
      return Object.keys(await readData('journal'))
        .map((k) => /^journal\.(.+)\.ndjson$/.exec(k)?.[1])
        .filter((e): e is string => e !== undefined);
    },
    appendAuditLine(make) {
      return append(AUDIT_KEY, (text) => make(text.split('\n').filter((l) => l.trim())), 'audit');
    },
    async readAuditText() {
      return (await readData('audit'))[AUDIT_KEY] ?? '';
    },
    acquireLock,
    async readLock(env) {
      const c = await connect();
      const lease = await readLease(c, leaseName(name, env), 'status');
      return lease ? leaseInfo(lease) : null;
    },
    isStale,
  };
}

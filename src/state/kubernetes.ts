import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock, type Clock } from '../runtime/clock.ts';
import { ConfigError } from '../core/errors.ts';
import { SERVICE_ACCOUNT_DIR } from '../targets/kubernetes/kubeconfig.ts';
import type { StateStore } from './store.ts';
import type { CredentialRef } from '../inventory/credentials.ts';
import { kubernetesTrust } from './kubernetes-trust.ts';
import { printable } from '../core/printable.ts';
import { StateApi, statusCode } from './kubernetes-api.ts';
import { StateConfigMap } from './kubernetes-configmap.ts';
import { LeaseLocks } from './kubernetes-lease.ts';

export { CONFIGMAP_LIMIT_BYTES, MAX_APPEND_TRIES } from './kubernetes-configmap.ts';
export { LEASE_ANNOTATIONS, type LeaseLockInfo } from './kubernetes-lease.ts';

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

export function kubernetesState(opts: KubernetesStateOptions): StateStore {
  const { namespace: ns, name } = opts;
  validate(ns, name);
  const clock = opts.clock ?? systemClock;
  const leaseSeconds = Math.max(1, Math.round(opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS));
  const warn = opts.warn ?? ((m: string) => process.stderr.write(printable(`keyrot: warning: ${m}`) + '\n'));
  const api = new StateApi(ns, clock, { context: opts.context, env: opts.env, serviceAccountDir: opts.serviceAccountDir });
  const configMap = new StateConfigMap(api, { ns, cmName: `${name}-state`, labels: LABELS }, clock, warn);
  const renewEveryMs = opts.renewEveryMs ?? Math.max(200, Math.floor((leaseSeconds * 1000) / 3));
  const leases = new LeaseLocks(api, { ns, labels: LABELS, leaseSeconds, renewEveryMs, clock, warn });
  const journalKey = (env: string) => `journal.${env}.ndjson`;
  const AUDIT_KEY = 'audit.ndjson';
  const nonEmptyLines = (text: string) => text.split('\n').filter((l) => l.trim());
  return {
    kind: 'kubernetes',
    where: `ConfigMap ${ns}/${name}-state (Leases ${name}-<env>)`,
    trust: stateTrust(opts, api, name),
    appendJournalLine: (env, make) => configMap.append(journalKey(env), (text) => make(nonEmptyLines(text)), 'journal'),
    readJournalText: async (env) => (await configMap.readData('journal'))[journalKey(env)] ?? '',
    async journalEnvs() {
      return Object.keys(await configMap.readData('journal'))
        .map((k) => /^journal\.(.+)\.ndjson$/.exec(k)?.[1])
        .filter((e): e is string => e !== undefined);
    },
    appendAuditLine: (make) => configMap.append(AUDIT_KEY, (text) => make(nonEmptyLines(text)), 'audit'),
    readAuditText: async () => (await configMap.readData('audit'))[AUDIT_KEY] ?? '',
    acquireLock: (env, meta) => leases.acquire(env, leaseName(name, env), meta),
    async readLock(env) {
      const lease = await leases.read(await api.connect(), leaseName(name, env), 'status');
      return lease ? leases.info(lease) : null;
    },
    isStale: (info) => leases.isStale(info),
  };
}

/** The state key and the anchor of the streams' heads (kubernetes-trust.ts). */
function stateTrust(opts: KubernetesStateOptions, api: StateApi, name: string): StateStore['trust'] {
  return kubernetesTrust(
    {
      namespace: opts.namespace,
      labels: LABELS,
      core: async () => (await api.connect()).core,
      options: async () => api.options(await api.connect()),
      failure: async (err, verb, resource, object, op) => api.failure(await api.connect(), err, verb, resource, object, op),
      statusCode,
      notice: opts.notice ?? ((m) => process.stderr.write(printable(`keyrot: ${m}`) + '\n')),
    },
    { keySecret: opts.keySecret ?? `${name}-state-key`, anchorConfigMap: `${name}-anchor` },
    { ref: opts.stateKey, baseDir: opts.baseDir ?? process.cwd(), env: opts.env },
  );
}

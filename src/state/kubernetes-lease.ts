import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type * as K8s from '@kubernetes/client-node';
import type { Clock } from '../runtime/clock.ts';
import { LockedError } from '../core/errors.ts';
import type { Lock, LockInfo } from './lock.ts';
import { isAlreadyExists, statusCode, type Clients, type StateApi } from './kubernetes-api.ts';

/**
 * The per-environment lock of `state: kubernetes`: one coordination.k8s.io/v1 Lease, created or
 * taken over when expired, renewed while held, released with a precondition (the protocol:
 * state/kubernetes.ts).
 */

export const LEASE_ANNOTATIONS = {
  pid: 'keyrot.dev/pid',
  host: 'keyrot.dev/host',
  command: 'keyrot.dev/command',
  rotation: 'keyrot.dev/rotation',
} as const;

/** A LockInfo read from a Lease: the holder plus what decides staleness. */
export interface LeaseLockInfo extends LockInfo {
  holderIdentity: string;
  renewedAt: string;
  expiresAt: string;
}

type LockMeta = { rotation?: string; command: string };

export interface LeaseSettings {
  ns: string;
  labels: Record<string, string>;
  leaseSeconds: number;
  renewEveryMs: number;
  clock: Clock;
  warn: (message: string) => void;
}

function micros(c: Clients, ms: number): K8s.V1MicroTime {
  return new c.k8s.V1MicroTime(ms);
}

/** A MicroTime as read back: client-node 2.x leaves it the API server's string (it has no deserializer for it). */
function timeOf(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  return typeof v === 'string' ? Date.parse(v) : NaN;
}

const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : 'an unknown time');

export class LeaseLocks {
  private readonly api: StateApi;
  private readonly s: LeaseSettings;

  constructor(api: StateApi, settings: LeaseSettings) {
    this.api = api;
    this.s = settings;
  }

  /** Who holds the Lease (null when released). */
  info(lease: K8s.V1Lease): LeaseLockInfo | null {
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (!holder) return null;
    const a = lease.metadata?.annotations ?? {};
    // holderIdentity is `${hostname}/${pid}/${random}`; the annotations say the same for humans.
    const [host, pid] = holder.split('/');
    const renewed = timeOf(spec.renewTime ?? spec.acquireTime);
    const acquired = timeOf(spec.acquireTime ?? spec.renewTime);
    const duration = (spec.leaseDurationSeconds ?? this.s.leaseSeconds) * 1000;
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

  isStale(info: LockInfo): boolean {
    const exp = Date.parse((info as Partial<LeaseLockInfo>).expiresAt ?? '');
    return Number.isFinite(exp) ? exp <= this.s.clock.now() : false;
  }

  async read(c: Clients, lname: string, op: string): Promise<K8s.V1Lease | undefined> {
    try {
      return await c.leases.readNamespacedLease({ name: lname, namespace: this.s.ns }, this.api.options(c));
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw this.api.failure(c, err, 'get', 'leases', lname, op);
    }
  }

  private lockedError(env: string, lname: string, h: LeaseLockInfo | null): LockedError {
    const { ns } = this.s;
    if (!h) return new LockedError(`environment "${env}": another keyrot took the Lease ${ns}/${lname} at the same moment; it rotates, this run stops`);
    return new LockedError(
      `environment "${env}" is locked by ${h.command ?? 'another keyrot'} (pid ${h.pid} on ${h.host}, since ${h.at}${h.rotation ? `, rotation ${h.rotation}` : ''}; ` +
        `Lease ${ns}/${lname} held by ${h.holderIdentity}, renewed ${h.renewedAt}). Wait for it to finish. ` +
        `If that process is gone, its Lease expires by itself at ${h.expiresAt}; then \`keyrot resume\` can take over.`,
    );
  }

  /** Create the Lease; if it exists, take it over when expired or released, else refuse naming its holder. */
  async acquire(env: string, lname: string, meta: LockMeta): Promise<Lock> {
    const c = await this.api.connect();
    const identity = `${hostname()}/${process.pid}/${randomBytes(6).toString('hex')}`;
    const ours: Record<string, string> = {
      [LEASE_ANNOTATIONS.pid]: String(process.pid),
      [LEASE_ANNOTATIONS.host]: hostname(),
      [LEASE_ANNOTATIONS.command]: meta.command,
      ...(meta.rotation ? { [LEASE_ANNOTATIONS.rotation]: meta.rotation } : {}),
    };
    const spec = (now: number, transitions: number): K8s.V1LeaseSpec => ({
      holderIdentity: identity,
      leaseDurationSeconds: this.s.leaseSeconds,
      acquireTime: micros(c, now),
      renewTime: micros(c, now),
      leaseTransitions: transitions,
    });
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.s.clock.now();
      const created = await this.create(c, lname, ours, spec(now, 0));
      if (created) return new HeldLease(this, c, { env, lname, identity, meta, now }, created).lock();
      const current = await this.read(c, lname, 'lock');
      if (!current) continue; // released between our create and our read: create again.
      const holder = this.info(current);
      if (holder && !this.isStale(holder)) throw this.lockedError(env, lname, holder);
      // Expired (its holder stopped renewing: crashed, killed, partitioned) or released: take it over.
      const taken = await this.takeOver(c, env, lname, current, ours, spec(now, (current.spec?.leaseTransitions ?? 0) + 1));
      if (taken) return new HeldLease(this, c, { env, lname, identity, meta, now }, taken).lock();
    }
    throw new LockedError(`environment "${env}": could not take the Lease ${this.s.ns}/${lname}; other keyrot runs keep taking and releasing it`);
  }

  /** The created Lease, or undefined when it already exists. */
  private async create(c: Clients, lname: string, annotations: Record<string, string>, spec: K8s.V1LeaseSpec): Promise<K8s.V1Lease | undefined> {
    const { ns } = this.s;
    const body = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: lname, namespace: ns, labels: this.s.labels, annotations }, spec };
    try {
      return await c.leases.createNamespacedLease({ namespace: ns, body }, this.api.options(c));
    } catch (err) {
      if (!isAlreadyExists(err)) throw this.api.failure(c, err, 'create', 'leases', lname, 'lock');
      return undefined;
    }
  }

  /** A PUT carrying the read resourceVersion: of racing take-overs one wins, the others get 409. Undefined when it was deleted or changed meanwhile. */
  private async takeOver(c: Clients, env: string, lname: string, current: K8s.V1Lease, ours: Record<string, string>, spec: K8s.V1LeaseSpec): Promise<K8s.V1Lease | undefined> {
    const others = Object.fromEntries(Object.entries(current.metadata?.annotations ?? {}).filter(([k]) => !k.startsWith('keyrot.dev/')));
    const body: K8s.V1Lease = { ...current, metadata: { ...current.metadata, annotations: { ...others, ...ours } }, spec: { ...current.spec, ...spec } };
    try {
      return await c.leases.replaceNamespacedLease({ name: lname, namespace: this.s.ns, body }, this.api.options(c));
    } catch (err) {
      const code = statusCode(err);
      if (code === 404) return undefined; // deleted meanwhile: create again.
      if (code !== 409) throw this.api.failure(c, err, 'update', 'leases', lname, 'lock');
      // The Lease changed since we read it: another keyrot's take-over won, or its holder renewed
      // it after all. The caller reads it again: a fresh holder is then named by the staleness check.
      return undefined;
    }
  }

  replace(c: Clients, lname: string, body: K8s.V1Lease): Promise<K8s.V1Lease> {
    return c.leases.replaceNamespacedLease({ name: lname, namespace: this.s.ns, body }, this.api.options(c));
  }

  delete(c: Clients, lname: string, resourceVersion: string | undefined): Promise<unknown> {
    return c.leases.deleteNamespacedLease({ name: lname, namespace: this.s.ns, body: { preconditions: { resourceVersion } } }, this.api.options(c));
  }

  settings(): LeaseSettings {
    return this.s;
  }

  failureMessage(c: Clients, err: unknown, verb: string, lname: string, op: string): string {
    return this.api.failure(c, err, verb, 'leases', lname, op).message;
  }
}

/** A held Lease: renewed on a timer until released; lost when someone else took it over. */
class HeldLease {
  private current: K8s.V1Lease;
  private renewedAt: number;
  private lost = false;
  private released = false;
  private inflight: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly locks: LeaseLocks;
  private readonly c: Clients;
  private readonly h: { env: string; lname: string; identity: string; meta: LockMeta; now: number };
  private readonly s: LeaseSettings;

  constructor(locks: LeaseLocks, c: Clients, held: { env: string; lname: string; identity: string; meta: LockMeta; now: number }, lease: K8s.V1Lease) {
    this.locks = locks;
    this.c = c;
    this.h = held;
    this.s = locks.settings();
    this.current = lease;
    this.renewedAt = held.now;
    this.timer = setInterval(() => {
      this.inflight ??= this.renew().finally(() => (this.inflight = undefined));
    }, this.s.renewEveryMs);
    this.timer.unref();
  }

  lock(): Lock {
    const { meta, now, lname } = this.h;
    return {
      path: `Lease ${this.s.ns}/${lname}`,
      info: { pid: process.pid, host: hostname(), at: new Date(now).toISOString(), ...(meta.rotation ? { rotation: meta.rotation } : {}), command: meta.command },
      release: () => this.release(),
    };
  }

  private lose(why: string): void {
    if (this.lost) return;
    this.lost = true;
    clearInterval(this.timer);
    this.s.warn(`environment "${this.h.env}": keyrot lost its lock, the Lease ${this.s.ns}/${this.h.lname}: ${why}. Another keyrot may now rotate the same environment; check \`keyrot status\`.`);
  }

  /** Re-reads after a 409/404: still ours (someone touched metadata) or taken. */
  private async check(): Promise<void> {
    const cur = await this.locks.read(this.c, this.h.lname, 'renew');
    if (cur?.spec?.holderIdentity === this.h.identity) this.current = cur;
    else this.lose(cur ? `it is now held by ${cur.spec?.holderIdentity || 'nobody (released)'}` : 'it was deleted');
  }

  private async renew(): Promise<void> {
    if (this.lost || this.released) return;
    const t = this.s.clock.now();
    const spec = this.current.spec ?? {};
    const body: K8s.V1Lease = { ...this.current, spec: { ...spec, acquireTime: micros(this.c, timeOf(spec.acquireTime) || t), renewTime: micros(this.c, t) } };
    try {
      this.current = await this.locks.replace(this.c, this.h.lname, body);
      this.renewedAt = t;
    } catch (err) {
      const code = statusCode(err);
      const { leaseSeconds } = this.s;
      if (code === 409 || code === 404) await this.check().catch(() => {});
      else if (this.s.clock.now() - this.renewedAt >= leaseSeconds * 1000) {
        this.lose(`it could not be renewed for ${leaseSeconds}s (${err instanceof Error ? this.locks.failureMessage(this.c, err, 'update', this.h.lname, 'renew') : String(err)})`);
      }
    }
  }

  /** DELETE with a resourceVersion precondition, so only a Lease that is still ours is removed. */
  private async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.inflight;
    if (this.lost) return;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.locks.delete(this.c, this.h.lname, this.current.metadata?.resourceVersion);
        return;
      } catch (err) {
        const code = statusCode(err);
        if (code === 404) return;
        if (code === 409) {
          // Precondition failed: changed since our last write. Delete only if it is still ours.
          const cur = await this.locks.read(this.c, this.h.lname, 'unlock').catch(() => undefined);
          if (!cur || cur.spec?.holderIdentity !== this.h.identity) return;
          this.current = cur;
          continue;
        }
        if (code === 403) return this.releaseByEmptying();
        // The rotation's outcome matters more than the release: an unreleased Lease just expires.
        return this.warnUnreleased(err, 'delete');
      }
    }
  }

  /** No delete permission: release as client-go's leader election does, by emptying the holder. */
  private async releaseByEmptying(): Promise<void> {
    const now = this.s.clock.now();
    const spec = this.current.spec ?? {};
    const body = { ...this.current, spec: { ...spec, holderIdentity: '', acquireTime: micros(this.c, timeOf(spec.acquireTime) || now), renewTime: micros(this.c, now) } };
    try {
      await this.locks.replace(this.c, this.h.lname, body);
    } catch (err) {
      this.warnUnreleased(err, 'update');
    }
  }

  private warnUnreleased(err: unknown, verb: string): void {
    const { ns, leaseSeconds } = this.s;
    this.s.warn(`could not release the Lease ${ns}/${this.h.lname} (${this.locks.failureMessage(this.c, err, verb, this.h.lname, 'unlock')}); it expires by itself within ${leaseSeconds}s`);
  }
}

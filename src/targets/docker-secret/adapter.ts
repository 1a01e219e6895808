import { waitTimeoutMs } from '../types.ts';
import { TargetError, toTargetError } from '../../core/errors.ts';
import { formatDuration } from '../../inventory/duration.ts';
import type { Secret } from '../../core/secret.ts';
import type {
  CommonTargetConfig,
  OpContext,
  PreflightResult,
  ReadResult,
  Target,
  TargetContext,
  VerifyResult,
} from '../types.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { poll } from '../../runtime/poll.ts';
import { sha256Hex } from '../docker-exec.ts';
import { probeServices, verifyServices } from './exec-check.ts';
import type { DockerSecretConfig, DockerSecretReceipt } from './index.ts';
import {
  LABELS,
  MANAGED_BY,
  Swarm,
  describeFile,
  fail,
  familyVersion,
  nextSecretName,
  refsOf,
  settledWithoutUpdateStatus,
  type SecretObject,
  type SecretReference,
  type ServiceObject,
} from './swarm.ts';

export { LABELS, familyVersion, nextSecretName, settledWithoutUpdateStatus } from './swarm.ts';
export type { SecretReference, ServiceObject, ServiceSpec, TaskObject } from './swarm.ts';

/*
 * Docker Swarm secrets are immutable (Docker docs, "Manage sensitive data with Docker secrets"): a rotation creates `<secret>_<n>`,
 * swaps each service's reference to it (same target file, uid, gid, mode), and waits for the
 * rolling update. The old secret stays until finalize, so restore is a swap back: exact, and it
 * never needs the old value. Values only ever travel in a request BODY (`Data`, base64) over the
 * socket: keyrot never runs the docker CLI, so no value is ever in a process's argv.
 */

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

const unreadable: ReadResult = {
  kind: 'unreadable',
  reason: 'the Docker Engine never returns secret data: keyrot verifies by the keyrot.fingerprint label and the services’ references',
};

/** The secret this rotation created for `fingerprint` (never a restore re-creation). */
function findOurs(family: SecretObject[], rotationId: string, fingerprint: string): SecretObject | undefined {
  return family.find((s) => {
    const l = s.Spec.Labels ?? {};
    return l[LABELS.managedBy] === MANAGED_BY && l[LABELS.rotation] === rotationId && l[LABELS.fingerprint] === fingerprint && !l[LABELS.restored];
  });
}

function findNew(op: OpContext, receipt: DockerSecretReceipt | undefined, family: SecretObject[]): SecretObject | undefined {
  const id = receipt?.newSecretId;
  return (id ? family.find((s) => s.ID === id) : undefined) ?? findOurs(family, op.rotationId, op.fingerprint);
}

/** Why the Engine cannot hold swarm secrets (not a manager of an active swarm), or undefined when it can. */
export function notAManager(swarm: NonNullable<Awaited<ReturnType<Swarm['info']>>['Swarm']>, display: string): string | undefined {
  if (swarm.LocalNodeState !== 'active') {
    const how =
      swarm.LocalNodeState === 'locked'
        ? 'the swarm is locked: unlock it with docker swarm unlock'
        : `it is not part of a swarm (${swarm.LocalNodeState ?? 'inactive'}): Docker secrets need swarm mode. On a single host run "docker swarm init"; otherwise point DOCKER_HOST at a manager node`;
    return `the Docker Engine at ${display} is not a swarm manager: ${how}`;
  }
  if (!swarm.ControlAvailable) {
    return `the Docker Engine at ${display} is a swarm worker, not a manager: point DOCKER_HOST at a manager node (docker node ls on a manager lists them) or promote this node (docker node promote)`;
  }
  return undefined;
}

function describeCurrent(secret: SecretObject, services: string[]): string {
  const l = secret.Spec.Labels ?? {};
  const label = l[LABELS.fingerprint]
    ? `keyrot.fingerprint ${l[LABELS.fingerprint]}${l[LABELS.rotation] ? `, rotation ${l[LABELS.rotation]}` : ''}`
    : 'created outside keyrot: no fingerprint label';
  return `current secret ${secret.Spec.Name} (${label}), mounted by ${services.join('; ')}`;
}

export function createDockerSecretTarget(config: DockerSecretConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<DockerSecretReceipt> {
  return new DockerSecretTarget(config, ctx);
}

/** One Swarm secret family mounted by a list of services; a rotation creates `<secret>_<n>` and swaps the services to it. */
class DockerSecretTarget implements Target<DockerSecretReceipt> {
  readonly id = 'docker-secret' as const;
  readonly name: string;
  readonly location: string;
  readonly lockKey: string;
  readonly rateLimitKey: string;
  private readonly config: DockerSecretConfig & CommonTargetConfig;
  private readonly ctx: TargetContext & { name: string };
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly swarm: Swarm;

  constructor(config: DockerSecretConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.config = config;
    this.ctx = ctx;
    this.base = config.secret;
    const hostSetting = config.endpoint ?? ctx.env.DOCKER_HOST;
    this.timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
    this.swarm = new Swarm(this.base, hostSetting, waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS), ctx);
    this.name = ctx.name;
    this.location = `swarm secret ${this.base} (${config.services.join(', ')})`;
    this.lockKey = `docker-secret:${hostSetting ?? 'default'}:${this.base}`;
    this.rateLimitKey = this.swarm.rateLimitKey;
  }

  private async guarded<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toTargetError(err, this.ctx.name, op);
    }
  }

  async read(): Promise<ReadResult> {
    return unreadable;
  }

  async preflight(signal?: AbortSignal): Promise<PreflightResult> {
    try {
      const eng = this.swarm.eng();
      const info = await eng.info(signal);
      const notes = [`Docker Engine ${info.version} (API ${info.apiVersion}) at ${eng.host.display}`];
      const sys = await this.swarm.info(signal);
      const blocked = notAManager(sys.Swarm ?? {}, eng.host.display);
      if (blocked) return { status: 'blocked', reason: blocked, current: unreadable, notes };
      const family = await this.swarm.listFamily(signal);
      if (family.length === 0) return { status: 'blocked', reason: this.swarm.missingSecret().message, current: unreadable, notes };

      const problems = await this.checkServices(family, notes, signal);
      if (this.config.verify === 'exec' && !problems.length) await this.probeExec(family, notes, problems, signal);
      if (problems.length) return { status: 'blocked', reason: problems.join('; '), current: unreadable, notes };
      notes.push(
        `write creates ${nextSecretName(this.base, family.map((s) => s.Spec.Name))} and points ${this.config.services.join(', ')} at it (a rolling restart of their tasks; waits up to ${formatDuration(this.timeoutMs)} each)`,
        'finalize removes the old secret once no service mounts it',
      );
      return { status: 'ready', current: unreadable, notes };
    } catch (err) {
      const e = toTargetError(err, this.ctx.name, 'preflight');
      // Transient (Engine busy, socket reset, timeout): not an answer; the engine retries it, bounded.
      if (e.retryable) throw e;
      return { status: 'blocked', reason: e.message, current: unreadable };
    }
  }

  /** Preflight of each service: it exists and mounts one secret of the family. Notes what each mounts; returns the problems. */
  private async checkServices(family: SecretObject[], notes: string[], signal?: AbortSignal): Promise<string[]> {
    const problems: string[] = [];
    const current = new Map<string, { secret: SecretObject; services: string[] }>();
    for (const name of this.config.services) {
      try {
        const svc = await this.swarm.getService(name, signal);
        const mounted = this.swarm.mountedOf(svc, family);
        if (!mounted) {
          problems.push(this.swarm.notMounting(name).message);
          continue;
        }
        const entry = current.get(mounted.secret.ID) ?? { secret: mounted.secret, services: [] };
        entry.services.push(`${name} at ${mounted.refs.map(describeFile).join(', ')}`);
        current.set(mounted.secret.ID, entry);
      } catch (err) {
        if (err instanceof TargetError && (err.kind === 'not-found' || err.kind === 'invalid')) problems.push(err.message);
        else throw err;
      }
    }
    for (const { secret, services } of current.values()) notes.push(describeCurrent(secret, services));
    return problems;
  }

  private execOptions(signal?: AbortSignal) {
    return { deadlineMs: waitTimeoutMs(this.config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS), clock: this.ctx.clock, signal };
  }

  private servicesNow(signal?: AbortSignal) {
    return Promise.all(this.config.services.map(async (name) => ({ name, svc: await this.swarm.getService(name, signal) })));
  }

  /** verify: exec before anything is written (exec-check.ts): each service's mounted secret, as its running tasks see it. */
  private async probeExec(family: SecretObject[], notes: string[], problems: string[], signal?: AbortSignal): Promise<void> {
    const services = (await this.servicesNow(signal)).map((s) => ({ ...s, secretId: this.swarm.mountedOf(s.svc, family)!.secret.ID }));
    const r = await probeServices(this.swarm.eng(), services, this.execOptions(signal));
    notes.push(...r.notes);
    problems.push(...r.problems);
  }

  /** verify: exec after the update (exec-check.ts): each running task's container sees the new key's hash. */
  private async execVerify(created: SecretObject, value: Secret, signal?: AbortSignal): Promise<string> {
    const seen = await verifyServices(this.swarm.eng(), await this.servicesNow(signal), created.ID, sha256Hex(value.reveal()), this.execOptions(signal));
    return `; ${seen.join(', ')} see key ${value.fingerprint} (SHA-256 computed in the container)`;
  }

  write(value: Secret, op: OpContext): Promise<DockerSecretReceipt> {
    return this.guarded('write', () => this.doWrite(value, op));
  }

  private async doWrite(value: Secret, op: OpContext): Promise<DockerSecretReceipt> {
    const signal = op.signal;
    let family = await this.swarm.listFamily(signal);
    const services = [];
    for (const name of this.config.services) services.push(await this.swarm.getService(name, signal));

    let created = findOurs(family, op.rotationId, value.fingerprint);
    if (!created) {
      created = await this.createNew(value, op, family, services);
      family = [...family, created];
    }
    const labels = created.Spec.Labels ?? {};
    // One service at a time, each waited for: a service whose new tasks fail stops the rotation
    // before the next service is touched, leaving less to restore.
    for (const svc of services) await this.swapTo(svc.Spec.Name, created, family, signal);

    return {
      newSecret: created.Spec.Name,
      newSecretId: created.ID,
      oldSecret: labels[LABELS.previous] ?? null,
      oldSecretId: labels[LABELS.previousId] ?? null,
      services: services.map((s) => s.Spec.Name),
    };
  }

  /** Creates `<secret>_<n>` for the new key, labelled with what each service mounted before (restore and finalize read those). */
  private async createNew(value: Secret, op: OpContext, family: SecretObject[], services: ServiceObject[]): Promise<SecretObject> {
    if (family.length === 0) throw this.swarm.missingSecret();
    const labels: Record<string, string> = {
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.fingerprint]: value.fingerprint,
      [LABELS.rotation]: op.rotationId,
    };
    let highest: SecretObject | undefined;
    for (const svc of services) {
      const mounted = this.swarm.mountedOf(svc, family);
      if (!mounted) throw this.swarm.notMounting(svc.Spec.Name);
      labels[LABELS.previousOf(svc.Spec.Name)] = mounted.secret.ID;
      if (!highest || familyVersion(this.base, mounted.secret.Spec.Name)! > familyVersion(this.base, highest.Spec.Name)!) highest = mounted.secret;
    }
    labels[LABELS.previous] = highest!.Spec.Name;
    labels[LABELS.previousId] = highest!.ID;
    return this.swarm.createSecret(value, labels, family, op.signal);
  }

  /** Points one service at `created` (from the secret it mounted before) and waits for its rolling update. */
  private async swapTo(name: string, created: SecretObject, family: SecretObject[], signal?: AbortSignal): Promise<void> {
    const newId = created.ID;
    const prevId = (created.Spec.Labels ?? {})[LABELS.previousOf(name)];
    const familyIds = new Set(family.map((s) => s.ID));
    const from = (r: SecretReference) => r.SecretID !== newId && (prevId ? r.SecretID === prevId : familyIds.has(r.SecretID));
    let outcome = await this.swarm.swap(name, from, created, signal);
    if (outcome === 'missing' && prevId) {
      // The service was changed since the secret was created (its old mount replaced): swap whatever family secret it mounts now.
      outcome = await this.swarm.swap(name, (r) => r.SecretID !== newId && familyIds.has(r.SecretID), created, signal);
    }
    if (outcome === 'missing') throw this.swarm.notMounting(name);
    await this.waitForUpdate(name, created, signal);
  }

  verify(value: Secret, op: OpContext, receipt: DockerSecretReceipt | undefined): Promise<VerifyResult> {
    return this.guarded('verify', () => this.doVerify(value, op, receipt));
  }

  private async doVerify(value: Secret, op: OpContext, receipt: DockerSecretReceipt | undefined): Promise<VerifyResult> {
    const signal = op.signal;
    const base = this.base;
    const family = await this.swarm.listFamily(signal);
    const created = findNew({ ...op, fingerprint: value.fingerprint }, receipt, family);
    if (!created) {
      throw fail(`no ${base}_<n> secret of rotation ${op.rotationId} exists: the write did not happen (or was restored)`, 'mismatch');
    }
    const fp = (created.Spec.Labels ?? {})[LABELS.fingerprint];
    if (fp !== value.fingerprint) {
      throw fail(`secret ${created.Spec.Name} is labelled keyrot.fingerprint ${fp ?? '(none)'}, not the new key's ${value.fingerprint}`, 'mismatch');
    }
    const states: string[] = [];
    for (const name of this.config.services) {
      const svc = await this.swarm.getService(name, signal);
      if (!refsOf(svc.Spec).some((r) => r.SecretID === created.ID)) {
        const mounted = refsOf(svc.Spec).filter((r) => familyVersion(base, r.SecretName) !== null).map((r) => r.SecretName);
        throw fail(`service ${name} mounts ${mounted.join(', ') || 'no ' + base + ' secret'}, not ${created.Spec.Name}`, 'mismatch');
      }
      // Normally done already (write waited); after a resume this is where the wait happens.
      states.push(`${name}: ${await this.waitForUpdate(name, created, signal)}`);
    }
    const inside = this.config.verify === 'exec' ? await this.execVerify(created, value, signal) : '';
    return {
      method: 'metadata',
      detail: `${this.config.services.join(', ')} mount ${created.Spec.Name} (keyrot.fingerprint ${value.fingerprint}, rotation ${op.rotationId}); ${states.join('; ')}${inside}`,
    };
  }

  restore(previous: Secret | null, op: OpContext, receipt: DockerSecretReceipt | undefined): Promise<void> {
    return this.guarded('restore', () => this.doRestore(previous, op, receipt));
  }

  private async doRestore(previous: Secret | null, op: OpContext, receipt: DockerSecretReceipt | undefined): Promise<void> {
    const signal = op.signal;
    let family = await this.swarm.listFamily(signal);
    const created = findNew(op, receipt, family);
    // No secret of this rotation: the write never created one, or an earlier restore swapped the
    // services back and removed it (it is only removed once nothing mounts it). Nothing to undo.
    if (!created) return;
    const errors: TargetError[] = [];
    for (const name of this.config.services) {
      try {
        family = await this.swapBack(name, created, previous, op, receipt, family);
      } catch (err) {
        errors.push(toTargetError(err, this.ctx.name, 'restore'));
      }
    }
    if (errors.length) throw errors.length === 1 ? errors[0]! : fail(errors.map((e) => e.message).join('; '), errors[0]!.kind, errors.some((e) => e.retryable));
    const removed = await this.swarm.removeSecret(created, signal);
    if (removed === 'in-use') {
      this.ctx.logger.warn(`left Docker secret ${created.Spec.Name} in place: a service outside this target mounts it`, { target: this.ctx.name });
    }
  }

  /** Restore of one service: back to the secret it mounted before (re-created from `previous` if gone). Returns the family as it now is. */
  private async swapBack(
    name: string,
    created: SecretObject,
    previous: Secret | null,
    op: OpContext,
    receipt: DockerSecretReceipt | undefined,
    family: SecretObject[],
  ): Promise<SecretObject[]> {
    const signal = op.signal;
    const labels = created.Spec.Labels ?? {};
    const svc = await this.swarm.getService(name, signal);
    const prevId = labels[LABELS.previousOf(svc.Spec.Name)] ?? labels[LABELS.previousId] ?? receipt?.oldSecretId ?? undefined;
    let back = prevId ? family.find((s) => s.ID === prevId) : undefined;
    if (!refsOf(svc.Spec).some((r) => r.SecretID === created.ID)) {
      // Swapped back already (a restore interrupted while its tasks rolled): wait for them too.
      if (back && refsOf(svc.Spec).some((r) => r.SecretID === back!.ID)) await this.waitForUpdate(name, back, signal);
      return family;
    }
    if (!back) {
      if (!previous) {
        throw fail(
          `cannot swap service ${name} back: the secret it mounted before (${labels[LABELS.previous] ?? 'unknown'}) no longer exists and no previous value is known; it still mounts ${created.Spec.Name}`,
          'not-found',
        );
      }
      back = await this.recreate(previous, op, family, signal);
      family = [...family.filter((s) => s.ID !== back!.ID), back];
    }
    await this.swarm.swap(name, (r) => r.SecretID === created.ID, back, signal);
    await this.waitForUpdate(name, back, signal);
    return family;
  }

  /** Re-creates the old value as a new secret, for a restore whose old secret was already removed. Idempotent per rotation. */
  private async recreate(previous: Secret, op: OpContext, family: SecretObject[], signal?: AbortSignal): Promise<SecretObject> {
    const existing = family.find((s) => {
      const l = s.Spec.Labels ?? {};
      return l[LABELS.restored] === 'true' && l[LABELS.rotation] === op.rotationId && l[LABELS.fingerprint] === previous.fingerprint;
    });
    if (existing) return existing;
    const labels = {
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.fingerprint]: previous.fingerprint,
      [LABELS.rotation]: op.rotationId,
      [LABELS.restored]: 'true',
    };
    return this.swarm.createSecret(previous, labels, family, signal);
  }

  finalize(op: OpContext, receipt: DockerSecretReceipt | undefined): Promise<void> {
    return this.guarded('finalize', () => this.doFinalize(op, receipt));
  }

  private async doFinalize(op: OpContext, receipt: DockerSecretReceipt | undefined): Promise<void> {
    const signal = op.signal;
    const family = await this.swarm.listFamily(signal);
    const created = findNew(op, receipt, family);
    const oldIds = new Set<string>();
    for (const [k, v] of Object.entries(created?.Spec.Labels ?? {})) {
      if (k === LABELS.previousId || k.startsWith(`${LABELS.previous}.`)) oldIds.add(v);
    }
    if (receipt?.oldSecretId) oldIds.add(receipt.oldSecretId);
    if (created) oldIds.delete(created.ID);
    const olds = family.filter((s) => oldIds.has(s.ID));
    if (olds.length === 0) return; // already removed (finalize is idempotent)

    const all = await this.swarm.allServices(signal);
    const conflicts: string[] = [];
    for (const old of olds) {
      const conflict = await this.removeOld(old, all, created, signal);
      if (conflict) conflicts.push(conflict);
    }
    if (conflicts.length) throw fail(conflicts.join('; '), 'conflict');
  }

  /** Removes an old secret of the family unless a service still mounts it; returns what blocks it, if anything. */
  private async removeOld(old: SecretObject, all: ServiceObject[], created: SecretObject | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const users = all.filter((svc) => refsOf(svc.Spec).some((r) => r.SecretID === old.ID)).map((svc) => svc.Spec.Name);
    // The old secret may have been created by hand: keyrot removes it only because it belongs
    // to this family (`<secret>` or `<secret>_<n>`) and no service mounts it any more.
    const outcome = users.length ? 'in-use' : await this.swarm.removeSecret(old, signal);
    if (outcome === 'in-use') {
      const who = users.length ? users.join(', ') : 'a service';
      return `old secret ${old.Spec.Name} is still mounted by ${who}, which still reads the old key: point ${users.length > 1 ? 'them' : 'it'} at ${created?.Spec.Name ?? 'the new secret'} (add to services: of this target) and finalize again; keyrot left ${old.Spec.Name} in place`;
    }
    if (outcome === 'removed' && (old.Spec.Labels ?? {})[LABELS.managedBy] !== MANAGED_BY) {
      this.ctx.logger.info(`removed ${old.Spec.Name}, created outside keyrot: no service mounts it any more`, { target: this.ctx.name });
    }
    return undefined;
  }

  /**
   * Waits until the service's tasks run with secret `secretId`:
   * - `UpdateStatus.State` completed → done; paused / rollback_* → the new tasks failed: error.
   * - no `UpdateStatus`: the Engine clears it on every spec update (swarmkit controlapi
   *   UpdateService "Reset update status") and the updater only sets one when it has tasks to
   *   replace ("Abort immediately if all tasks are clean", orchestrator/update/updater.go). A
   *   service scaled to 0 (checked: `--replicas 0` on Engine 20.10) or a global service without
   *   eligible nodes never gets one, so done = as many tasks as replicas (0 for a scaled-down
   *   service; every live task for a global one) run with the secret, and no live task mounts
   *   anything else. Before the updater starts, the old tasks still mount the old secret, so this
   *   cannot finish early.
   */
  private async waitForUpdate(serviceName: string, secret: SecretObject, signal?: AbortSignal): Promise<string> {
    const seen = { progress: 'not started', why: '' };
    const done = await poll({
      check: () => this.lookAtUpdate(serviceName, secret, seen, signal),
      until: (detail) => detail !== undefined,
      deadlineMs: this.timeoutMs,
      clock: this.ctx.clock,
      signal,
      describe: () =>
        `service ${serviceName} is still updating after ${formatDuration(this.timeoutMs)} (${seen.progress}${seen.why}): check docker service ps ${serviceName}; raise timeout: of this target if its tasks start slowly`,
    });
    return done!;
  }

  /** One look: the detail when the update is done, undefined while it runs (noting progress in `seen`); a failed update throws. */
  private async lookAtUpdate(
    serviceName: string,
    secret: SecretObject,
    seen: { progress: string; why: string },
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const svc = await this.swarm.getService(serviceName, signal);
    const status = svc.UpdateStatus ?? undefined;
    const state = status?.State;
    const why = (seen.why = status?.Message ? `: ${status.Message}` : '');
    if (state?.startsWith('rollback')) {
      throw fail(
        `Swarm rolled back the update of service ${serviceName} (${state}${why}): its tasks did not stay up with secret ${secret.Spec.Name}; see docker service ps --no-trunc ${serviceName}`,
        'unavailable',
      );
    }
    if (!refsOf(svc.Spec).some((r) => r.SecretID === secret.ID)) {
      throw fail(`service ${serviceName} no longer mounts ${secret.Spec.Name}: it was changed while keyrot waited for its update`, 'conflict');
    }
    if (state === 'completed') return 'update completed';
    if (state === 'paused') {
      throw fail(
        `the rolling update of service ${serviceName} is paused${why}: its new tasks failed with secret ${secret.Spec.Name}; see docker service ps --no-trunc ${serviceName}`,
        'unavailable',
      );
    }
    seen.progress = state ?? 'not started';
    if (state) return undefined;
    const settled = settledWithoutUpdateStatus(svc, await this.swarm.tasksOf(svc.ID, signal), secret.ID);
    seen.progress = settled.detail;
    return settled.done ? settled.detail : undefined;
  }

  async close(): Promise<void> {
    this.swarm.close();
  }
}

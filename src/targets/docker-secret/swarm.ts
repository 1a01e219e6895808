import { TargetError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import type { TargetContext } from '../types.ts';
import { DockerApiError, DockerEngine, parseDockerHost } from '../docker-engine.ts';
import { laneOf } from '../common.ts';
import { dockerSecret } from './index.ts';

/*
 * The Swarm side of the docker-secret target: the Engine object shapes keyrot reads, secret
 * naming, and the Engine calls (secrets, services, tasks) the adapter is built from.
 */

/** Labels keyrot puts on the secrets it creates. The new secret records what it replaces, so restore and finalize work without the journal's receipt. */
export const LABELS = {
  managedBy: 'managed-by',
  fingerprint: 'keyrot.fingerprint',
  rotation: 'keyrot.rotation',
  /** Name and id of the secret the services mounted before (the highest-numbered one when they differed). */
  previous: 'keyrot.previous',
  previousId: 'keyrot.previous-id',
  /** Per service (by name): the id of the secret that service mounted before this rotation. */
  previousOf: (service: string) => `keyrot.previous.${service}`,
  /** Set on a secret restore re-created from the old value because the old secret was gone. */
  restored: 'keyrot.restored',
} as const;

export const MANAGED_BY = 'keyrot';
/** Bounded retries on the service's optimistic-concurrency `version` (the engine's retry policy does not see these). */
const MAX_VERSION_CONFLICTS = 5;
/** Task desired states after which the orchestrator no longer wants the task (swarmkit api.TaskState). */
const TERMINAL_DESIRED = new Set(['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned']);
const DEFAULT_TIMEOUT_MS = 5 * 60_000;

// --- Engine object shapes (only what keyrot reads; specs are round-tripped whole) ----------------

export interface SecretObject {
  ID: string;
  Spec: { Name: string; Labels?: Record<string, string> | null };
}

export interface SecretReference {
  File?: { Name: string; UID?: string; GID?: string; Mode?: number };
  SecretID: string;
  SecretName: string;
}

export interface ServiceSpec {
  Name: string;
  TaskTemplate?: { ContainerSpec?: { Secrets?: SecretReference[] | null; [k: string]: unknown }; [k: string]: unknown };
  [k: string]: unknown;
}

export interface ServiceObject {
  ID: string;
  Version: { Index: number };
  Spec: ServiceSpec;
  UpdateStatus?: { State?: string; Message?: string } | null;
}

export interface TaskObject {
  ID: string;
  DesiredState?: string;
  Status?: { State?: string; Err?: string; Message?: string };
  Spec?: { ContainerSpec?: { Secrets?: SecretReference[] | null } };
}

export interface InfoObject {
  Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; Error?: string };
}

// --- Naming ------------------------------------------------------------------------------------

/** The version a secret name carries in this family: the base name is 1, `<base>_<n>` is n, anything else null. */
export function familyVersion(base: string, name: string): number | null {
  if (name === base) return 1;
  if (!name.startsWith(`${base}_`)) return null;
  const rest = name.slice(base.length + 1);
  return /^[1-9]\d{0,8}$/.test(rest) ? Number(rest) : null;
}

/** The next free `<base>_<n>`: one above the highest existing version (the base counts as 1, so the first is `_2`). */
export function nextSecretName(base: string, existing: string[]): string {
  const versions = existing.map((n) => familyVersion(base, n)).filter((v): v is number => v !== null);
  return `${base}_${Math.max(1, ...versions) + 1}`;
}

export function refsOf(spec: { TaskTemplate?: ServiceSpec['TaskTemplate'] } | undefined): SecretReference[] {
  return spec?.TaskTemplate?.ContainerSpec?.Secrets ?? [];
}

/**
 * With no `UpdateStatus` (see waitForUpdate): has the service settled on secret `secretId`?
 * Yes when as many tasks as replicas (0 for a scaled-down service; every live task for a global
 * one) are desired and actually `running` with the secret, and no other live task exists. Live =
 * a task the orchestrator has not given up on (desired state up to `running`): not only desired
 * `running`, because a task waiting out its restart delay is desired `ready` (seen on Engine
 * 20.10: the failed task goes to desired `shutdown`, its replacement sits in `ready`), and
 * leaving it out would make a crash-looping service look like one with nothing to update.
 */
export function settledWithoutUpdateStatus(
  svc: ServiceObject,
  tasks: TaskObject[],
  secretId: string,
): { done: boolean; detail: string } {
  const live = tasks.filter((t) => !TERMINAL_DESIRED.has(t.DesiredState ?? ''));
  const ready = live.filter(
    (t) => t.DesiredState === 'running' && t.Status?.State === 'running' && refsOf({ TaskTemplate: t.Spec }).some((r) => r.SecretID === secretId),
  );
  const want = replicasOf(svc) ?? live.length;
  if (ready.length === live.length && ready.length === want) {
    return { done: true, detail: live.length === 0 ? 'no running tasks to update' : `${live.length} task(s) running with it` };
  }
  return { done: false, detail: `${ready.length} of ${want} task(s) running with it` };
}

/** Replicas of a replicated service; null for global (and job) services. */
function replicasOf(svc: ServiceObject): number | null {
  const replicated = (svc.Spec.Mode as { Replicated?: { Replicas?: number } } | undefined)?.Replicated;
  return replicated ? (replicated.Replicas ?? 1) : null;
}

export function describeFile(ref: SecretReference): string {
  const f = ref.File;
  if (!f) return 'no file';
  const mode = f.Mode !== undefined ? `, mode 0${f.Mode.toString(8)}` : '';
  return `/run/secrets/${f.Name} (uid ${f.UID ?? '0'}, gid ${f.GID ?? '0'}${mode})`.replace('/run/secrets//', '/');
}

export const fail = (message: string, kind: TargetError['kind'], retryable = false) => new TargetError(message, { kind, retryable });

/** One secret family (`<base>`, `<base>_<n>`) and the services that mount it, on one Engine. */
export class Swarm {
  readonly base: string;
  private readonly hostSetting: string | undefined;
  private readonly requestTimeoutMs: number;
  private readonly ctx: TargetContext & { name: string };
  private engine: DockerEngine | undefined;

  constructor(base: string, hostSetting: string | undefined, requestTimeoutMs: number, ctx: TargetContext & { name: string }) {
    this.base = base;
    this.hostSetting = hostSetting;
    this.requestTimeoutMs = requestTimeoutMs;
    this.ctx = ctx;
  }

  /** The Engine's rate-limit domain: one pacing lane per Docker host, shared by its targets and by discover. */
  get rateLimitKey(): string {
    return `docker-secret:${this.hostSetting ?? 'default'}`;
  }

  /** Created on first use, so an unsupported DOCKER_HOST is reported by preflight, not at load. */
  eng(): DockerEngine {
    this.engine ??= new DockerEngine(parseDockerHost(this.hostSetting, this.ctx.env), {
      timeoutMs: this.requestTimeoutMs,
      lane: laneOf(this.ctx, this.rateLimitKey, dockerSecret),
    });
    return this.engine;
  }

  close(): void {
    this.engine?.close();
    this.engine = undefined;
  }

  info(signal?: AbortSignal): Promise<InfoObject> {
    return this.eng().call<InfoObject>('GET', '/info', undefined, signal);
  }

  async allServices(signal?: AbortSignal): Promise<ServiceObject[]> {
    return (await this.eng().call<ServiceObject[] | null>('GET', '/services', undefined, signal)) ?? [];
  }

  /** The base secret and every `<base>_<n>`. The `name` filter is a prefix match (`names` is exact). */
  async listFamily(signal?: AbortSignal): Promise<SecretObject[]> {
    const filters = encodeURIComponent(JSON.stringify({ name: [this.base] }));
    const all = await this.eng().call<SecretObject[] | null>('GET', `/secrets?filters=${filters}`, undefined, signal);
    return (all ?? []).filter((s) => familyVersion(this.base, s.Spec.Name) !== null);
  }

  async getService(name: string, signal?: AbortSignal): Promise<ServiceObject> {
    try {
      return await this.eng().call<ServiceObject>('GET', `/services/${encodeURIComponent(name)}`, undefined, signal);
    } catch (err) {
      if (err instanceof DockerApiError && err.status === 404) {
        throw fail(
          `Docker service ${name} not found in the swarm at ${this.eng().host.display}: check services: of this target (docker service ls lists them)`,
          'not-found',
        );
      }
      throw err;
    }
  }

  /** The one secret of the family a service mounts (possibly at several paths), or null. */
  mountedOf(svc: ServiceObject, family: SecretObject[]): { secret: SecretObject; refs: SecretReference[] } | null {
    const byId = new Map(family.map((s) => [s.ID, s]));
    const refs = refsOf(svc.Spec).filter((r) => byId.has(r.SecretID));
    const ids = [...new Set(refs.map((r) => r.SecretID))];
    if (ids.length === 0) return null;
    if (ids.length > 1) {
      const names = ids.map((id) => byId.get(id)!.Spec.Name).join(' and ');
      throw fail(
        `service ${svc.Spec.Name} mounts ${names}: keyrot swaps one ${this.base} secret per service; remove the extra mount (docker service update --secret-rm ...)`,
        'invalid',
      );
    }
    return { secret: byId.get(ids[0]!)!, refs };
  }

  notMounting(svcName: string): TargetError {
    const base = this.base;
    return fail(
      `service ${svcName} does not mount secret ${base} (nor any ${base}_<n>): add it first, e.g. docker service update --secret-add source=${base},target=${base} ${svcName}`,
      'not-found',
    );
  }

  missingSecret(): TargetError {
    const base = this.base;
    return fail(
      `Docker secret ${base} not found (nor any ${base}_<n>) in the swarm at ${this.eng().host.display}: create it first (printf '%s' "$OPENAI_API_KEY" | docker secret create ${base} -) and mount it in the services`,
      'not-found',
    );
  }

  /** All the service's tasks, history included (settledWithoutUpdateStatus picks the live ones). */
  async tasksOf(serviceId: string, signal?: AbortSignal): Promise<TaskObject[]> {
    const filters = encodeURIComponent(JSON.stringify({ service: [serviceId] }));
    return (await this.eng().call<TaskObject[] | null>('GET', `/tasks?filters=${filters}`, undefined, signal)) ?? [];
  }

  async createSecret(value: Secret, labels: Record<string, string>, family: SecretObject[], signal?: AbortSignal): Promise<SecretObject> {
    let names = family.map((s) => s.Spec.Name);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const name = nextSecretName(this.base, names);
      try {
        // Standard base64: Engine 20.10 rejects the URL-safe alphabet the swagger mentions
        // (400 "illegal base64 data at input byte 0", checked against Debian's docker.io).
        const { ID } = await this.eng().call<{ ID: string }>(
          'POST',
          '/secrets/create',
          { Name: name, Labels: labels, Data: Buffer.from(value.reveal(), 'utf8').toString('base64') },
          signal,
        );
        this.ctx.logger.info(`created Docker secret ${name}`, { target: this.ctx.name, fingerprint: labels[LABELS.fingerprint] });
        return { ID, Spec: { Name: name, Labels: labels } };
      } catch (err) {
        // 409: the name was taken meanwhile (another writer, or our own earlier attempt whose answer was lost).
        if (!(err instanceof DockerApiError && err.status === 409)) throw err;
        const again = await this.listFamily(signal);
        const ours = again.find((s) => {
          const l = s.Spec.Labels ?? {};
          return Object.entries(labels).every(([k, v]) => l[k] === v);
        });
        if (ours) return ours;
        names = again.map((s) => s.Spec.Name);
      }
    }
    throw fail(`could not find a free name for a new ${this.base} secret: other writers keep taking them; retry`, 'conflict', true);
  }

  /**
   * Points every reference matching `from` at `to`, keeping each reference's File (target name,
   * uid, gid, mode) as it is. The service's `version` is the optimistic lock: a stale one gets
   * 500 "update out of sequence" (seen on Engine 20.10), so re-read and retry, bounded.
   */
  async swap(
    serviceName: string,
    from: (ref: SecretReference) => boolean,
    to: SecretObject,
    signal?: AbortSignal,
  ): Promise<'swapped' | 'already' | 'missing'> {
    for (let attempt = 1; ; attempt++) {
      const svc = await this.getService(serviceName, signal);
      const spec = structuredClone(svc.Spec);
      const matching = refsOf(spec).filter(from);
      if (matching.length === 0) return refsOf(spec).some((r) => r.SecretID === to.ID) ? 'already' : 'missing';
      for (const ref of matching) {
        ref.SecretID = to.ID;
        ref.SecretName = to.Spec.Name;
      }
      try {
        await this.updateService(serviceName, svc, spec, to, signal);
        return 'swapped';
      } catch (err) {
        if (err instanceof DockerApiError && /update out of sequence/i.test(err.dockerMessage)) {
          if (attempt < MAX_VERSION_CONFLICTS) continue;
          throw fail(
            `service ${serviceName} kept changing while keyrot updated it (${MAX_VERSION_CONFLICTS} version conflicts): retry when deployments to it are done`,
            'conflict',
            true,
          );
        }
        throw err;
      }
    }
  }

  private async updateService(serviceName: string, svc: ServiceObject, spec: ServiceSpec, to: SecretObject, signal?: AbortSignal): Promise<void> {
    // No X-Registry-Auth: registryAuthFrom defaults to `spec`, so a private image keeps the
    // credentials the service was created with (Engine API, ServiceUpdate).
    const res = await this.eng().call<{ Warnings?: string[] | null }>(
      'POST',
      `/services/${encodeURIComponent(svc.ID)}/update?version=${svc.Version.Index}`,
      spec,
      signal,
    );
    for (const w of res?.Warnings ?? []) this.ctx.logger.warn(`Docker: ${w}`, { target: this.ctx.name, service: serviceName });
    this.ctx.logger.info(`service ${serviceName} now mounts ${to.Spec.Name}`, { target: this.ctx.name });
  }

  async removeSecret(secret: SecretObject, signal?: AbortSignal): Promise<'removed' | 'gone' | 'in-use'> {
    try {
      await this.eng().call('DELETE', `/secrets/${encodeURIComponent(secret.ID)}`, undefined, signal);
      this.ctx.logger.info(`removed Docker secret ${secret.Spec.Name}`, { target: this.ctx.name });
      return 'removed';
    } catch (err) {
      if (err instanceof DockerApiError && err.status === 404) return 'gone';
      // Engine 20.10: 400 InvalidArgument "secret 'x' is in use by the following service: y".
      if (err instanceof DockerApiError && err.status === 400 && /in use/i.test(err.dockerMessage)) return 'in-use';
      throw err;
    }
  }
}

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
import { DockerApiError, DockerEngine, parseDockerHost } from './engine.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { poll } from '../../runtime/poll.ts';
import type { DockerSecretConfig, DockerSecretReceipt } from './index.ts';

/*
 * Docker Swarm secrets are immutable (their data cannot be updated; README "Provider facts"): a rotation creates `<secret>_<n>`,
 * swaps each service's reference to it (same target file, uid, gid, mode), and waits for the
 * rolling update. The old secret stays until finalize, so restore is a swap back: exact, and it
 * never needs the old value. Values only ever travel in a request BODY (`Data`, base64) over the
 * socket: keyrot never runs the docker CLI, so no value is ever in a process's argv.
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

const MANAGED_BY = 'keyrot';
/** Bounded retries on the service's optimistic-concurrency `version` (the engine's retry policy does not see these). */
const MAX_VERSION_CONFLICTS = 5;
/** Task desired states after which the orchestrator no longer wants the task (swarmkit api.TaskState). */
const TERMINAL_DESIRED = new Set(['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned']);
const DEFAULT_TIMEOUT_MS = 5 * 60_000;

// --- Engine object shapes (only what keyrot reads; specs are round-tripped whole) ----------------

interface SecretObject {
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

interface InfoObject {
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

function refsOf(spec: { TaskTemplate?: ServiceSpec['TaskTemplate'] } | undefined): SecretReference[] {
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

function describeFile(ref: SecretReference): string {
  const f = ref.File;
  if (!f) return 'no file';
  const mode = f.Mode !== undefined ? `, mode 0${f.Mode.toString(8)}` : '';
  return `/run/secrets/${f.Name} (uid ${f.UID ?? '0'}, gid ${f.GID ?? '0'}${mode})`.replace('/run/secrets//', '/');
}

// --- The target ----------------------------------------------------------------------------------

export function createDockerSecretTarget(
  config: DockerSecretConfig & CommonTargetConfig,
  ctx: TargetContext & { name: string },
): Target<DockerSecretReceipt> {
  const base = config.secret;
  const hostSetting = config.endpoint ?? ctx.env.DOCKER_HOST;
  const timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
  let engine: DockerEngine | undefined;

  /** Created on first use, so an unsupported DOCKER_HOST is reported by preflight, not at load. */
  function eng(): DockerEngine {
    engine ??= new DockerEngine(parseDockerHost(hostSetting, ctx.env), { timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS) });
    return engine;
  }

  const fail = (message: string, kind: TargetError['kind'], retryable = false) => new TargetError(message, { kind, retryable });

  // --- Reads -------------------------------------------------------------------------------------

  /** The base secret and every `<base>_<n>`. The `name` filter is a prefix match (`names` is exact). */
  async function listFamily(signal?: AbortSignal): Promise<SecretObject[]> {
    const filters = encodeURIComponent(JSON.stringify({ name: [base] }));
    const all = await eng().call<SecretObject[] | null>('GET', `/secrets?filters=${filters}`, undefined, signal);
    return (all ?? []).filter((s) => familyVersion(base, s.Spec.Name) !== null);
  }

  async function getService(name: string, signal?: AbortSignal): Promise<ServiceObject> {
    try {
      return await eng().call<ServiceObject>('GET', `/services/${encodeURIComponent(name)}`, undefined, signal);
    } catch (err) {
      if (err instanceof DockerApiError && err.status === 404) {
        throw fail(
          `Docker service ${name} not found in the swarm at ${eng().host.display}: check services: of this target (docker service ls lists them)`,
          'not-found',
        );
      }
      throw err;
    }
  }

  /** The one secret of the family a service mounts (possibly at several paths), or null. */
  function mountedOf(svc: ServiceObject, family: SecretObject[]): { secret: SecretObject; refs: SecretReference[] } | null {
    const byId = new Map(family.map((s) => [s.ID, s]));
    const refs = refsOf(svc.Spec).filter((r) => byId.has(r.SecretID));
    const ids = [...new Set(refs.map((r) => r.SecretID))];
    if (ids.length === 0) return null;
    if (ids.length > 1) {
      const names = ids.map((id) => byId.get(id)!.Spec.Name).join(' and ');
      throw fail(
        `service ${svc.Spec.Name} mounts ${names}: keyrot swaps one ${base} secret per service; remove the extra mount (docker service update --secret-rm ...)`,
        'invalid',
      );
    }
    return { secret: byId.get(ids[0]!)!, refs };
  }

  function notMounting(svcName: string): TargetError {
    return fail(
      `service ${svcName} does not mount secret ${base} (nor any ${base}_<n>): add it first, e.g. docker service update --secret-add source=${base},target=${base} ${svcName}`,
      'not-found',
    );
  }

  function missingSecret(): TargetError {
    return fail(
      `Docker secret ${base} not found (nor any ${base}_<n>) in the swarm at ${eng().host.display}: create it first (printf '%s' "$OPENAI_API_KEY" | docker secret create ${base} -) and mount it in the services`,
      'not-found',
    );
  }

  /** The secret this rotation created for `fingerprint` (never a restore re-creation). */
  function findOurs(family: SecretObject[], rotationId: string, fingerprint: string): SecretObject | undefined {
    return family.find((s) => {
      const l = s.Spec.Labels ?? {};
      return l[LABELS.managedBy] === MANAGED_BY && l[LABELS.rotation] === rotationId && l[LABELS.fingerprint] === fingerprint && !l[LABELS.restored];
    });
  }

  async function findNew(op: OpContext, receipt: DockerSecretReceipt | undefined, family: SecretObject[]): Promise<SecretObject | undefined> {
    const id = receipt?.newSecretId;
    return (id ? family.find((s) => s.ID === id) : undefined) ?? findOurs(family, op.rotationId, op.fingerprint);
  }

  /** All the service's tasks, history included (settledWithoutUpdateStatus picks the live ones). */
  async function tasksOf(serviceId: string, signal?: AbortSignal): Promise<TaskObject[]> {
    const filters = encodeURIComponent(JSON.stringify({ service: [serviceId] }));
    return (await eng().call<TaskObject[] | null>('GET', `/tasks?filters=${filters}`, undefined, signal)) ?? [];
  }

  // --- Writes ------------------------------------------------------------------------------------

  async function createSecret(value: Secret, labels: Record<string, string>, family: SecretObject[], signal?: AbortSignal): Promise<SecretObject> {
    let names = family.map((s) => s.Spec.Name);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const name = nextSecretName(base, names);
      try {
        // Standard base64: Engine 20.10 rejects the URL-safe alphabet the swagger mentions
        // (400 "illegal base64 data at input byte 0", checked against Debian's docker.io).
        const { ID } = await eng().call<{ ID: string }>(
          'POST',
          '/secrets/create',
          { Name: name, Labels: labels, Data: Buffer.from(value.reveal(), 'utf8').toString('base64') },
          signal,
        );
        ctx.logger.info(`created Docker secret ${name}`, { target: ctx.name, fingerprint: labels[LABELS.fingerprint] });
        return { ID, Spec: { Name: name, Labels: labels } };
      } catch (err) {
        // 409: the name was taken meanwhile (another writer, or our own earlier attempt whose answer was lost).
        if (!(err instanceof DockerApiError && err.status === 409)) throw err;
        const again = await listFamily(signal);
        const ours = again.find((s) => {
          const l = s.Spec.Labels ?? {};
          return Object.entries(labels).every(([k, v]) => l[k] === v);
        });
        if (ours) return ours;
        names = again.map((s) => s.Spec.Name);
      }
    }
    throw fail(`could not find a free name for a new ${base} secret: other writers keep taking them; retry`, 'conflict', true);
  }

  /**
   * Points every reference matching `from` at `to`, keeping each reference's File (target name,
   * uid, gid, mode) as it is. The service's `version` is the optimistic lock: a stale one gets
   * 500 "update out of sequence" (swarmkit ErrSequenceConflict; README "Provider facts"), so re-read and retry, bounded.
   */
  async function swap(
    serviceName: string,
    from: (ref: SecretReference) => boolean,
    to: SecretObject,
    signal?: AbortSignal,
  ): Promise<'swapped' | 'already' | 'missing'> {
    for (let attempt = 1; ; attempt++) {
      const svc = await getService(serviceName, signal);
      const spec = structuredClone(svc.Spec);
      const matching = refsOf(spec).filter(from);
      if (matching.length === 0) return refsOf(spec).some((r) => r.SecretID === to.ID) ? 'already' : 'missing';
      for (const ref of matching) {
        ref.SecretID = to.ID;
        ref.SecretName = to.Spec.Name;
      }
      try {
        // No X-Registry-Auth: registryAuthFrom defaults to `spec`, so a private image keeps the
        // credentials the service was created with (Engine API, ServiceUpdate).
        const res = await eng().call<{ Warnings?: string[] | null }>(
          'POST',
          `/services/${encodeURIComponent(svc.ID)}/update?version=${svc.Version.Index}`,
          spec,
          signal,
        );
        for (const w of res?.Warnings ?? []) ctx.logger.warn(`Docker: ${w}`, { target: ctx.name, service: serviceName });
        ctx.logger.info(`service ${serviceName} now mounts ${to.Spec.Name}`, { target: ctx.name });
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
  async function waitForUpdate(serviceName: string, secret: SecretObject, signal?: AbortSignal): Promise<string> {
    let progress = 'not started';
    let why = '';
    /** One look: the detail when the update is done, undefined while it runs; a failed update throws. */
    const look = async (): Promise<string | undefined> => {
      const svc = await getService(serviceName, signal);
      const status = svc.UpdateStatus ?? undefined;
      const state = status?.State;
      why = status?.Message ? `: ${status.Message}` : '';
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
      progress = state ?? 'not started';
      if (state) return undefined;
      const settled = settledWithoutUpdateStatus(svc, await tasksOf(svc.ID, signal), secret.ID);
      progress = settled.detail;
      return settled.done ? settled.detail : undefined;
    };
    const done = await poll({
      check: look,
      until: (detail) => detail !== undefined,
      deadlineMs: timeoutMs,
      clock: ctx.clock,
      signal,
      describe: () =>
        `service ${serviceName} is still updating after ${formatDuration(timeoutMs)} (${progress}${why}): check docker service ps ${serviceName}; raise timeout: of this target if its tasks start slowly`,
    });
    return done!;
  }

  /** Re-creates the old value as a new secret, for a restore whose old secret was already removed. Idempotent per rotation. */
  async function recreate(previous: Secret, op: OpContext, family: SecretObject[], signal?: AbortSignal): Promise<SecretObject> {
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
    return createSecret(previous, labels, family, signal);
  }

  async function removeSecret(secret: SecretObject, signal?: AbortSignal): Promise<'removed' | 'gone' | 'in-use'> {
    try {
      await eng().call('DELETE', `/secrets/${encodeURIComponent(secret.ID)}`, undefined, signal);
      ctx.logger.info(`removed Docker secret ${secret.Spec.Name}`, { target: ctx.name });
      return 'removed';
    } catch (err) {
      if (err instanceof DockerApiError && err.status === 404) return 'gone';
      // Engine 20.10: 400 InvalidArgument "secret 'x' is in use by the following service: y".
      if (err instanceof DockerApiError && err.status === 400 && /in use/i.test(err.dockerMessage)) return 'in-use';
      throw err;
    }
  }

  // --- The methods -------------------------------------------------------------------------------

  async function guarded<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toTargetError(err, ctx.name, op);
    }
  }

  const unreadable: ReadResult = {
    kind: 'unreadable',
    reason: 'the Docker Engine never returns secret data: keyrot verifies by the keyrot.fingerprint label and the services’ references',
  };

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    try {
      const info = await eng().info(signal);
      const notes = [`Docker Engine ${info.version} (API ${info.apiVersion}) at ${eng().host.display}`];
      const sys = await eng().call<InfoObject>('GET', '/info', undefined, signal);
      const swarm = sys.Swarm ?? {};
      if (swarm.LocalNodeState !== 'active') {
        const how =
          swarm.LocalNodeState === 'locked'
            ? 'the swarm is locked: unlock it with docker swarm unlock'
            : `it is not part of a swarm (${swarm.LocalNodeState ?? 'inactive'}): Docker secrets need swarm mode. On a single host run "docker swarm init"; otherwise point DOCKER_HOST at a manager node`;
        return { status: 'blocked', reason: `the Docker Engine at ${eng().host.display} is not a swarm manager: ${how}`, current: unreadable, notes };
      }
      if (!swarm.ControlAvailable) {
        return {
          status: 'blocked',
          reason: `the Docker Engine at ${eng().host.display} is a swarm worker, not a manager: point DOCKER_HOST at a manager node (docker node ls on a manager lists them) or promote this node (docker node promote)`,
          current: unreadable,
          notes,
        };
      }
      const family = await listFamily(signal);
      if (family.length === 0) return { status: 'blocked', reason: missingSecret().message, current: unreadable, notes };

      const problems: string[] = [];
      const current = new Map<string, { secret: SecretObject; services: string[] }>();
      for (const name of config.services) {
        try {
          const svc = await getService(name, signal);
          const mounted = mountedOf(svc, family);
          if (!mounted) {
            problems.push(notMounting(name).message);
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
      for (const { secret, services } of current.values()) {
        const l = secret.Spec.Labels ?? {};
        const label = l[LABELS.fingerprint]
          ? `keyrot.fingerprint ${l[LABELS.fingerprint]}${l[LABELS.rotation] ? `, rotation ${l[LABELS.rotation]}` : ''}`
          : 'created outside keyrot: no fingerprint label';
        notes.push(`current secret ${secret.Spec.Name} (${label}), mounted by ${services.join('; ')}`);
      }
      if (problems.length) return { status: 'blocked', reason: problems.join('; '), current: unreadable, notes };
      notes.push(
        `write creates ${nextSecretName(base, family.map((s) => s.Spec.Name))} and points ${config.services.join(', ')} at it (a rolling restart of their tasks; waits up to ${formatDuration(timeoutMs)} each)`,
        'finalize removes the old secret once no service mounts it',
      );
      return { status: 'ready', current: unreadable, notes };
    } catch (err) {
      const e = toTargetError(err, ctx.name, 'preflight');
      // Transient (Engine busy, socket reset, timeout): not an answer; the engine retries it, bounded.
      if (e.retryable) throw e;
      return { status: 'blocked', reason: e.message, current: unreadable };
    }
  }

  async function write(value: Secret, op: OpContext): Promise<DockerSecretReceipt> {
    const signal = op.signal;
    let family = await listFamily(signal);
    const services = [];
    for (const name of config.services) services.push(await getService(name, signal));

    let created = findOurs(family, op.rotationId, value.fingerprint);
    if (!created) {
      if (family.length === 0) throw missingSecret();
      const labels: Record<string, string> = {
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.fingerprint]: value.fingerprint,
        [LABELS.rotation]: op.rotationId,
      };
      let highest: SecretObject | undefined;
      for (const svc of services) {
        const mounted = mountedOf(svc, family);
        if (!mounted) throw notMounting(svc.Spec.Name);
        labels[LABELS.previousOf(svc.Spec.Name)] = mounted.secret.ID;
        if (!highest || familyVersion(base, mounted.secret.Spec.Name)! > familyVersion(base, highest.Spec.Name)!) highest = mounted.secret;
      }
      labels[LABELS.previous] = highest!.Spec.Name;
      labels[LABELS.previousId] = highest!.ID;
      created = await createSecret(value, labels, family, signal);
      family = [...family, created];
    }

    const newId = created.ID;
    const labels = created.Spec.Labels ?? {};
    // One service at a time, each waited for: a service whose new tasks fail stops the rotation
    // before the next service is touched, leaving less to restore.
    for (const svc of services) {
      const name = svc.Spec.Name;
      const prevId = labels[LABELS.previousOf(name)];
      const familyIds = new Set(family.map((s) => s.ID));
      const from = (r: SecretReference) => r.SecretID !== newId && (prevId ? r.SecretID === prevId : familyIds.has(r.SecretID));
      let outcome = await swap(name, from, created, signal);
      if (outcome === 'missing' && prevId) {
        // The service was changed since the secret was created (its old mount replaced): swap whatever family secret it mounts now.
        outcome = await swap(name, (r) => r.SecretID !== newId && familyIds.has(r.SecretID), created, signal);
      }
      if (outcome === 'missing') throw notMounting(name);
      await waitForUpdate(name, created, signal);
    }

    return {
      newSecret: created.Spec.Name,
      newSecretId: newId,
      oldSecret: labels[LABELS.previous] ?? null,
      oldSecretId: labels[LABELS.previousId] ?? null,
      services: services.map((s) => s.Spec.Name),
    };
  }

  async function verify(value: Secret, op: OpContext, receipt: DockerSecretReceipt | undefined): Promise<VerifyResult> {
    const signal = op.signal;
    const family = await listFamily(signal);
    const created = await findNew({ ...op, fingerprint: value.fingerprint }, receipt, family);
    if (!created) {
      throw fail(`no ${base}_<n> secret of rotation ${op.rotationId} exists: the write did not happen (or was restored)`, 'mismatch');
    }
    const fp = (created.Spec.Labels ?? {})[LABELS.fingerprint];
    if (fp !== value.fingerprint) {
      throw fail(`secret ${created.Spec.Name} is labelled keyrot.fingerprint ${fp ?? '(none)'}, not the new key's ${value.fingerprint}`, 'mismatch');
    }
    const states: string[] = [];
    for (const name of config.services) {
      const svc = await getService(name, signal);
      if (!refsOf(svc.Spec).some((r) => r.SecretID === created.ID)) {
        const mounted = refsOf(svc.Spec).filter((r) => familyVersion(base, r.SecretName) !== null).map((r) => r.SecretName);
        throw fail(`service ${name} mounts ${mounted.join(', ') || 'no ' + base + ' secret'}, not ${created.Spec.Name}`, 'mismatch');
      }
      // Normally done already (write waited); after a resume this is where the wait happens.
      states.push(`${name}: ${await waitForUpdate(name, created, signal)}`);
    }
    return {
      method: 'metadata',
      detail: `${config.services.join(', ')} mount ${created.Spec.Name} (keyrot.fingerprint ${value.fingerprint}, rotation ${op.rotationId}); ${states.join('; ')}`,
    };
  }

  async function restore(previous: Secret | null, op: OpContext, receipt: DockerSecretReceipt | undefined): Promise<void> {
    const signal = op.signal;
    let family = await listFamily(signal);
    const created = await findNew(op, receipt, family);
    // No secret of this rotation: the write never created one, or an earlier restore swapped the
    // services back and removed it (it is only removed once nothing mounts it). Nothing to undo.
    if (!created) return;
    const labels = created.Spec.Labels ?? {};
    const errors: TargetError[] = [];
    for (const name of config.services) {
      try {
        const svc = await getService(name, signal);
        const prevId = labels[LABELS.previousOf(svc.Spec.Name)] ?? labels[LABELS.previousId] ?? receipt?.oldSecretId ?? undefined;
        let back = prevId ? family.find((s) => s.ID === prevId) : undefined;
        if (!refsOf(svc.Spec).some((r) => r.SecretID === created.ID)) {
          // Swapped back already (a restore interrupted while its tasks rolled): wait for them too.
          if (back && refsOf(svc.Spec).some((r) => r.SecretID === back!.ID)) await waitForUpdate(name, back, signal);
          continue;
        }
        if (!back) {
          if (!previous) {
            throw fail(
              `cannot swap service ${name} back: the secret it mounted before (${labels[LABELS.previous] ?? 'unknown'}) no longer exists and no previous value is known; it still mounts ${created.Spec.Name}`,
              'not-found',
            );
          }
          back = await recreate(previous, op, family, signal);
          family = [...family.filter((s) => s.ID !== back!.ID), back];
        }
        await swap(name, (r) => r.SecretID === created.ID, back, signal);
        await waitForUpdate(name, back, signal);
      } catch (err) {
        errors.push(toTargetError(err, ctx.name, 'restore'));
      }
    }
    if (errors.length) throw errors.length === 1 ? errors[0]! : fail(errors.map((e) => e.message).join('; '), errors[0]!.kind, errors.some((e) => e.retryable));
    const removed = await removeSecret(created, signal);
    if (removed === 'in-use') {
      ctx.logger.warn(`left Docker secret ${created.Spec.Name} in place: a service outside this target mounts it`, { target: ctx.name });
    }
  }

  async function finalize(op: OpContext, receipt: DockerSecretReceipt | undefined): Promise<void> {
    const signal = op.signal;
    const family = await listFamily(signal);
    const created = await findNew(op, receipt, family);
    const oldIds = new Set<string>();
    for (const [k, v] of Object.entries(created?.Spec.Labels ?? {})) {
      if (k === LABELS.previousId || k.startsWith(`${LABELS.previous}.`)) oldIds.add(v);
    }
    if (receipt?.oldSecretId) oldIds.add(receipt.oldSecretId);
    if (created) oldIds.delete(created.ID);
    const olds = family.filter((s) => oldIds.has(s.ID));
    if (olds.length === 0) return; // already removed (finalize is idempotent)

    const all = (await eng().call<ServiceObject[] | null>('GET', '/services', undefined, signal)) ?? [];
    const conflicts: string[] = [];
    for (const old of olds) {
      const users = all.filter((svc) => refsOf(svc.Spec).some((r) => r.SecretID === old.ID)).map((svc) => svc.Spec.Name);
      // The old secret may have been created by hand: keyrot removes it only because it belongs
      // to this family (`<secret>` or `<secret>_<n>`) and no service mounts it any more.
      const outcome = users.length ? 'in-use' : await removeSecret(old, signal);
      if (outcome === 'in-use') {
        const who = users.length ? users.join(', ') : 'a service';
        conflicts.push(
          `old secret ${old.Spec.Name} is still mounted by ${who}, which still reads the old key: point ${users.length > 1 ? 'them' : 'it'} at ${created?.Spec.Name ?? 'the new secret'} (add to services: of this target) and finalize again; keyrot left ${old.Spec.Name} in place`,
        );
      } else if (outcome === 'removed' && (old.Spec.Labels ?? {})[LABELS.managedBy] !== MANAGED_BY) {
        ctx.logger.info(`removed ${old.Spec.Name}, created outside keyrot: no service mounts it any more`, { target: ctx.name });
      }
    }
    if (conflicts.length) throw fail(conflicts.join('; '), 'conflict');
  }

  return {
    id: 'docker-secret',
    name: ctx.name,
    location: `swarm secret ${base} (${config.services.join(', ')})`,
    lockKey: `docker-secret:${hostSetting ?? 'default'}:${base}`,
    preflight,
    read: async () => unreadable,
    write: (value, op) => guarded('write', () => write(value, op)),
    verify: (value, op, receipt) => guarded('verify', () => verify(value, op, receipt)),
    restore: (previous, op, receipt) => guarded('restore', () => restore(previous, op, receipt)),
    finalize: (op, receipt) => guarded('finalize', () => finalize(op, receipt)),
    async close() {
      engine?.close();
      engine = undefined;
    },
  };
}

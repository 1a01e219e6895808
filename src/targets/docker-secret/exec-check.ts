import { TargetError, toTargetError } from '../../core/errors.ts';
import type { DockerEngine } from '../docker-engine.ts';
import { sha256Seen, type ExecOptions } from '../docker-exec.ts';
import type { SecretReference, ServiceObject } from './adapter.ts';

/*
 * `verify: exec` for swarm services: in the container of each running task, `sha256sum` of the
 * secret file as mounted there, compared with the hash of the value keyrot expects. The Engine
 * runs execs only in its own containers, so only tasks on the node keyrot talks to can be
 * checked: tasks elsewhere block at preflight (a check that cannot be kept is not offered).
 */

interface RunningTask {
  ID: string;
  NodeID?: string;
  Status?: { State?: string; ContainerStatus?: { ContainerID?: string } };
  Spec?: { ContainerSpec?: { Secrets?: SecretReference[] | null } };
}

/** Where a secret reference's file is in the container: `File.Name` under /run/secrets unless absolute. */
export function secretPath(ref: SecretReference): string | undefined {
  const name = ref.File?.Name;
  if (!name) return undefined;
  return name.startsWith('/') ? name : `/run/secrets/${name}`;
}

/** The node this Engine is (`GET /info` → Swarm.NodeID). */
export async function localNodeId(engine: DockerEngine, signal?: AbortSignal): Promise<string> {
  const info = await engine.call<{ Swarm?: { NodeID?: string } }>('GET', '/info', undefined, signal);
  return info.Swarm?.NodeID ?? '';
}

/** The service's tasks that run now, with their container, split by node: here (checkable) or elsewhere. */
export async function runningTasks(engine: DockerEngine, svc: ServiceObject, node: string, signal?: AbortSignal): Promise<{ here: RunningTask[]; elsewhere: RunningTask[] }> {
  const filters = encodeURIComponent(JSON.stringify({ service: [svc.ID], 'desired-state': ['running'] }));
  const tasks = (await engine.call<RunningTask[] | null>('GET', `/tasks?filters=${filters}`, undefined, signal)) ?? [];
  const running = tasks.filter((t) => t.Status?.State === 'running' && t.Status.ContainerStatus?.ContainerID);
  return { here: running.filter((t) => t.NodeID === node), elsewhere: running.filter((t) => t.NodeID !== node) };
}

/** Why verify: exec cannot be kept for this service, or undefined. */
export function notCheckable(service: string, elsewhere: RunningTask[], engineDisplay: string): string | undefined {
  if (!elsewhere.length) return undefined;
  return (
    `verify: exec runs the check through the Engine at ${engineDisplay}, which reaches only its own node's containers, and ${elsewhere.length} running task(s) of service ${service} are on other nodes: ` +
    'pin the service to this node, or remove `verify: exec` from this target (the fingerprint label and the service references are still verified)'
  );
}

/**
 * The SHA-256 each running task here sees at the file of `secretId`, against `expected`; throws a
 * mismatch naming the task. Returns how many containers were checked.
 */
export async function checkTasks(
  engine: DockerEngine,
  service: string,
  tasks: RunningTask[],
  secretId: string,
  expected: string | null,
  o: ExecOptions,
): Promise<number> {
  let checked = 0;
  for (const t of tasks) {
    const ref = (t.Spec?.ContainerSpec?.Secrets ?? []).find((r) => r.SecretID === secretId);
    const path = ref && secretPath(ref);
    // A task still running the old spec (the update is not done): verify waits for the update first, so this is a mismatch.
    if (!path) throw new TargetError(`task ${t.ID.slice(0, 12)} of service ${service} does not mount the new secret`, { kind: 'mismatch', retryable: false });
    const containerId = t.Status!.ContainerStatus!.ContainerID!;
    const seen = await sha256Seen(engine, containerId, `${containerId.slice(0, 12)} (task ${t.ID.slice(0, 12)} of ${service})`, { file: path }, o);
    if (expected !== null && seen !== expected) {
      throw new TargetError(`the container of task ${t.ID.slice(0, 12)} of service ${service} does not see the new key at ${path} (SHA-256 computed in the container)`, {
        kind: 'mismatch',
        retryable: false,
      });
    }
    checked++;
  }
  return checked;
}

/**
 * Before anything is written: for each service (and the secret it mounts now), its running tasks
 * are all on this node and the check runs in their containers. Notes for plan, and what blocks.
 */
export async function probeServices(
  engine: DockerEngine,
  services: Array<{ name: string; svc: ServiceObject; secretId: string }>,
  o: ExecOptions,
): Promise<{ notes: string[]; problems: string[] }> {
  const node = await localNodeId(engine, o.signal);
  const notes: string[] = [];
  const problems: string[] = [];
  for (const { name, svc, secretId } of services) {
    const { here, elsewhere } = await runningTasks(engine, svc, node, o.signal);
    const why = notCheckable(name, elsewhere, engine.host.display);
    if (why) {
      problems.push(why);
      continue;
    }
    try {
      notes.push(`verify: exec works in ${await checkTasks(engine, name, here, secretId, null, o)} running container(s) of ${name}`);
    } catch (err) {
      const e = toTargetError(err, undefined, 'preflight');
      if (e.retryable) throw e;
      problems.push(e.message);
    }
  }
  return { notes, problems };
}

/** After the update: every running task of each service sees `expected` at the file of `secretId`. One line per service. */
export async function verifyServices(
  engine: DockerEngine,
  services: Array<{ name: string; svc: ServiceObject }>,
  secretId: string,
  expected: string,
  o: ExecOptions,
): Promise<string[]> {
  const node = await localNodeId(engine, o.signal);
  const seen: string[] = [];
  for (const { name, svc } of services) {
    const { here, elsewhere } = await runningTasks(engine, svc, node, o.signal);
    const why = notCheckable(name, elsewhere, engine.host.display);
    if (why) throw new TargetError(why, { kind: 'unsupported', retryable: false });
    seen.push(`${await checkTasks(engine, name, here, secretId, expected, o)} container(s) of ${name}`);
  }
  return seen;
}

import { DockerApiError, type DockerEngine } from '../docker-engine.ts';
import type { ContainerInspect } from './containers.ts';

/*
 * Start, stop, restart, remove and rename one container through the Engine API
 * (https://docs.docker.com/reference/api/engine/, "Container"). Start and stop answer 304 when the
 * container is already in that state: done, not an error. Stop and restart answer only once the
 * container stopped, which takes up to its own stop timeout (Config.StopTimeout, set by Compose
 * from `stop_grace_period`; 10 s when unset): their deadline is that plus the per-call deadline.
 */

/** The Engine's default stop timeout when the container has none (docker stop's 10 s). */
const DEFAULT_STOP_TIMEOUT_S = 10;

export interface Lifecycle {
  engine: DockerEngine;
  /** The per-call deadline (`requestTimeout:`). */
  callMs: number;
  signal?: AbortSignal;
}

function stopWaitMs(c: ContainerInspect, l: Lifecycle): number {
  const s = typeof c.Config.StopTimeout === 'number' ? c.Config.StopTimeout : DEFAULT_STOP_TIMEOUT_S;
  return s * 1000 + l.callMs;
}

async function post(l: Lifecycle, path: string, timeoutMs?: number): Promise<'done' | 'already'> {
  try {
    await l.engine.call('POST', path, undefined, l.signal, { timeoutMs });
    return 'done';
  } catch (err) {
    if (err instanceof DockerApiError && err.status === 304) return 'already';
    throw err;
  }
}

const at = (c: ContainerInspect) => `/containers/${encodeURIComponent(c.Id)}`;

export const restartContainer = (c: ContainerInspect, l: Lifecycle) => post(l, `${at(c)}/restart`, stopWaitMs(c, l));
export const stopContainer = (c: ContainerInspect, l: Lifecycle) => post(l, `${at(c)}/stop`, stopWaitMs(c, l));
export const startContainer = (c: ContainerInspect, l: Lifecycle) => post(l, `${at(c)}/start`);
export const renameContainer = (c: ContainerInspect, name: string, l: Lifecycle) => post(l, `${at(c)}/rename?name=${encodeURIComponent(name)}`);

/** Removes a stopped container, keeping its volumes (the replacement mounts its anonymous ones). */
export async function removeContainer(c: ContainerInspect, l: Lifecycle): Promise<void> {
  try {
    await l.engine.call('DELETE', at(c), undefined, l.signal);
  } catch (err) {
    if (!(err instanceof DockerApiError && err.status === 404)) throw err;
  }
}

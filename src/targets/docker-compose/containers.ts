import { realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { Secret } from '../../core/secret.ts';
import type { DockerEngine } from '../docker-engine.ts';

/*
 * The containers of a Compose service, as the Engine sees them, and how each one sees the key.
 * Compose labels every container it creates with `com.docker.compose.project` and
 * `com.docker.compose.service`, and one-off containers (`docker compose run`) with
 * `com.docker.compose.oneoff=True` (docker/compose pkg/api/labels.go): those are not the
 * service's and are left alone.
 */

export const COMPOSE_LABELS = {
  project: 'com.docker.compose.project',
  service: 'com.docker.compose.service',
  oneoff: 'com.docker.compose.oneoff',
  /** Set by Compose on a container created to replace another one (recreate). */
  replace: 'com.docker.compose.replace',
} as const;

export interface MountPoint {
  Type: string;
  Name?: string;
  Source: string;
  Destination: string;
  RW?: boolean;
}

/** `GET /containers/{id}/json`: what keyrot reads; the rest is round-tripped whole by a re-create. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Image: string;
  State: {
    Status: string;
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    ExitCode?: number;
    StartedAt?: string;
    Health?: { Status: string; Log?: Array<{ ExitCode?: number; Output?: string }> | null };
  };
  RestartCount?: number;
  Config: { Image: string; Env?: string[] | null; Labels?: Record<string, string> | null; Hostname?: string; [k: string]: unknown };
  HostConfig: { NetworkMode?: string; Binds?: string[] | null; Mounts?: Array<{ Target?: string }> | null; [k: string]: unknown };
  NetworkSettings?: { Networks?: Record<string, NetworkEndpoint> | null };
  Mounts?: MountPoint[] | null;
}

export interface NetworkEndpoint {
  IPAMConfig?: unknown;
  Links?: string[] | null;
  Aliases?: string[] | null;
  DriverOpts?: Record<string, string> | null;
  [k: string]: unknown;
}

/**
 * How one container sees the key:
 * - `bind-file`: the file itself is bind-mounted (Compose `secrets:` with `file:` are bind mounts
 *   of the file). The mount holds the file's inode: a running container keeps the old file after
 *   an atomic replace, and a restart binds the path anew.
 * - `bind-dir`: a directory holding the file is mounted: the new file is visible at once.
 * - `env`: the variable is in the container's environment, fixed when the container was created
 *   (a restart keeps it): only a re-created container gets the new value.
 */
export type Delivery = { kind: 'bind-file'; path: string } | { kind: 'bind-dir'; path: string; source: string } | { kind: 'env' };

export interface ServiceContainer {
  service: string;
  /** Without the leading slash. */
  name: string;
  inspect: ContainerInspect;
  deliveries: Delivery[];
  /** The variable's value in the container's environment (env_file targets); null when not set. Memory only. */
  envValue: Secret | null;
}

/** The service's own containers (stopped ones too, one-off ones not), oldest name first. */
export async function serviceContainers(engine: DockerEngine, project: string, service: string, signal?: AbortSignal): Promise<ContainerInspect[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${COMPOSE_LABELS.project}=${project}`, `${COMPOSE_LABELS.service}=${service}`] }));
  const list = (await engine.call<Array<{ Id: string; Labels?: Record<string, string> | null }> | null>('GET', `/containers/json?all=1&filters=${filters}`, undefined, signal)) ?? [];
  const own = list.filter((c) => (c.Labels ?? {})[COMPOSE_LABELS.oneoff] !== 'True');
  const out: ContainerInspect[] = [];
  for (const c of own) {
    const i = await inspectOrNull(engine, c.Id, signal);
    if (i) out.push(i);
  }
  return out.sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
}

/** A container's details, or null when it was removed meanwhile. */
export async function inspectOrNull(engine: DockerEngine, id: string, signal?: AbortSignal): Promise<ContainerInspect | null> {
  try {
    return await engine.call<ContainerInspect>('GET', `/containers/${encodeURIComponent(id)}/json`, undefined, signal);
  } catch (err) {
    if ((err as { status?: number }).status === 404) return null;
    throw err;
  }
}

export function nameOf(c: ContainerInspect): string {
  return c.Name.replace(/^\//, '');
}

/** The variable's value in `env` (`NAME=value` entries; the last one wins, as execve's callers read it). */
export function envValueOf(env: string[] | null | undefined, name: string): string | null {
  let value: string | null = null;
  for (const e of env ?? []) if (e.startsWith(`${name}=`)) value = e.slice(name.length + 1);
  return value;
}

/** The host file as configured and at the end of its links: a mount of either reaches it. */
export interface HostFile {
  path: string;
  real: string;
}

/**
 * How `c` sees the host file (its mounts: the file itself, or a directory above it) and, for an
 * env file, the variable. A mount's source is compared as recorded and through its own links.
 */
export async function deliveriesOf(c: ContainerInspect, file: HostFile, envVar: string | undefined): Promise<Delivery[]> {
  const out: Delivery[] = [];
  for (const m of c.Mounts ?? []) {
    if ((m.Type !== 'bind' && m.Type !== 'volume') || !isAbsolute(m.Source)) continue;
    const sources = [...new Set([m.Source, await realpath(m.Source).catch(() => m.Source)])];
    const found = findUnder(sources, file, m.Destination);
    if (found) out.push(found);
  }
  if (envVar !== undefined && envValueOf(c.Config.Env, envVar) !== null) out.push({ kind: 'env' });
  return out;
}

function findUnder(sources: string[], file: HostFile, destination: string): Delivery | undefined {
  for (const source of sources) {
    for (const p of [file.path, file.real]) {
      if (p === source) return { kind: 'bind-file', path: destination };
      if (p.startsWith(source.endsWith(sep) ? source : source + sep)) {
        return { kind: 'bind-dir', path: join(destination, relative(source, p)).split(sep).join('/'), source };
      }
    }
  }
  return undefined;
}

/** The view of one container, with the variable's value read from its environment. */
export async function viewOf(c: ContainerInspect, service: string, file: HostFile, envVar: string | undefined): Promise<ServiceContainer> {
  const v = envVar === undefined ? null : envValueOf(c.Config.Env, envVar);
  return { service, name: nameOf(c), inspect: c, deliveries: await deliveriesOf(c, file, envVar), envValue: v ? new Secret(v) : null };
}

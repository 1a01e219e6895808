import { TargetError } from '../../core/errors.ts';
import { DockerApiError } from '../docker-engine.ts';
import { COMPOSE_LABELS, inspectOrNull, nameOf, type ContainerInspect, type NetworkEndpoint } from './containers.ts';
import { removeContainer, renameContainer, startContainer, stopContainer, type Lifecycle } from './lifecycle.ts';

/*
 * A container's environment is fixed when it is created: a restart keeps it (Compose docs,
 * "docker compose restart": changes to environment variables are not updated after restarting).
 * To give it the new value keyrot re-creates it the way Compose does (docker/compose
 * pkg/compose/reconcile.go planRecreateContainer): create the replacement under a temporary name
 * `<old id, 12>_<name>`, stop the old container, remove it, start the replacement, give it the old
 * name. The replacement is the old container's own configuration (image, command, mounts,
 * networks, restart policy, labels...) with only the environment changed; the old container's
 * anonymous volumes are mounted again rather than replaced by empty ones (as Compose's
 * `inherit` does).
 *
 * Every step can be repeated: the replacement is labelled with the container it replaces and
 * whether to start it, so a run interrupted anywhere is finished by the next (`finishPending`).
 */

export const KEYROT_LABELS = {
  /** Id of the container this one replaces. */
  replaces: 'keyrot.replaces',
  /** Whether the replaced container was running: the replacement is started if so. */
  start: 'keyrot.start',
  rotation: 'keyrot.rotation',
} as const;

const TEMP_NAME = /^[0-9a-f]{12}_(.+)$/;

/** A replacement keyrot created and has not finished (it still has its temporary name). */
export function isPending(c: ContainerInspect): boolean {
  return Boolean((c.Config.Labels ?? {})[KEYROT_LABELS.replaces]) && TEMP_NAME.test(nameOf(c));
}

/** Re-creates `old` with `env` as its environment; returns the running (or created) replacement. */
export async function recreateWithEnv(old: ContainerInspect, env: string[], rotationId: string, l: Lifecycle): Promise<ContainerInspect> {
  const created = await createReplacement(old, env, rotationId, l);
  return finishPending(created, old, l);
}

/** Stops and removes the replaced container (when still there), starts the replacement if the old one ran, renames it. */
export async function finishPending(created: ContainerInspect, old: ContainerInspect | null, l: Lifecycle): Promise<ContainerInspect> {
  if (old) {
    await stopContainer(old, l);
    await removeContainer(old, l);
  }
  if ((created.Config.Labels ?? {})[KEYROT_LABELS.start] === 'true') await startContainer(created, l);
  const final = TEMP_NAME.exec(nameOf(created))?.[1];
  if (final) await renameContainer(created, final, l);
  const now = await inspectOrNull(l.engine, created.Id, l.signal);
  if (!now) throw new TargetError(`the container keyrot created to replace ${final ?? nameOf(created)} was removed meanwhile: run docker compose up -d`, { kind: 'not-found', retryable: false });
  return now;
}

/** The first step of a re-create: the replacement, under its temporary name (exported for the interrupted-run test). */
export async function createReplacement(old: ContainerInspect, env: string[], rotationId: string, l: Lifecycle): Promise<ContainerInspect> {
  const tempName = `${old.Id.slice(0, 12)}_${nameOf(old)}`;
  const networks = Object.entries(old.NetworkSettings?.Networks ?? {});
  const mode = old.HostConfig.NetworkMode ?? 'default';
  const attachable = !['host', 'none'].includes(mode) && !mode.startsWith('container:');
  const primary = attachable ? (networks.find(([n]) => n === mode) ?? networks[0]) : undefined;
  const body = {
    ...old.Config,
    Image: await imageRef(old, l),
    Env: env,
    // Unset hostnames default to the container's short id: the replacement gets its own.
    Hostname: old.Config.Hostname === old.Id.slice(0, 12) ? undefined : old.Config.Hostname,
    Labels: {
      ...old.Config.Labels,
      [COMPOSE_LABELS.replace]: nameOf(old),
      [KEYROT_LABELS.replaces]: old.Id,
      [KEYROT_LABELS.start]: String(old.State.Running || old.State.Restarting),
      [KEYROT_LABELS.rotation]: rotationId,
    },
    HostConfig: { ...old.HostConfig, Mounts: [...(old.HostConfig.Mounts ?? []), ...anonymousVolumes(old)] },
    ...(primary ? { NetworkingConfig: { EndpointsConfig: { [primary[0]]: endpointOf(primary[1], old) } } } : {}),
  };
  let id: string;
  try {
    id = (await l.engine.call<{ Id: string }>('POST', `/containers/create?name=${encodeURIComponent(tempName)}`, body, l.signal)).Id;
  } catch (err) {
    // 409: the name is taken, by our own earlier attempt whose answer was lost (or by someone else).
    if (!(err instanceof DockerApiError && err.status === 409)) throw err;
    const mine = await inspectOrNull(l.engine, tempName, l.signal);
    if ((mine?.Config.Labels ?? {})[KEYROT_LABELS.replaces] !== old.Id) throw err;
    id = mine!.Id;
  }
  for (const [net, ep] of networks) {
    if (!attachable || net === primary?.[0]) continue;
    await connect(net, id, endpointOf(ep, old), l);
  }
  return (await inspectOrNull(l.engine, id, l.signal))!;
}

/** The image the old container runs: by its name when the name still means that image, else by id (no upgrade in passing). */
async function imageRef(old: ContainerInspect, l: Lifecycle): Promise<string> {
  const named = await l.engine.call<{ Id: string }>('GET', `/images/${encodeURIComponent(old.Config.Image)}/json`, undefined, l.signal).catch(() => null);
  return named?.Id === old.Image ? old.Config.Image : old.Image;
}

/** Volumes Docker created for the image's VOLUMEs (not named in the container's own configuration). */
function anonymousVolumes(old: ContainerInspect): Array<Record<string, unknown>> {
  const configured = new Set<string>([
    ...(old.HostConfig.Binds ?? []).map((b) => b.split(':')[1] ?? ''),
    ...(old.HostConfig.Mounts ?? []).map((m) => m.Target ?? ''),
  ]);
  return (old.Mounts ?? [])
    .filter((m) => m.Type === 'volume' && m.Name && !configured.has(m.Destination))
    .map((m) => ({ Type: 'volume', Source: m.Name, Target: m.Destination, ReadOnly: m.RW === false }));
}

/** What the create/connect calls take of an inspected endpoint: no addresses, no ids, not the old short-id alias. */
function endpointOf(ep: NetworkEndpoint, old: ContainerInspect): Record<string, unknown> {
  const aliases = (ep.Aliases ?? []).filter((a) => a !== old.Id.slice(0, 12));
  return { IPAMConfig: ep.IPAMConfig ?? null, Links: ep.Links ?? null, Aliases: aliases.length ? aliases : null, DriverOpts: ep.DriverOpts ?? null };
}

async function connect(network: string, id: string, endpoint: Record<string, unknown>, l: Lifecycle): Promise<void> {
  try {
    await l.engine.call('POST', `/networks/${encodeURIComponent(network)}/connect`, { Container: id, EndpointConfig: endpoint }, l.signal);
  } catch (err) {
    // Connected already (a repeated step): Engine 20.10 answers 403 "endpoint with name ... already exists".
    if (err instanceof DockerApiError && /already exists/i.test(err.dockerMessage)) return;
    throw err;
  }
}

import type { ServiceContainer } from './containers.ts';

/*
 * What `plan` says about each container: how it sees the key, and so what keyrot does to it
 * after the write. The words matter: a single-file bind mount and an environment variable both
 * look "updated" on the host while the running container still has the old key.
 */

/** One plan line: the container, how it sees the file or variable, and what keyrot will do. */
export function deliveryLine(c: ServiceContainer, file: string, envVar: string | undefined): string {
  const running = c.inspect.State.Running || c.inspect.State.Restarting;
  const how = c.deliveries.map((d) =>
    d.kind === 'bind-file'
      ? `mounts ${file} itself at ${d.path} (a single-file bind mount keeps the old file until the container restarts: each start binds the path anew)`
      : d.kind === 'bind-dir'
        ? `sees ${file} at ${d.path} through a mount of ${d.source} (the new file shows at once)`
        : `has ${envVar} in its environment, set when the container was created (a restart keeps it)`,
  );
  const recreate = c.deliveries.some((d) => d.kind === 'env');
  const action = recreate
    ? running
      ? 'keyrot re-creates it with the new value, its configuration, volumes and networks unchanged, as docker compose up does'
      : 'it is stopped: keyrot re-creates it with the new value and leaves it stopped'
    : running
      ? 'keyrot writes the file atomically, then restarts the container'
      : 'it is stopped: it reads the new file when it starts';
  return `container ${c.name} (service ${c.service}, ${c.inspect.State.Status}) ${how.join('; ')}: ${action}`;
}

/** Why keyrot cannot bring this container onto the new key, or undefined. */
export function unreachable(c: ServiceContainer, file: string, envVar: string | undefined): string | undefined {
  if (c.inspect.State.Paused) return `container ${c.name} is paused: unpause it (docker unpause ${c.name}) so keyrot can restart it`;
  if (c.deliveries.length) return undefined;
  const via = envVar ? `nor has ${envVar} in its environment` : '(as a file, or through a mounted directory)';
  return (
    `container ${c.name} of service ${c.service} does not mount ${file} ${via}: keyrot could not bring it the new key. ` +
    `Check that this target names the file the service uses (docker inspect ${c.name} lists its mounts), or remove ${c.service} from services:`
  );
}

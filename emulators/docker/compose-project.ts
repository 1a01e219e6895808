import type { DockerEngine } from '../../src/targets/docker-engine.ts';

/*
 * Containers of a Compose project, made on a real Engine without the Compose CLI (it is not
 * installed where the tests and the demo run): named `<project>-<service>-<n>` and labelled as
 * Compose labels its containers (docker/compose pkg/api/labels.go: project, service, oneoff,
 * container-number, config-hash), with a secret file bind-mounted read-only at
 * /run/secrets/<name> as Compose does for `secrets:` with `file:` (compose-spec 05-services.md,
 * "secrets": "bind-mount used under the hood"), and env-file variables in the environment.
 */

export interface ComposeContainerSpec {
  project: string;
  service: string;
  /** Container number (default 1). */
  number?: number;
  image: string;
  cmd: string[];
  /** Bind mounts (the Mounts API, as Compose uses it): host source → container target. */
  binds?: Array<{ source: string; target: string; readOnly?: boolean }>;
  env?: string[];
  /** `Healthcheck` of the create call (durations in ns). */
  healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number };
  restart?: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  /** Networks (created if missing); none: no network at all. */
  networks?: string[];
  /** Start it (default true). */
  start?: boolean;
  /** A label that marks the containers a test or the demo made (for clean-up). */
  owner?: string;
}

export const OWNER_LABEL = 'keyrot.test-owner';

export function containerName(s: Pick<ComposeContainerSpec, 'project' | 'service' | 'number'>): string {
  return `${s.project}-${s.service}-${s.number ?? 1}`;
}

/** Creates (and starts) one service container; returns its id. */
export async function createComposeContainer(engine: DockerEngine, s: ComposeContainerSpec): Promise<string> {
  const networks = s.networks ?? [];
  for (const n of networks) {
    await engine.call('POST', '/networks/create', { Name: n, CheckDuplicate: true, Labels: { 'com.docker.compose.project': s.project } }).catch((err: { status?: number }) => {
      if (err.status !== 409) throw err;
    });
  }
  const body = {
    Image: s.image,
    Cmd: s.cmd,
    Env: s.env ?? [],
    StopTimeout: 1,
    Labels: {
      'com.docker.compose.project': s.project,
      'com.docker.compose.service': s.service,
      'com.docker.compose.oneoff': 'False',
      'com.docker.compose.container-number': String(s.number ?? 1),
      'com.docker.compose.config-hash': 'keyrot-made',
      ...(s.owner ? { [OWNER_LABEL]: s.owner } : {}),
    },
    ...(s.healthcheck ? { Healthcheck: s.healthcheck } : {}),
    HostConfig: {
      NetworkMode: networks[0] ?? 'none',
      Mounts: (s.binds ?? []).map((b) => ({ Type: 'bind', Source: b.source, Target: b.target, ReadOnly: b.readOnly ?? true })),
      RestartPolicy: { Name: s.restart ?? 'no' },
    },
    ...(networks[0] ? { NetworkingConfig: { EndpointsConfig: { [networks[0]]: { Aliases: [s.service] } } } } : {}),
  };
  const { Id } = await engine.call<{ Id: string }>('POST', `/containers/create?name=${encodeURIComponent(containerName(s))}`, body);
  for (const n of networks.slice(1)) await engine.call('POST', `/networks/${encodeURIComponent(n)}/connect`, { Container: Id, EndpointConfig: { Aliases: [s.service] } });
  if (s.start ?? true) await engine.call('POST', `/containers/${Id}/start`);
  return Id;
}

/** Removes every container of `project` (forced) and its networks. */
export async function removeComposeProject(engine: DockerEngine, project: string): Promise<void> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }));
  const containers = (await engine.call<Array<{ Id: string }> | null>('GET', `/containers/json?all=1&filters=${filters}`)) ?? [];
  for (const c of containers) await engine.call('DELETE', `/containers/${c.Id}?force=1&v=1`).catch(() => undefined);
  const nets = (await engine.call<Array<{ Id: string }> | null>('GET', `/networks?filters=${filters}`)) ?? [];
  for (const n of nets) await engine.call('DELETE', `/networks/${n.Id}`).catch(() => undefined);
}

import { TargetError } from '../core/errors.ts';
import { DockerApiError, DockerEngine, parseDockerHost } from '../targets/docker-engine.ts';

/**
 * A Docker image's build history and configuration, through the Docker Engine API: the
 * `docker history --no-trunc` equivalent (`GET /images/{name}/history`: each layer's CreatedBy
 * and Comment) and the image config (`GET /images/{name}/json`: Config.Env, Cmd, Entrypoint,
 * Labels). `ENV OPENAI_API_KEY=…` or `ARG` values used by a `RUN` land in both.
 * Layer contents (files inside the image) are not scanned.
 */
export interface ImageText {
  /** Where, for the finding: `layer 3` (row 3 of `docker history`, newest first) or `config Env`. */
  where: string;
  layer?: number;
  field: string;
  text: string;
}

export interface HistoryEntry {
  Id?: string;
  Created?: number;
  CreatedBy?: string;
  Tags?: string[] | null;
  Size?: number;
  Comment?: string;
}

export interface ImageInspect {
  Id?: string;
  Config?: {
    Env?: string[] | null;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    Labels?: Record<string, string> | null;
  } | null;
  ContainerConfig?: { Env?: string[] | null } | null;
}

/** Thrown when no Docker Engine answers: the message says where keyrot looked and what to set. */
export class EngineUnreachableError extends Error {
  override name = 'EngineUnreachableError';
}

export class ImageNotFoundError extends Error {
  override name = 'ImageNotFoundError';
}

/** The texts of an image to scan, from its history and config as the Engine returns them. */
export function imageTexts(history: HistoryEntry[], inspect: ImageInspect | undefined): ImageText[] {
  const out: ImageText[] = [];
  history.forEach((h, i) => {
    const layer = i + 1;
    if (h.CreatedBy) out.push({ where: `layer ${layer}`, layer, field: 'CreatedBy', text: h.CreatedBy });
    if (h.Comment) out.push({ where: `layer ${layer}`, layer, field: 'Comment', text: h.Comment });
  });
  const cfg = inspect?.Config ?? undefined;
  const list = (field: string, values: string[] | null | undefined) => {
    (values ?? []).forEach((v, i) => out.push({ where: `config ${field}[${i}]`, field, text: v }));
  };
  list('Env', cfg?.Env);
  list('Cmd', cfg?.Cmd);
  list('Entrypoint', cfg?.Entrypoint);
  for (const [k, v] of Object.entries(cfg?.Labels ?? {})) out.push({ where: `config Labels`, field: 'Labels', text: `${k}=${v}` });
  // Older Engines also keep the build container's config; only report what Config does not repeat.
  const seenEnv = new Set(cfg?.Env ?? []);
  (inspect?.ContainerConfig?.Env ?? []).forEach((v, i) => {
    if (!seenEnv.has(v)) out.push({ where: `container config Env[${i}]`, field: 'ContainerConfig.Env', text: v });
  });
  return out;
}

/** The Engine at DOCKER_HOST (unix:// or plain tcp://), else /var/run/docker.sock. */
export function engineFromEnv(env: NodeJS.ProcessEnv = process.env): DockerEngine {
  return new DockerEngine(parseDockerHost(env.DOCKER_HOST, env), { timeoutMs: 60_000 });
}

function imagePath(name: string, what: 'history' | 'json'): string {
  return `/images/${encodeURIComponent(name)}/${what}`;
}

/** Reads one image's history and config; throws EngineUnreachableError / ImageNotFoundError. */
export async function readImage(engine: DockerEngine, name: string, signal?: AbortSignal): Promise<ImageText[]> {
  try {
    const inspect = await engine.call<ImageInspect>('GET', imagePath(name, 'json'), undefined, signal);
    const history = (await engine.call<HistoryEntry[]>('GET', imagePath(name, 'history'), undefined, signal)) ?? [];
    return imageTexts(history, inspect);
  } catch (err) {
    if (err instanceof DockerApiError && err.status === 404) {
      throw new ImageNotFoundError(`no image "${name}" on the Docker Engine at ${engine.host.display} (pull or build it first)`);
    }
    if (err instanceof TargetError && !(err instanceof DockerApiError) && (err.kind === 'unavailable' || err.kind === 'permission' || err.kind === 'timeout')) {
      const why = err.kind === 'permission' ? 'permission denied on its socket (root or the docker group)' : err.kind === 'timeout' ? 'it did not answer in time' : 'nothing answers there';
      throw new EngineUnreachableError(
        `cannot reach a Docker Engine at ${engine.host.display} to scan image "${name}": ${why}. ` +
          'Start dockerd, or set DOCKER_HOST (unix:///path/to/docker.sock or tcp://127.0.0.1:2375)',
      );
    }
    throw err;
  }
}

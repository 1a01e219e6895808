import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { TargetError, toTargetError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { DockerEngine, parseDockerHost, type EngineNeeds } from '../docker-engine.ts';
import { sha256Hex, sha256Seen, type Seen } from '../docker-exec.ts';
import { createDotenvTarget } from '../dotenv/adapter.ts';
import { createFileTarget } from '../file/adapter.ts';
import { waitTimeoutMs, type CommonTargetConfig, type OpContext, type PreflightResult, type RedeployPurpose, type Target, type TargetContext, type VerifyResult } from '../types.ts';
import { envValueOf, inspectOrNull, serviceContainers, viewOf, type HostFile, type ServiceContainer } from './containers.ts';
import type { DockerComposeConfig, DockerComposeReceipt } from './index.ts';
import { restartContainer, type Lifecycle } from './lifecycle.ts';
import { deliveryLine, unreachable } from './plan-lines.ts';
import { finishPending, isPending, KEYROT_LABELS, recreateWithEnv } from './recreate.ts';
import { waitUntilRunning } from './wait.ts';

/*
 * A Compose project's key file (`file:`) or env file (`env_file:`). The file is the `file` /
 * `dotenv` target's own (through links, atomically, mode and owner kept); `redeploy` then brings
 * every container of the named services onto the file as it is now: a restart where the
 * container mounts the file, a re-create where the variable is in its environment, and waits
 * until each runs (healthy when it has a healthcheck). After a restore the same `redeploy`
 * brings them back onto the restored file.
 */

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

const COMPOSE_NEEDS: EngineNeeds = {
  socket: 'the Docker socket of the host that runs the Compose project',
  pointAt: "that host's socket",
  proxyAllow: 'CONTAINERS, IMAGES, NETWORKS, EXEC and POST',
};

export function createDockerComposeTarget(config: DockerComposeConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<DockerComposeReceipt> {
  const rel = (config.file ?? config.env_file)!;
  const path = isAbsolute(rel) ? rel : resolve(ctx.baseDir, rel);
  const envVar = config.env_file !== undefined ? ctx.varName : undefined;
  const local = localPart(config, rel, ctx);
  const waitMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
  const callMs = waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
  const hostSetting = config.endpoint ?? ctx.env.DOCKER_HOST;
  let engine: DockerEngine | undefined;
  const eng = () => (engine ??= new DockerEngine(parseDockerHost(hostSetting, ctx.env), { timeoutMs: callMs, needs: COMPOSE_NEEDS }));
  const lifecycle = (signal?: AbortSignal): Lifecycle => ({ engine: eng(), callMs, signal });
  const fail = (message: string, kind: TargetError['kind']) => new TargetError(message, { target: ctx.name, kind, retryable: false });

  const hostFile = async (): Promise<HostFile> => ({ path, real: await realpath(path).catch(() => path) });

  /** Every container of the services, with how it sees the file; what keeps keyrot from reaching one. */
  async function survey(signal?: AbortSignal): Promise<{ containers: ServiceContainer[]; problems: string[] }> {
    const file = await hostFile();
    const containers: ServiceContainer[] = [];
    const problems: string[] = [];
    for (const service of config.services) {
      const found = await serviceContainers(eng(), config.project, service, signal);
      if (!found.length) {
        problems.push(`service ${service} of Compose project ${config.project} has no containers on the Docker Engine at ${eng().host.display}: start it (docker compose -p ${config.project} up -d ${service}) or fix services:/project: of this target`);
      }
      for (const c of found) {
        const view = await viewOf(c, service, file, envVar);
        const why = unreachable(view, rel, envVar);
        if (why) problems.push(why);
        else containers.push(view);
      }
    }
    return { containers, problems };
  }

  /** The SHA-256 each delivery should show in a container: of the variable's value, or of the whole file. */
  async function expectedHashes(value: Secret | null): Promise<{ env: string | null; file: string | null }> {
    const bytes = await readFile(path).catch(() => null);
    return { env: value ? sha256Hex(value.reveal()) : null, file: bytes ? sha256Hex(bytes) : null };
  }

  /** verify: exec in one running container: what it sees, per delivery, against what it should see. */
  async function execCheck(c: ServiceContainer, id: string, expected: { env: string | null; file: string | null }, signal?: AbortSignal): Promise<string[]> {
    const wrong: string[] = [];
    for (const d of c.deliveries) {
      const seen: Seen = d.kind === 'env' ? { env: envVar! } : { file: d.path };
      const hash = await sha256Seen(eng(), id, c.name, seen, { deadlineMs: callMs, clock: ctx.clock, signal });
      const want = d.kind === 'env' ? expected.env : expected.file;
      if (hash !== want) wrong.push(d.kind === 'env' ? `${envVar} in its environment` : d.path);
    }
    return wrong;
  }

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const pf = await local.target.preflight(signal);
    if (pf.status !== 'ready') return pf;
    try {
      const info = await eng().info(signal);
      const { containers, problems } = await survey(signal);
      const notes = [...(pf.notes ?? []), `Docker Engine ${info.version} (API ${info.apiVersion}) at ${eng().host.display}`];
      notes.push(...containers.map((c) => deliveryLine(c, rel, envVar)));
      const warnings = [...(pf.warnings ?? [])];
      const current = pf.current.kind === 'value' ? pf.current.value : null;
      for (const c of containers) {
        if (c.deliveries.some((d) => d.kind === 'env') && c.envValue && current && !c.envValue.equals(current)) {
          warnings.push(`container ${c.name} runs with a different ${envVar} (${c.envValue.fingerprint}) than ${rel} holds (${current.fingerprint}): it was created before the file last changed; keyrot re-creates it, and that key should be revoked too`);
        }
      }
      if (config.verify === 'exec') await probeExec(containers, current, notes, problems, signal);
      if (problems.length) return { status: 'blocked', reason: problems.join('; '), current: pf.current, notes, warnings };
      notes.push(`after the write, keyrot brings each container onto the new file and waits up to ${formatDuration(waitMs)} for it to run${config.verify === 'exec' ? ', then checks what it sees (verify: exec)' : ''}`);
      return { ...pf, notes, ...(warnings.length ? { warnings } : {}) };
    } catch (err) {
      const e = toTargetError(err, ctx.name, 'preflight');
      if (e.retryable) throw e;
      return { status: 'blocked', reason: e.message, current: pf.current, ...(pf.notes ? { notes: pf.notes } : {}) };
    }
  }

  /** verify: exec before anything is written: the check runs in each running container (an image without sha256sum blocks). */
  async function probeExec(containers: ServiceContainer[], current: Secret | null, notes: string[], problems: string[], signal?: AbortSignal): Promise<void> {
    const expected = await expectedHashes(current);
    for (const c of containers) {
      if (!c.inspect.State.Running) continue;
      try {
        const wrong = await execCheck(c, c.inspect.Id, expected, signal);
        notes.push(`verify: exec works in ${c.name}${wrong.length ? `; it does not see what ${rel} holds now at ${wrong.join(', ')}` : ''}`);
      } catch (err) {
        const e = toTargetError(err, ctx.name, 'preflight');
        if (e.retryable) throw e;
        problems.push(e.message);
      }
    }
  }

  /** Finishes the re-creates an interrupted run left (a replacement still under its temporary name). */
  async function finishInterrupted(signal?: AbortSignal): Promise<void> {
    for (const service of config.services) {
      const all = await serviceContainers(eng(), config.project, service, signal);
      for (const c of all.filter(isPending)) {
        const old = all.find((o) => o.Id === c.Config.Labels?.[KEYROT_LABELS.replaces]) ?? null;
        await finishPending(c, old, lifecycle(signal));
      }
    }
  }

  /** Restarts or re-creates one container so it runs the file as it is now (`value` for its environment); waits for it. */
  async function bringOnto(c: ServiceContainer, value: Secret | null, mtimeMs: number, op: OpContext): Promise<string> {
    const l = lifecycle(op.signal);
    const ran = c.inspect.State.Running || c.inspect.State.Restarting;
    let id = c.inspect.Id;
    let action = 'already on it';
    if (c.deliveries.some((d) => d.kind === 'env')) {
      const same = value ? c.envValue?.equals(value) === true : envValueOf(c.inspect.Config.Env, envVar!) === null;
      if (!same) {
        id = (await recreateWithEnv(c.inspect, envWith(c.inspect.Config.Env ?? [], envVar!, value), op.rotationId, l)).Id;
        action = 're-created';
      }
    } else if (ran && startedAtMs(c.inspect.State.StartedAt) <= mtimeMs) {
      await restartContainer(c.inspect, l);
      action = 'restarted';
    }
    if (!ran) return `${c.name} ${action === 're-created' ? 're-created, left stopped as it was' : 'is stopped: it reads the file when it starts'}`;
    ctx.logger.info(`container ${c.name} ${action}`, { target: ctx.name });
    const now = await inspectOrNull(eng(), id, op.signal);
    const state = await waitUntilRunning(id, now?.RestartCount ?? 0, { engine: eng(), clock: ctx.clock, deadlineMs: waitMs, signal: op.signal, target: ctx.name });
    if (config.verify !== 'exec') return `${c.name} ${action}, ${state}`;
    const wrong = await execCheck(c, id, await expectedHashes(value), op.signal);
    if (wrong.length) throw fail(`container ${c.name} does not see what ${rel} holds at ${wrong.join(', ')} (SHA-256 computed in the container)`, 'mismatch');
    return `${c.name} ${action}, ${state}, sees ${value ? `key ${value.fingerprint}` : 'no key'} (SHA-256 in the container)`;
  }

  async function redeploy(op: OpContext, _receipt: DockerComposeReceipt | undefined, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> {
    const now = await local.target.read(op.signal);
    const value = now.kind === 'value' ? now.value : null;
    if (purpose === 'write' && value?.fingerprint !== op.fingerprint) {
      throw fail(`${rel} no longer holds the new key (${op.fingerprint}): it changed after keyrot wrote it; run keyrot resume`, 'mismatch');
    }
    await finishInterrupted(op.signal);
    const { containers, problems } = await survey(op.signal);
    if (problems.length) throw fail(problems.join('; '), 'not-found');
    const mtimeMs = (await stat((await hostFile()).real).catch(() => null))?.mtimeMs ?? 0;
    const lines: string[] = [];
    for (const c of containers) lines.push(await bringOnto(c, value, mtimeMs, op));
    return { method: 'redeploy', detail: lines.join('; ') };
  }

  const guarded =
    <A extends unknown[], T>(op: string, fn: (...a: A) => Promise<T>) =>
    async (...a: A): Promise<T> => {
      try {
        return await fn(...a);
      } catch (err) {
        throw toTargetError(err, ctx.name, op);
      }
    };

  return {
    id: 'docker-compose',
    name: ctx.name,
    location: `${rel} (Compose project ${config.project}: ${config.services.join(', ')})`,
    lockKey: `file:${path}`,
    removeStrays: () => local.target.removeStrays!(),
    preflight,
    read: (signal) => local.target.read(signal),
    write: async (value, op) => local.wrap(await local.target.write(value, op)),
    verify: (value, op) => local.target.verify(value, op, undefined),
    restore: (previous, op, receipt) => local.target.restore(previous, op, local.unwrap(receipt)),
    redeploy: guarded('redeploy', redeploy),
    async close() {
      engine?.close();
      engine = undefined;
    },
  };
}

/** The file part: the `file` or `dotenv` target itself, and its receipt inside ours. */
function localPart(config: DockerComposeConfig, rel: string, ctx: TargetContext & { name: string }) {
  if (config.env_file !== undefined) {
    const target = createDotenvTarget({ path: rel }, ctx);
    return { target: target as Target<unknown>, wrap: (r: unknown): DockerComposeReceipt => ({ envFile: r as never }), unwrap: (r: DockerComposeReceipt | undefined) => (r && 'envFile' in r ? r.envFile : undefined) };
  }
  const target = createFileTarget({ path: rel }, ctx);
  return { target: target as Target<unknown>, wrap: (r: unknown): DockerComposeReceipt => ({ file: r as never }), unwrap: (r: DockerComposeReceipt | undefined) => (r && 'file' in r ? r.file : undefined) };
}

/** `env` with the variable set to `value` (in place of its first entry, or added), or taken out when `value` is null. */
export function envWith(env: string[], name: string, value: Secret | null): string[] {
  const entry = value ? `${name}=${value.reveal()}` : undefined;
  const out: string[] = [];
  let placed = false;
  for (const e of env) {
    if (!e.startsWith(`${name}=`)) out.push(e);
    else if (entry && !placed) {
      out.push(entry);
      placed = true;
    }
  }
  if (entry && !placed) out.push(entry);
  return out;
}

/** The Engine's StartedAt (RFC 3339, nanoseconds) in ms; 0 when unknown. */
function startedAtMs(at: string | undefined): number {
  const ms = at ? Date.parse(at) : NaN;
  return Number.isNaN(ms) ? 0 : ms;
}

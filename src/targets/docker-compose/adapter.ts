import { toTargetError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { createDotenvTarget } from '../dotenv/adapter.ts';
import { createFileTarget } from '../file/adapter.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import type { ServiceContainer } from './containers.ts';
import type { DockerComposeConfig, DockerComposeReceipt } from './index.ts';
import { deliveryLine } from './plan-lines.ts';
import { bringAllOnto } from './redeploy.ts';
import { ComposeSite } from './site.ts';

/*
 * A Compose project's key file (`file:`) or env file (`env_file:`). The file is the `file` /
 * `dotenv` target's own (through links, atomically, mode and owner kept); `redeploy` then brings
 * every container of the named services onto the file as it is now (redeploy.ts). After a
 * restore the same `redeploy` brings them back onto the restored file.
 */

export function createDockerComposeTarget(config: DockerComposeConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<DockerComposeReceipt> {
  const site = new ComposeSite(config, ctx);
  const local = localPart(config, site.rel, ctx);

  async function redeploy(op: OpContext, _receipt: DockerComposeReceipt | undefined, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> {
    try {
      const now = await local.target.read(op.signal);
      const value = now.kind === 'value' ? now.value : null;
      if (purpose === 'write' && value?.fingerprint !== op.fingerprint) {
        throw site.fail(`${site.rel} no longer holds the new key (${op.fingerprint}): it changed after keyrot wrote it; run keyrot resume`, 'mismatch');
      }
      return await bringAllOnto(site, value, op);
    } catch (err) {
      throw toTargetError(err, ctx.name, 'redeploy');
    }
  }

  return {
    id: 'docker-compose',
    name: ctx.name,
    location: `${site.rel} (Compose project ${config.project}: ${config.services.join(', ')})`,
    lockKey: `file:${site.path}`,
    rateLimitKey: site.rateLimitKey,
    removeStrays: () => local.target.removeStrays!(),
    preflight: (signal) => preflight(site, local.target, signal),
    read: (signal) => local.target.read(signal),
    write: async (value, op) => local.wrap(await local.target.write(value, op)),
    verify: (value, op) => local.target.verify(value, op, undefined),
    restore: (previous, op, receipt) => local.target.restore(previous, op, local.unwrap(receipt)),
    redeploy,
    async close() {
      site.close();
    },
  };
}

/** The file's own preflight, then the Engine, each container and how it sees the key (plan's lines), and verify: exec tried once. */
async function preflight(site: ComposeSite, file: Target<unknown>, signal?: AbortSignal): Promise<PreflightResult> {
  const pf = await file.preflight(signal);
  if (pf.status !== 'ready') return pf;
  try {
    const info = await site.engine.info(signal);
    const { containers, problems } = await site.survey(signal);
    const notes = [...(pf.notes ?? []), `Docker Engine ${info.version} (API ${info.apiVersion}) at ${site.engine.host.display}`];
    notes.push(...containers.map((c) => deliveryLine(c, site.rel, site.envVar)));
    const current = pf.current.kind === 'value' ? pf.current.value : null;
    const warnings = [...(pf.warnings ?? []), ...staleEnvWarnings(site, containers, current)];
    if (site.config.verify === 'exec') await probeExec(site, containers, current, notes, problems, signal);
    if (problems.length) return { status: 'blocked', reason: problems.join('; '), current: pf.current, notes, warnings };
    notes.push(`after the write, keyrot brings each container onto the new file and waits up to ${formatDuration(site.waitMs)} for it to run${site.config.verify === 'exec' ? ', then checks what it sees (verify: exec)' : ''}`);
    return { ...pf, notes, ...(warnings.length ? { warnings } : {}) };
  } catch (err) {
    const e = toTargetError(err, site.ctx.name, 'preflight');
    if (e.retryable) throw e;
    return { status: 'blocked', reason: e.message, current: pf.current, ...(pf.notes ? { notes: pf.notes } : {}) };
  }
}

/** Containers created before the env file last changed run another key: it must be revoked too. */
function staleEnvWarnings(site: ComposeSite, containers: ServiceContainer[], current: Secret | null): string[] {
  if (!current) return [];
  return containers
    .filter((c) => c.deliveries.some((d) => d.kind === 'env') && c.envValue && !c.envValue.equals(current))
    .map(
      (c) =>
        `container ${c.name} runs with a different ${site.envVar} (${c.envValue!.fingerprint}) than ${site.rel} holds (${current.fingerprint}): it was created before the file last changed; keyrot re-creates it, and that key should be revoked too`,
    );
}

/** verify: exec before anything is written: the check runs in each running container (an image without sha256sum blocks). */
async function probeExec(site: ComposeSite, containers: ServiceContainer[], current: Secret | null, notes: string[], problems: string[], signal?: AbortSignal): Promise<void> {
  const expected = await site.expected(current);
  for (const c of containers) {
    if (!c.inspect.State.Running) continue;
    try {
      const wrong = await site.execCheck(c, c.inspect.Id, expected, signal);
      notes.push(`verify: exec works in ${c.name}${wrong.length ? `; it does not see what ${site.rel} holds now at ${wrong.join(', ')}` : ''}`);
    } catch (err) {
      const e = toTargetError(err, site.ctx.name, 'preflight');
      if (e.retryable) throw e;
      problems.push(e.message);
    }
  }
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

import { stat } from 'node:fs/promises';
import type { Secret } from '../../core/secret.ts';
import type { OpContext, VerifyResult } from '../types.ts';
import { envValueOf, inspectOrNull, serviceContainers, type ServiceContainer } from './containers.ts';
import { restartContainer } from './lifecycle.ts';
import { finishPending, isPending, KEYROT_LABELS, recreateWithEnv } from './recreate.ts';
import type { ComposeSite } from './site.ts';
import { waitUntilRunning } from './wait.ts';

/*
 * Brings every container of the services onto the file as it is now (`value`: what it holds):
 * a restart where the container mounts the file, a re-create where the variable is in its
 * environment; then waits until each runs (healthy when it has a healthcheck) and, with
 * `verify: exec`, checks what it sees. The same after a write and after a restore.
 */
export async function bringAllOnto(site: ComposeSite, value: Secret | null, op: OpContext): Promise<VerifyResult> {
  await finishInterrupted(site, op.signal);
  const { containers, problems } = await site.survey(op.signal);
  if (problems.length) throw site.fail(problems.join('; '), 'not-found');
  const mtimeMs = (await stat((await site.hostFile()).real).catch(() => null))?.mtimeMs ?? 0;
  const lines: string[] = [];
  for (const c of containers) lines.push(await bringOnto(site, c, value, mtimeMs, op));
  return { method: 'redeploy', detail: lines.join('; ') };
}

/** Finishes the re-creates an interrupted run left (a replacement still under its temporary name). */
async function finishInterrupted(site: ComposeSite, signal?: AbortSignal): Promise<void> {
  for (const service of site.config.services) {
    const all = await serviceContainers(site.engine, site.config.project, service, signal);
    for (const c of all.filter(isPending)) {
      const old = all.find((o) => o.Id === c.Config.Labels?.[KEYROT_LABELS.replaces]) ?? null;
      await finishPending(c, old, site.lifecycle(signal));
    }
  }
}

/** Restarts or re-creates one container so it runs the file as it is now; waits for it; checks it (verify: exec). */
async function bringOnto(site: ComposeSite, c: ServiceContainer, value: Secret | null, mtimeMs: number, op: OpContext): Promise<string> {
  const ran = c.inspect.State.Running || c.inspect.State.Restarting;
  let id = c.inspect.Id;
  let action = 'already on it';
  if (c.deliveries.some((d) => d.kind === 'env')) {
    const same = value ? c.envValue?.equals(value) === true : envValueOf(c.inspect.Config.Env, site.envVar!) === null;
    if (!same) {
      id = (await recreateWithEnv(c.inspect, envWith(c.inspect.Config.Env ?? [], site.envVar!, value), op.rotationId, site.lifecycle(op.signal))).Id;
      action = 're-created';
    }
  } else if (ran && startedAtMs(c.inspect.State.StartedAt) <= mtimeMs) {
    await restartContainer(c.inspect, site.lifecycle(op.signal));
    action = 'restarted';
  }
  if (!ran) return `${c.name} ${action === 're-created' ? 're-created, left stopped as it was' : 'is stopped: it reads the file when it starts'}`;
  site.ctx.logger.info(`container ${c.name} ${action}`, { target: site.ctx.name });
  const now = await inspectOrNull(site.engine, id, op.signal);
  const state = await waitUntilRunning(id, now?.RestartCount ?? 0, { engine: site.engine, clock: site.ctx.clock, deadlineMs: site.waitMs, signal: op.signal, target: site.ctx.name });
  if (site.config.verify !== 'exec') return `${c.name} ${action}, ${state}`;
  const wrong = await site.execCheck(c, id, await site.expected(value), op.signal);
  if (wrong.length) throw site.fail(`container ${c.name} does not see what ${site.rel} holds at ${wrong.join(', ')} (SHA-256 computed in the container)`, 'mismatch');
  return `${c.name} ${action}, ${state}, sees ${value ? `key ${value.fingerprint}` : 'no key'} (SHA-256 in the container)`;
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

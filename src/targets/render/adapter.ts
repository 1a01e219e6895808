import { Secret } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { credentialOrDefault } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { laneOf, lazyCredential, preflightFailed, verifyByReadBack } from '../common.ts';
import { waitTimeoutMs } from '../types.ts';
import { tokenRateLimitKey } from '../token-client.ts';
import type { CommonTargetConfig, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext } from '../types.ts';
import { render, type RenderConfig, type RenderReceipt } from './index.ts';
import { KEY_HELP, renderClient, type RenderService } from './client.ts';
import { renderRedeploy } from './deploy.ts';

/**
 * One environment variable set directly on a Render service (not one from a linked environment
 * group), read back to verify, then one deploy so the running service gets it (deploy.ts).
 */

const DEFAULT_TIMEOUT_MS = 15 * 60_000;

const credentialName = (ref: { kind: string; name?: string; raw: string }) => (ref.kind === 'env' ? ref.name! : ref.raw);

export function createRenderTarget(config: RenderConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<RenderReceipt> {
  const id = config.service;
  const varName = ctx.varName;
  const redeployWanted = config.redeploy !== false;
  const timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
  const cred = credentialOrDefault(config.token, ['RENDER_API_KEY'], ctx.env);
  const rateLimitKey = tokenRateLimitKey('render', config.endpoint, credentialName(cred));
  const api = renderClient({
    endpoint: config.endpoint,
    lane: laneOf(ctx, rateLimitKey, render),
    credential: lazyCredential(ctx, cred, (m) => `Render API key: ${m} (${KEY_HELP})`),
    credName: credentialName(cred),
    clock: ctx.clock,
    target: ctx.name,
    timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    service: id,
    varName,
  });
  let serviceType: string | undefined;
  async function read(signal?: AbortSignal): Promise<ReadResult> {
    const v = await api.getVar(id, varName, 'read', signal);
    return v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    try {
      const svc = await api.service(id, 'preflight', signal);
      serviceType = svc.type;
      const current = await read(signal);
      if (redeployWanted && svc.suspended === 'suspended') {
        const reason = `Render service ${label(svc)} is suspended, so it cannot be deployed: resume it in the Render Dashboard, or set \`redeploy: false\``;
        return { status: 'blocked', reason, current };
      }
      const notes = planNotes(svc, current);
      return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
    } catch (err) {
      return preflightFailed(err, ctx.name);
    }
  }

  function planNotes(svc: RenderService, current: ReadResult): string[] {
    const notes = [`sets ${varName} on Render ${svc.type ?? 'service'} ${label(svc)} (this one variable; the others and linked environment groups are untouched); verified by reading it back`];
    if (!redeployWanted) notes.push(`no deploy (redeploy: false): the running service keeps the old value until its next deploy`);
    else if (svc.type === 'static_site') notes.push(`then a build and deploy of the site's branch (a static site bakes variables into its build), waited for until live (up to ${formatDuration(timeoutMs)})`);
    else notes.push(`then a deploy of the current build (no new code), waited for until live (up to ${formatDuration(timeoutMs)})`);
    if (current.kind === 'absent') notes.push(`${varName} is not set on the service: keyrot will create it (and delete it again on rollback); a value from a linked environment group would be shadowed`);
    return notes;
  }

  const target: Target<RenderReceipt> = {
    id: 'render',
    name: ctx.name,
    location: `render service ${id}`,
    // One service's variables and deploys: two targets on one service take turns.
    rateLimitKey,
    lockKey: `render:${config.endpoint ?? ''}:${id}`,
    preflight,
    read,

    async write(value, op) {
      const before = await api.getVar(id, varName, 'write', op.signal);
      // Idempotent: the same value is not written again (the deploy is redeploy's business).
      if (before === value.reveal()) return { service: id, changed: false, created: false };
      const echoed = await api.putVar(id, varName, value, 'write', op.signal);
      if (echoed !== value.reveal()) {
        throw new TargetError(`Render accepted ${varName} on service ${id} but its answer does not hold the new key`, { target: ctx.name, op: 'write', kind: 'mismatch', retryable: true });
      }
      return { service: id, changed: true, created: before === undefined };
    },

    verify: (value) => verifyByReadBack(read, value, ctx.name, `Render service ${id} ${varName}`),

    async restore(previous, op) {
      const now = await api.getVar(id, varName, 'restore', op.signal);
      if (previous === null) {
        if (now !== undefined) await api.deleteVar(id, varName, 'restore', op.signal);
        return;
      }
      if (now !== previous.reveal()) await api.putVar(id, varName, previous, 'restore', op.signal);
    },
  };

  if (redeployWanted) {
    const redeploy = renderRedeploy({ api, service: id, varName, timeoutMs, clock: ctx.clock, target: ctx.name, serviceType: () => serviceType });
    target.redeploy = (op, _receipt, purpose: RedeployPurpose = 'write') => redeploy(op, purpose);
  }
  return target;
}

const label = (svc: RenderService) => (svc.name && svc.name !== svc.id ? `${svc.name} (${svc.id})` : svc.id);

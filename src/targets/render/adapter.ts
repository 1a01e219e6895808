import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError, toTargetError } from '../../core/errors.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { poll } from '../../runtime/poll.ts';
import { credentialOrDefault } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { lazyCredential, verifyByReadBack } from '../common.ts';
import { waitTimeoutMs } from '../types.ts';
import type { CommonTargetConfig, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import type { RenderConfig, RenderReceipt } from './index.ts';
import { KEY_HELP, renderClient, type RenderDeploy, type RenderService } from './client.ts';

/**
 * One environment variable set directly on a Render service (not one from a linked environment
 * group), read back to verify, then one deploy so the running service gets it. A deploy of an
 * unchanged build (`deployMode: deploy_only`) is enough for a runtime variable and ships no new
 * code; a static site bakes variables into its build, so it gets a build from its branch.
 */

const DEFAULT_TIMEOUT_MS = 15 * 60_000;
/** Deploy statuses that end a deploy without it going live (Render OpenAPI `deployStatus`). */
const FAILED = new Set(['build_failed', 'update_failed', 'pre_deploy_failed', 'canceled']);
/** Live, or live and already replaced by a newer deploy: the Render CLI counts both as success. */
const SUCCEEDED = new Set(['live', 'deactivated']);

const credentialName = (ref: { kind: string; name?: string; raw: string }) => (ref.kind === 'env' ? ref.name! : ref.raw);

export function createRenderTarget(config: RenderConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<RenderReceipt> {
  const id = config.service;
  const varName = ctx.varName;
  const redeployWanted = config.redeploy !== false;
  const timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
  const cred = credentialOrDefault(config.token, ['RENDER_API_KEY'], ctx.env);
  const api = renderClient({
    endpoint: config.endpoint,
    credential: lazyCredential(ctx, cred, (m) => `Render API key: ${m} (${KEY_HELP})`),
    credName: credentialName(cred),
    clock: ctx.clock,
    target: ctx.name,
    timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    service: id,
    varName,
  });
  let serviceType: string | undefined;
  /** Deploys started per rotation and purpose: a retried redeploy watches the same one. */
  const started = new Map<string, string>();

  const fail = (message: string, op: string, kind: TargetError['kind']) => new TargetError(message, { target: ctx.name, op, kind, retryable: false });

  async function read(signal?: AbortSignal): Promise<ReadResult> {
    const v = await api.getVar(id, varName, 'read', signal);
    return v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  /** Static sites bake variables into the build: they need one; everything else redeploys its current build. */
  const deployBody = (): Record<string, string> => (serviceType === 'static_site' ? { clearCache: 'do_not_clear' } : { deployMode: 'deploy_only' });

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
      const e = toTargetError(err, ctx.name, 'preflight');
      // Transient (429, 5xx, timeout): not an answer; the engine retries it, bounded.
      if (e.retryable) throw e;
      return { status: 'blocked', reason: e.message, current: { kind: 'unreadable', reason: e.message } };
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

  /** Starts (or finds again) this rotation's deploy and waits until it is live. */
  async function deployAndWait(op: { rotationId: string; signal?: AbortSignal }, purpose: RedeployPurpose): Promise<RenderDeploy> {
    const name = purpose === 'write' ? 'redeploy' : 'restore-deploy';
    const memo = `${op.rotationId}:${purpose}`;
    let deployId = started.get(memo);
    if (!deployId) {
      if (serviceType === undefined) serviceType = (await api.service(id, name, op.signal)).type;
      deployId = await api.deploy(id, deployBody(), name, op.signal);
      if (!deployId) throw new TargetError(`Render accepted the deploy of service ${id} but does not list it: keyrot will look again`, { target: ctx.name, op: name, kind: 'unavailable', retryable: true });
      started.set(memo, deployId);
    }
    const watched = deployId;
    return poll({
      check: () => api.getDeploy(id, watched, name, op.signal),
      until: (d) => {
        if (d.status && FAILED.has(d.status)) {
          started.delete(memo);
          throw fail(`Render deploy ${watched} of service ${id} ended ${d.status}: the service still runs its previous deploy; see the deploy's logs in the Render Dashboard`, name, 'unavailable');
        }
        return !!d.status && SUCCEEDED.has(d.status);
      },
      deadlineMs: timeoutMs,
      clock: ctx.clock,
      signal: op.signal,
      target: ctx.name,
      op: name,
      describe: (d) => `Render deploy ${watched} of service ${id} is still ${d?.status ?? 'starting'} after ${formatDuration(timeoutMs)}: check it in the Render Dashboard (raise \`timeout:\` for slow builds)`,
    });
  }

  const target: Target<RenderReceipt> = {
    id: 'render',
    name: ctx.name,
    location: `render service ${id}`,
    // One service's variables and deploys: two targets on one service take turns.
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
    target.redeploy = async (op, _receipt, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> => {
      const d = await deployAndWait(op, purpose);
      // The deploy started after the variable was set, so it runs what the variable holds now.
      const now = await api.getVar(id, varName, 'redeploy', op.signal);
      const holdsNew = now !== undefined && fingerprint(now) === op.fingerprint;
      if (purpose === 'write' ? !holdsNew : holdsNew) {
        const want = purpose === 'write' ? `the new key (${op.fingerprint})` : 'the old value';
        throw fail(`Render deploy ${d.id} of service ${id} is live, but ${varName} no longer holds ${want}: it was changed during the deploy; rotate again`, 'redeploy', 'mismatch');
      }
      const what = purpose === 'write' ? 'the new key' : 'the old value again';
      return { method: 'redeploy', detail: `deploy ${d.id} of Render service ${id} is ${d.status} with ${what}` };
    };
  }
  return target;
}

const label = (svc: RenderService) => (svc.name && svc.name !== svc.id ? `${svc.name} (${svc.id})` : svc.id);

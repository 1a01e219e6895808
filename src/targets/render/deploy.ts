import { fingerprint } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import type { Clock } from '../../runtime/clock.ts';
import { poll } from '../../runtime/poll.ts';
import { formatDuration } from '../../inventory/duration.ts';
import type { OpContext, RedeployPurpose, VerifyResult } from '../types.ts';
import type { RenderClient, RenderDeploy } from './client.ts';

/**
 * One deploy of a Render service after its variable changed, watched until it is live. A deploy
 * of the current build (`deployMode: deploy_only`) is enough for a runtime variable and ships no
 * new code; a static site bakes variables into its build, so it gets a build of its branch.
 */

/** Deploy statuses that end a deploy without it going live (Render OpenAPI `deployStatus`). */
const FAILED = new Set(['build_failed', 'update_failed', 'pre_deploy_failed', 'canceled']);
/** Live, or live and already replaced by a newer deploy: the Render CLI counts both as success. */
const SUCCEEDED = new Set(['live', 'deactivated']);

export interface RenderDeployerOptions {
  api: RenderClient;
  service: string;
  varName: string;
  timeoutMs: number;
  clock: Clock;
  target: string;
  /** The service's type (`static_site`, `web_service`, ...), when preflight already read it. */
  serviceType: () => string | undefined;
}

/** `redeploy(op, purpose)`: deploys once per rotation and purpose (a retry watches the same deploy), then checks the variable still holds what it should. */
export function renderRedeploy(o: RenderDeployerOptions): (op: OpContext, purpose: RedeployPurpose) => Promise<VerifyResult> {
  const { api, service: id, varName } = o;
  const started = new Map<string, string>();
  const fail = (message: string, op: string, kind: TargetError['kind']) => new TargetError(message, { target: o.target, op, kind, retryable: false });

  async function deployAndWait(op: OpContext, purpose: RedeployPurpose): Promise<RenderDeploy> {
    const name = purpose === 'write' ? 'redeploy' : 'restore-deploy';
    const memo = `${op.rotationId}:${purpose}`;
    let deployId = started.get(memo);
    if (!deployId) {
      const type = o.serviceType() ?? (await api.service(id, name, op.signal)).type;
      const body: Record<string, string> = type === 'static_site' ? { clearCache: 'do_not_clear' } : { deployMode: 'deploy_only' };
      deployId = await api.deploy(id, body, name, op.signal);
      if (!deployId) throw new TargetError(`Render accepted the deploy of service ${id} but does not list it: keyrot will look again`, { target: o.target, op: name, kind: 'unavailable', retryable: true });
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
      deadlineMs: o.timeoutMs,
      clock: o.clock,
      signal: op.signal,
      target: o.target,
      op: name,
      describe: (d) => `Render deploy ${watched} of service ${id} is still ${d?.status ?? 'starting'} after ${formatDuration(o.timeoutMs)}: check it in the Render Dashboard (raise \`timeout:\` for slow builds)`,
    });
  }

  return async (op, purpose) => {
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

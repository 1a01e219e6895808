import type { Secret } from '../../src/core/secret.ts';
import type { OpContext, Target } from '../../src/targets/types.ts';

/** What the engine does to undo a write: restore the value, then (when the target redeploys) put its consumers back on it. */
export async function restoreAndRedeploy<R>(t: Target<R>, previous: Secret | null, op: OpContext, receipt: R | undefined): Promise<void> {
  await t.restore(previous, op, receipt);
  if (t.redeploy) await t.redeploy(op, receipt, 'restore');
}

import { plural } from '../../render/plural.ts';
import { toTargetError } from '../../core/errors.ts';
import { createTargets } from '../live-targets.ts';
import { next } from '../outcome.ts';
import type { Run } from '../run.ts';

/**
 * After the old key is revoked: each target that has something to clean up (old versions to
 * disable, an old Docker secret to remove) does it. A failure does not undo anything (the key is
 * revoked already): it is reported, and `keyrot revoke` can run it again.
 */
export async function finalizeAll(run: Run): Promise<void> {
  // `keyrot revoke` has not created the adapters yet: finalize needs them, not a preflight.
  if (!run.live.length) run.live = await createTargets(run.runtime);
  const names = run.live.filter((t) => t.target?.finalize && !run.record(t.spec.name)?.finalized).map((t) => t.spec.name);
  if (!names.length) return;
  run.reporter.step('finalize', plural(names.length, 'target'));
  await Promise.all(
    names.map(async (name) => {
      const t = run.target(name);
      try {
        // In the provider's lane like every other step: a fleet's clean-up is paced too.
        await run.paced(name, () => run.retrying(name, 'finalized', () => t.finalize!(run.op(), run.receipt(name))));
        await run.emit({ step: 'finalize', target: name, outcome: 'ok' });
        run.reporter.target(name, 'finalized');
      } catch (err) {
        const e = toTargetError(err, name, 'finalize');
        await run.emit({ step: 'finalize', target: name, outcome: 'failed', detail: e.message });
        run.notices.push({ code: 'finalize-failed', target: name, error: e.message, next: next('revoke', run.env) });
        run.reporter.warn(`${name}: finalize failed (the old key is revoked; nothing is undone): ${e.message}`);
      }
    }),
  );
}

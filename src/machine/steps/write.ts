import { plural } from '../../render/plural.ts';
import { toTargetError } from '../../core/errors.ts';
import { failpoint } from '../../runtime/failpoints.ts';
import { encodeReceipt } from '../live-targets.ts';
import type { Run } from '../run.ts';

/**
 * Writes the new key to `names` concurrently (per-provider caps; targets sharing a lock key take
 * turns). Each write is journaled `started` before the call (a crash after it may have changed
 * the target) and `ok` with its receipt, or `failed`, after. Returns whether all succeeded.
 */
export async function writeAll(run: Run, names: string[]): Promise<boolean> {
  if (!names.length) return true;
  const key = run.newKey!;
  run.reporter.step('write', plural(names.length, 'target'));
  const results = await Promise.all(
    names.map((name) => {
      const t = run.target(name);
      return run.paced(name, async () => {
        if (run.o.signal?.aborted) return false;
        run.reporter.target(name, 'writing');
        await run.emit({ step: 'write', target: name, outcome: 'started', fingerprint: key.fingerprint });
        failpoint(`before-write:${name}`);
        try {
          const receipt = await run.retrying(name, 'writing', () => t.write(key, run.op()));
          await run.emit({ step: 'write', target: name, outcome: 'ok', fingerprint: key.fingerprint, ...encodeReceipt(run.definition(name), receipt) });
          failpoint(`after-write:${name}`);
          run.reporter.target(name, 'written');
          return true;
        } catch (err) {
          const e = toTargetError(err, name, 'write');
          await run.emit({ step: 'write', target: name, outcome: 'failed', fingerprint: key.fingerprint, detail: e.message });
          run.reporter.target(name, 'failed', `write: ${e.message}`);
          return false;
        }
      });
    }),
  );
  return results.every(Boolean);
}

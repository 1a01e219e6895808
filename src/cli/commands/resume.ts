import { resume } from '../../engine/rotation.ts';
import { obtainKey } from '../../keys/sources.ts';
import { commandContext, engineOptions, environment, notifyReport, keySourceContext, type CommonFlags } from '../context.ts';
import { paused, printRotationReport } from '../output.ts';
import { checkSource } from './rotate.ts';

export async function resumeCommand(flags: CommonFlags & { newKey?: string; oldKey?: string; rollback?: boolean }): Promise<number> {
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const newSource = flags.newKey ? checkSource(flags.newKey) : undefined;
  const oldSource = flags.oldKey ? checkSource(flags.oldKey, '--old-key') : undefined;
  const o = await engineOptions(ctx, env);
  try {
    const report = await resume(o, {
      rollback: Boolean(flags.rollback),
      newKey: newSource ? { source: newSource, obtain: () => paused(o.reporter, () => obtainKey(newSource, keySourceContext(ctx))) } : undefined,
      oldKey: oldSource ? { source: oldSource, obtain: () => paused(o.reporter, () => obtainKey(oldSource, keySourceContext(ctx, 'old key'))) } : undefined,
    });
    o.done();
    printRotationReport(ctx.out, report);
    await notifyReport(ctx, report, 'rotate');
    return report.exitCode;
  } finally {
    o.done();
  }
}

import { revoke } from '../../engine/rotation.ts';
import { commandContext, engineOptions, environment, notifyReport, type CommonFlags } from '../context.ts';
import { printRotationReport } from '../output.ts';

export async function revokeCommand(flags: CommonFlags): Promise<number> {
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const o = await engineOptions(ctx, env);
  try {
    const report = await revoke(o);
    o.done();
    printRotationReport(ctx.out, report);
    await notifyReport(ctx, report, 'revoke');
    return report.exitCode;
  } finally {
    o.done();
  }
}

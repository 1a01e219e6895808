import { rotate } from '../../engine/rotation.ts';
import { KeySourceField } from '../../inventory/schema.ts';
import { commandContext, engineOptions, environment, notifyReport, obtainNewKey, usage, type CommonFlags } from '../context.ts';
import { paused, printRotationReport } from '../output.ts';

export function checkSource(source: string, flag = '--new-key'): string {
  if (!KeySourceField.safeParse(source).success) {
    usage(`${flag} ${source}: expected prompt, stdin, env:VAR, file:PATH or openai-admin (a key itself is never passed on the command line)`);
  }
  return source;
}

export async function rotateCommand(flags: CommonFlags & { newKey?: string; dryRun?: boolean }): Promise<number> {
  if (flags.dryRun) return (await import('./plan.ts')).plan(flags);
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const source = checkSource(flags.newKey ?? env.keySource);
  const o = await engineOptions(ctx, env);
  try {
    const report = await rotate(o, { mode: 'rotate', source, obtainKey: (at) => paused(o.reporter, () => obtainNewKey(ctx, env, source, at)) });
    o.done();
    printRotationReport(ctx.out, report);
    await notifyReport(ctx, report, 'rotate');
    return report.exitCode;
  } finally {
    o.done();
  }
}

import { rotate } from '../../usecases/rotate.ts';
import { KeySourceField } from '../../inventory/schema.ts';
import { commandContext, environment, keySourceResolved, obtainNewKey, runEngineCommand, startChangingCommand, usage, type CommonFlags } from '../context.ts';
import { paused } from '../live-reporter.ts';

export function checkSource(source: string, flag = '--new-key'): string {
  if (!KeySourceField.safeParse(source).success) {
    usage(`${flag} ${source}: expected prompt, stdin, env:VAR, file:PATH or openai-admin (a key itself is never passed on the command line)`);
  }
  return source;
}

export async function rotateCommand(flags: CommonFlags & { newKey?: string; dryRun?: boolean }): Promise<number> {
  if (flags.dryRun) return (await import('./plan.ts')).plan(flags);
  startChangingCommand([flags.newKey]);
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const source = checkSource(flags.newKey ?? env.keySource);
  keySourceResolved([source]);
  return runEngineCommand(ctx, env, 'rotate', (o) =>
    rotate(o, { mode: 'rotate', source, obtainKey: (at) => paused(o.reporter, () => obtainNewKey(ctx, env, source, at)) }),
  );
}

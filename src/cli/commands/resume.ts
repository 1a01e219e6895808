import { resume } from '../../usecases/resume.ts';
import { obtainKey } from '../../keys/sources.ts';
import { commandContext, environment, keySourceContext, runEngineCommand, startChangingCommand, type CommonFlags } from '../context.ts';
import { paused } from '../live-reporter.ts';
import { checkSource } from './rotate.ts';

export async function resumeCommand(flags: CommonFlags & { newKey?: string; oldKey?: string; rollback?: boolean }): Promise<number> {
  // Without --new-key/--old-key, resume reads the keys back from the targets: no prompt.
  startChangingCommand([flags.newKey, flags.oldKey].filter((s) => s !== undefined));
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const newSource = flags.newKey ? checkSource(flags.newKey) : undefined;
  const oldSource = flags.oldKey ? checkSource(flags.oldKey, '--old-key') : undefined;
  return runEngineCommand(ctx, env, 'rotate', (o) =>
    resume(o, {
      rollback: Boolean(flags.rollback),
      newKey: newSource ? { source: newSource, obtain: () => paused(o.reporter, () => obtainKey(newSource, keySourceContext(ctx))) } : undefined,
      oldKey: oldSource ? { source: oldSource, obtain: () => paused(o.reporter, () => obtainKey(oldSource, keySourceContext(ctx, 'old key'))) } : undefined,
    }),
  );
}

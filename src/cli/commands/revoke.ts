import { revoke } from '../../usecases/revoke.ts';
import { commandContext, environment, runEngineCommand, startChangingCommand, type CommonFlags } from '../context.ts';

export async function revokeCommand(flags: CommonFlags): Promise<number> {
  startChangingCommand([]);
  const ctx = await commandContext(flags);
  return runEngineCommand(ctx, environment(ctx), 'revoke', (o) => revoke(o));
}

import { fakeClock, systemClock } from '../../src/runtime/clock.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { resolveCredential } from '../../src/inventory/credentials.ts';
import type { DiscoverContext, TargetContext } from '../../src/targets/types.ts';

/** A TargetContext for tests: real clock, silent logger, credentials from `env`. */
export function testContext(
  opts: { baseDir?: string; name?: string; varName?: string; env?: NodeJS.ProcessEnv } = {},
): TargetContext & { name: string } {
  const env = opts.env ?? {};
  const baseDir = opts.baseDir ?? process.cwd();
  return {
    name: opts.name ?? 'test',
    baseDir,
    varName: opts.varName ?? 'OPENAI_API_KEY',
    env,
    clock: systemClock,
    logger: silentLogger,
    resolve: (ref) => resolveCredential(ref, baseDir, env),
  };
}

/**
 * What `keyrot discover` gives one provider's `discover`: the variables to look for, the
 * inventory's configs of the type, and a fake clock that starts now (providers' rate-limit resets
 * are epoch times) and records what it slept.
 */
export function discoverContext(
  env: NodeJS.ProcessEnv,
  configs: DiscoverContext['configs'],
  varNames = ['OPENAI_API_KEY', 'OPENAI_KEY'],
): DiscoverContext & { clock: ReturnType<typeof fakeClock> } {
  return { ...testContext({ env, name: 'discover' }), clock: fakeClock(Date.now()), varNames, configs };
}

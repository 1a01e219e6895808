import { systemClock } from '../../src/runtime/clock.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { resolveCredential } from '../../src/inventory/credentials.ts';
import type { TargetContext } from '../../src/targets/types.ts';

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

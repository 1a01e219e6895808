import type { Environment, Inventory, TargetSpec } from '../inventory/load.ts';
import { resolveCredential } from '../inventory/credentials.ts';
import type { Logger } from '../runtime/logger.ts';
import type { PreflightResult, Target } from '../targets/types.ts';
import type { Clock } from '../runtime/clock.ts';
import { TargetError, toTargetError } from '../core/errors.ts';

/** A target of the environment: its spec, and the adapter once created (or why it could not be). */
export interface LiveTarget {
  spec: TargetSpec;
  target?: Target;
  createError?: TargetError;
}

export interface RuntimeContext {
  inventory: Inventory;
  env: Environment;
  processEnv: NodeJS.ProcessEnv;
  clock: Clock;
  logger: Logger;
}

/** Creates every adapter of the environment (this is where provider SDKs get loaded, lazily). */
export async function createTargets(rt: RuntimeContext): Promise<LiveTarget[]> {
  const { inventory } = rt;
  return Promise.all(
    rt.env.targets.map(async (spec): Promise<LiveTarget> => {
      try {
        const target = await spec.definition.create(spec.config, {
          name: spec.name,
          baseDir: inventory.baseDir,
          varName: spec.config.var ?? rt.env.key.name,
          env: rt.processEnv,
          clock: rt.clock,
          logger: rt.logger,
          resolve: (ref) => resolveCredential(ref, inventory.baseDir, rt.processEnv),
        });
        return { spec, target };
      } catch (err) {
        return { spec, createError: toTargetError(err, spec.name, 'setup') };
      }
    }),
  );
}

/** Read-only checks of every target, concurrently; a failure is a result, never a crash. */
export async function preflightAll(targets: LiveTarget[], signal?: AbortSignal): Promise<Map<string, PreflightResult>> {
  const out = new Map<string, PreflightResult>();
  await Promise.all(
    targets.map(async (lt) => {
      if (!lt.target) {
        out.set(lt.spec.name, { status: 'error', reason: lt.createError?.message ?? 'could not be set up', current: { kind: 'absent' } });
        return;
      }
      try {
        out.set(lt.spec.name, await lt.target.preflight(signal));
      } catch (err) {
        out.set(lt.spec.name, { status: 'error', reason: toTargetError(err, lt.spec.name, 'preflight').message, current: { kind: 'absent' } });
      }
    }),
  );
  return out;
}

/**
 * Under the environment's lock, before preflight: each target removes what an interrupted keyrot
 * run left behind (temp files holding a copy of a key). A failure is reported, never a crash.
 */
export async function removeStrays(targets: LiveTarget[]): Promise<{ removed: string[]; failed: string[] }> {
  const out = { removed: [] as string[], failed: [] as string[] };
  // One after the other: two targets on one file see its strays once.
  for (const { spec, target } of targets) {
    if (!target?.removeStrays) continue;
    try {
      for (const p of await target.removeStrays()) out.removed.push(`${spec.name}: removed ${p}, a temp file left by an interrupted keyrot write (a copy of the file, key included)`);
    } catch (err) {
      out.failed.push(`${spec.name}: could not remove the temp files an interrupted keyrot write left: ${toTargetError(err, spec.name, 'preflight').message}`);
    }
  }
  return out;
}

export async function closeAll(targets: LiveTarget[]): Promise<void> {
  await Promise.all(targets.map((t) => t.target?.close?.().catch(() => {})));
}

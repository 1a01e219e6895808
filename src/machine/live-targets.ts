import type { Environment, Inventory, TargetSpec } from '../inventory/load.ts';
import { resolveCredential } from '../inventory/credentials.ts';
import type { Logger } from '../runtime/logger.ts';
import { pacingOf, type Target, type TargetDefinition } from '../targets/types.ts';
import type { Clock } from '../runtime/clock.ts';
import { Pacer, type Lane } from '../runtime/pacer.ts';
import { preferSmallHeap } from '../runtime/heap.ts';
import { TargetError, toTargetError } from '../core/errors.ts';
import { Refusal, type NextStep } from './outcome.ts';
import type { TargetRecord } from './state.ts';

/** A target of the environment: its spec, and the adapter once created (or why it could not be). */
export interface LiveTarget {
  spec: TargetSpec;
  target?: Target;
  createError?: TargetError;
  /** The pacing lane of its provider account (shared with the other targets of that account). */
  lane: Lane;
}

export interface RuntimeContext {
  inventory: Inventory;
  env: Environment;
  processEnv: NodeJS.ProcessEnv;
  clock: Clock;
  logger: Logger;
  /** Paces the providers (one lane per account); a fresh one per call when absent. */
  pacer?: Pacer;
}

/** Creates every adapter of the environment (this is where provider SDKs get loaded, lazily). */
export async function createTargets(rt: RuntimeContext): Promise<LiveTarget[]> {
  const { inventory } = rt;
  const pacer = rt.pacer ?? new Pacer(rt.clock);
  // A fleet's run keeps its peak memory down (runtime/heap.ts).
  preferSmallHeap(rt.env.targets.length);
  return Promise.all(
    rt.env.targets.map(async (spec): Promise<LiveTarget> => {
      const limits = pacingOf(spec.definition);
      try {
        const target = await spec.definition.create(spec.config, {
          name: spec.name,
          baseDir: inventory.baseDir,
          varName: spec.config.var ?? rt.env.key.name,
          env: rt.processEnv,
          clock: rt.clock,
          logger: rt.logger,
          resolve: (ref) => resolveCredential(ref, inventory.baseDir, rt.processEnv),
          lane: (key) => pacer.lane(key, limits),
        });
        return { spec, target, lane: pacer.lane(target.rateLimitKey ?? spec.type, limits) };
      } catch (err) {
        return { spec, createError: toTargetError(err, spec.name, 'setup'), lane: pacer.lane(spec.type, limits) };
      }
    }),
  );
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

/** A write's receipt as the journal keeps it: only what the type's schema accepts, with its version. */
export function encodeReceipt(def: TargetDefinition<object, unknown>, receipt: unknown): { receipt: unknown; receiptVersion: number } {
  return { receipt: def.receipt.schema.parse(receipt ?? {}), receiptVersion: def.receipt.version };
}

/**
 * The journal's receipt for a target, as its type reads it today: the current version as is, an
 * older one upgraded, anything else refused (a newer keyrot wrote it, or no upgrade exists).
 */
export function decodeReceipt(def: TargetDefinition<object, unknown>, rec: TargetRecord, undo: NextStep): unknown {
  if (!rec.receipt) return undefined;
  const { version, data } = rec.receipt;
  const spec = def.receipt;
  const upgraded = version === spec.version ? data : spec.upgrade?.(data, version);
  const parsed = upgraded === undefined ? undefined : spec.schema.safeParse(upgraded);
  if (!parsed?.success) {
    throw new Refusal({ code: 'receipt-version', target: rec.info.name, found: version, supported: spec.version, next: undo }, undo.env);
  }
  return parsed.data;
}

import { z } from 'zod';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import type { Inventory, Environment } from '../../src/inventory/load.ts';
import { type EngineOptions } from '../../src/machine/run.ts';
import type { StateRef } from '../../src/state/store.ts';
import { engineOptions, inventoryOf, type TargetInput } from './engine-options.ts';
import type { PreflightResult, ReadResult, Target, TargetDefinition } from '../../src/targets/types.ts';

/**
 * An in-memory target that obeys the Target contract and injects faults on demand, for the
 * engine's property tests. The store is shared between instances (a "provider" that outlives a
 * crashed keyrot process).
 */
export type OpFault =
  | 'ok'
  | 'fail' // non-retryable error, nothing changed
  | 'fail-after-write' // the change happened, then the call failed (lost response)
  | 'rate-limit' // 429 with Retry-After
  | 'timeout' // retryable timeout
  | 'unavailable' // 503, retryable
  | 'corrupt' // (write) stores something that is neither key, reports success
  | 'hang' // never answers (a crash of the keyrot process at this point)
  | 'hang-after-write'; // (write) the value is stored, then no answer: a crash after the provider applied it

export interface FaultPlan {
  readBack: boolean;
  /** Consumed one per call; afterwards 'ok'. */
  write: OpFault[];
  verify: OpFault[];
  restore: OpFault[];
  /** When set, the target has the redeploy capability; its faults are consumed per redeploy call. */
  redeploy?: OpFault[];
  /** When set, preflight fails with this reason (credentials expired, API down...). */
  preflightError?: string;
  /** Consumed one per preflight call (transient answers before a real one). */
  preflight?: OpFault[];
  /** When set, the target cleans up after the revocation (`finalize`); its faults are consumed per call. */
  finalize?: OpFault[];
}

export class MemoryStore {
  readonly values = new Map<string, string | null>();
  /** Every value ever stored per target, for invariant checks. */
  readonly history = new Map<string, Array<string | null>>();
  readonly plans = new Map<string, FaultPlan>();
  /** Rotation ids inside a write right now (invariant 4). */
  readonly activeWrites = new Map<string, number>();
  maxConcurrentRotations = 0;
  /** Global count of operations, to crash at the Nth one. */
  ops = 0;
  crashAtOp = Infinity;
  /**
   * Bumped by `kill()`: targets created before it belong to a dead process, and their calls never
   * answer again (a SIGKILLed keyrot does nothing more, even where a simulated crash left it able to).
   */
  generation = 0;

  /** The "process" that created the current targets is gone: none of its calls reaches the store again. */
  kill(): void {
    this.generation++;
    this.crashAtOp = Infinity;
  }
  /** Completed redeploys per target. */
  readonly redeploys = new Map<string, number>();
  /** What each redeployable target's running consumers use: the value stored at their last redeploy. */
  readonly running = new Map<string, string | null>();
  /** Preflight calls per target. */
  readonly preflights = new Map<string, number>();
  /** Finalize calls running now, and the most that ever ran at once. */
  finalizing = 0;
  maxFinalizing = 0;
  /** Completed finalize calls per target. */
  readonly finalized = new Map<string, number>();

  set(name: string, v: string | null): void {
    this.values.set(name, v);
    const h = this.history.get(name) ?? [];
    h.push(v);
    this.history.set(name, h);
  }
}

const never = () => new Promise<never>(() => {});

function take(list: OpFault[]): OpFault {
  return list.length ? list.shift()! : 'ok';
}

export const MemoryConfig = z.object({ slot: z.string() });

export function memoryDefinition(store: MemoryStore): TargetDefinition<z.infer<typeof MemoryConfig>> {
  return {
    id: 'file', // never registered; the id only picks a concurrency bucket
    schema: MemoryConfig,
    capabilities: { readBack: 'per-value', versioned: false },
    receipt: { version: 1, schema: z.object({ wrote: z.boolean() }) },
    concurrency: 3,
    describe: (c) => `memory:${c.slot}`,
    async create(config, ctx): Promise<Target> {
      const name = ctx.name;
      const generation = store.generation;
      const plan = () => store.plans.get(name) ?? { readBack: true, write: [], verify: [], restore: [] };
      const step = async (list: 'write' | 'verify' | 'restore' | 'redeploy' | 'preflight' | 'finalize'): Promise<OpFault> => {
        if (generation !== store.generation) return never();
        store.ops++;
        if (store.ops >= store.crashAtOp) return never();
        await new Promise((r) => setImmediate(r));
        const f = take(plan()[list] ?? []);
        if (f === 'hang') return never();
        if (f === 'rate-limit') throw new TargetError('memory: 429 too many requests', { kind: 'rate-limited', retryAfterMs: 1000, status: 429 });
        if (f === 'timeout') throw new TargetError('memory: timed out', { kind: 'timeout' });
        if (f === 'unavailable') throw new TargetError('memory: 503 service unavailable', { kind: 'unavailable', status: 503 });
        if (f === 'fail') throw new TargetError('memory: refused', { kind: 'invalid', retryable: false });
        return f;
      };
      const read = async (): Promise<ReadResult> => {
        if (!plan().readBack) return { kind: 'unreadable', reason: 'write-only' };
        const v = store.values.get(name) ?? null;
        return v === null ? { kind: 'absent' } : { kind: 'value', value: new Secret(v) };
      };
      const target: Target = {
        id: 'file',
        name,
        location: `memory:${config.slot}`,
        async preflight(): Promise<PreflightResult> {
          store.preflights.set(name, (store.preflights.get(name) ?? 0) + 1);
          if (plan().preflight?.length) await step('preflight');
          const err = plan().preflightError;
          if (err) return { status: 'blocked', reason: err, current: { kind: 'unreadable', reason: err } };
          return { status: 'ready', current: await read() };
        },
        read,
        async write(value, op) {
          store.activeWrites.set(op.rotationId, (store.activeWrites.get(op.rotationId) ?? 0) + 1);
          store.maxConcurrentRotations = Math.max(store.maxConcurrentRotations, store.activeWrites.size);
          try {
            const f = await step('write');
            if (f === 'corrupt') {
              store.set(name, 'garbage-' + value.fingerprint);
              return { wrote: true };
            }
            if (store.values.get(name) !== value.reveal()) store.set(name, value.reveal());
            if (f === 'hang-after-write') return never();
            if (f === 'fail-after-write') throw new TargetError('memory: connection reset after write', { kind: 'unavailable', retryable: false });
            return { wrote: true };
          } finally {
            const n = (store.activeWrites.get(op.rotationId) ?? 1) - 1;
            if (n <= 0) store.activeWrites.delete(op.rotationId);
            else store.activeWrites.set(op.rotationId, n);
          }
        },
        async verify(value) {
          await step('verify');
          // Write-only targets prove the write by metadata: here, the store itself stands in for it.
          if (store.values.get(name) === value.reveal()) return { method: plan().readBack ? 'read-back' : 'metadata', detail: 'ok' };
          throw new TargetError('memory: read-back mismatch', { kind: 'mismatch', retryable: false });
        },
        async restore(previous) {
          const f = await step('restore');
          store.set(name, previous ? previous.reveal() : null);
          if (f === 'fail-after-write') throw new TargetError('memory: reset after restore', { kind: 'unavailable', retryable: false });
        },
      };
      if (plan().redeploy !== undefined) {
        target.redeploy = async () => {
          await step('redeploy');
          store.redeploys.set(name, (store.redeploys.get(name) ?? 0) + 1);
          store.running.set(name, store.values.get(name) ?? null);
          return { method: 'redeploy', detail: 'memory: consumers restarted' };
        };
      }
      if (plan().finalize !== undefined) {
        target.finalize = async () => {
          store.maxFinalizing = Math.max(store.maxFinalizing, ++store.finalizing);
          try {
            await step('finalize');
            store.finalized.set(name, (store.finalized.get(name) ?? 0) + 1);
          } finally {
            store.finalizing--;
          }
        };
      }
      return target;
    },
  };
}

/** The `n` memory targets t0..t{n-1} of one store, as inventory entries. */
export function memoryTargets(store: MemoryStore, n: number): TargetInput[] {
  const definition = memoryDefinition(store);
  return Array.from({ length: n }, (_, i) => ({ name: `t${i}`, definition, config: { slot: `t${i}` } }));
}

/** An inventory of `n` memory targets (names t0..t{n-1}) for one environment. */
export function memoryInventory(store: MemoryStore, n: number, opts: { verify?: boolean } = {}): { inventory: Inventory; env: Environment } {
  return inventoryOf(memoryTargets(store, n), opts);
}

/** Engine options over `n` memory targets: fake clock, silent output, non-interactive, --yes. */
export function memoryEngine(store: MemoryStore, n: number, stateDir: StateRef, extra: Partial<EngineOptions> = {}): EngineOptions {
  return engineOptions(memoryTargets(store, n), stateDir, extra);
}

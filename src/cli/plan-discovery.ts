import type { Secret } from '../core/secret.ts';
import type { Environment } from '../inventory/load.ts';
import type { LiveTarget } from '../machine/live-targets.ts';
import { keyrotCommand } from '../render/command.ts';
import type { PreflightResult } from '../targets/types.ts';
import { discover, type DiscoveryReport } from '../usecases/discover.ts';
import { observedKeys } from '../usecases/observe.ts';
import type { CommandContext } from './context.ts';

/** `plan`'s discovery pass is bounded: a provider still searching after this is reported as not searched. */
export const PLAN_DISCOVERY_MS = 10_000;

/** What `plan --json` reports as `discovered`: the places outside the inventory, and what was (not) searched. */
export type PlanDiscovery = Pick<DiscoveryReport, 'searched' | 'skipped'> & { outside: DiscoveryReport['found'] };

/**
 * Before a rotation: is the environment's key (the one most readable targets hold) anywhere else
 * the inventory's own providers reach? Only the types and credentials already in targets.yaml, no
 * working-tree search, within PLAN_DISCOVERY_MS. Undefined when no target could be read.
 */
export async function planDiscovery(ctx: CommandContext, env: Environment, live: LiveTarget[], preflight: Map<string, PreflightResult>): Promise<PlanDiscovery | undefined> {
  const key = observedKeys({ live, preflight }).old;
  if (!key) return undefined;
  const r = await quickDiscovery(ctx, env, key, []);
  return { outside: r.found.filter((f) => !f.inInventory), searched: r.searched, skipped: r.skipped };
}

/** The bounded search `plan` and the disuse gate use: the inventory's own providers (and `dirs`), PLAN_DISCOVERY_MS at most. */
export function quickDiscovery(ctx: CommandContext, env: Environment, key: Secret, dirs: string[]): Promise<DiscoveryReport> {
  return discover({ ...discoveryOf(ctx, env, key, dirs), inventoryTypesOnly: true, providerDeadlineMs: PLAN_DISCOVERY_MS, concurrency: 16 });
}

/** What every search of a command shares: the inventory, the environment, the process's variables, clock and logger. */
export function discoveryOf(ctx: CommandContext, env: Environment, key: Secret, dirs: string[]) {
  return { inventory: ctx.inventory, env, processEnv: ctx.processEnv, clock: ctx.clock, logger: ctx.logger, key, dirs };
}

/** The plan's warnings: one per place found outside the inventory. */
export function discoveryWarnings(ctx: CommandContext, env: Environment, d: PlanDiscovery | undefined): string[] {
  const run = keyrotCommand(ctx.flags, 'discover', '-e', env.name);
  return (d?.outside ?? []).map((f) => `rotating now would leave the key at ${f.location}, and revoking would break it; run \`${run}\``);
}

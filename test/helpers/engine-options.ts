import type { Environment, Inventory, TargetSpec } from '../../src/inventory/load.ts';
import { InventoryConfig } from '../../src/inventory/schema.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { silentReporter } from '../../src/machine/progress.ts';
import type { EngineOptions } from '../../src/machine/run.ts';
import type { StateRef } from '../../src/state/store.ts';
import type { TargetDefinition } from '../../src/targets/types.ts';

/** One target of an in-process inventory: a definition (registered or the in-memory one) and its config. */
export interface TargetInput {
  name: string;
  definition: TargetDefinition<any, any>;
  config: Record<string, unknown>;
}

/** An inventory with one environment, `test`, holding `targets` (in this order). */
export function inventoryOf(targets: TargetInput[], opts: { verify?: boolean; baseDir?: string } = {}): { inventory: Inventory; env: Environment } {
  const specs: TargetSpec[] = targets.map((t, i) => ({
    type: t.definition.id,
    name: t.name,
    definition: t.definition,
    config: t.config,
    position: { file: 'test.yaml', line: i + 1, column: 1 },
  }));
  const config = InventoryConfig.parse({
    version: 1,
    key: { kind: 'openai', source: 'stdin', verify: opts.verify ?? false },
    environments: { test: { targets: specs.map(() => ({ type: 'file' })) } },
  });
  const env: Environment = { name: 'test', targets: specs, key: config.key, keySource: 'stdin', schedule: undefined };
  return { inventory: { path: 'test.yaml', baseDir: opts.baseDir ?? '/nonexistent', config, environments: new Map([['test', env]]) }, env };
}

/** Engine options over `targets`: fake clock (retries and waits are instant), silent, non-interactive, --yes. */
export function engineOptions(targets: TargetInput[], stateDir: StateRef, extra: Partial<EngineOptions> = {}): EngineOptions {
  const { inventory, env } = inventoryOf(targets);
  return {
    inventory,
    env,
    processEnv: {},
    clock: fakeClock(),
    logger: silentLogger,
    state: stateDir,
    reporter: silentReporter,
    interactive: false,
    yes: true,
    retry: { attempts: 4 },
    random: () => 0.5,
    ...extra,
  };
}

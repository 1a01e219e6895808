import { dirname, resolve } from 'node:path';
import { createLogger, type Logger } from '../audit/logger.ts';
import { systemClock, type Clock } from '../engine/clock.ts';
import { EXIT, ExitError } from '../engine/errors.ts';
import type { EngineOptions, RevocationPrompt } from '../engine/rotation.ts';
import { loadInventory, selectEnvironment, type Environment, type Inventory } from '../inventory/load.ts';
import type { KeySourceContext } from '../keys/sources.ts';
import { openState } from '../state/open.ts';
import type { StateStore } from '../state/store.ts';
import { createOut, createReporter, paused, type LiveReporter, type Out } from './output.ts';

/** Flags every command takes (PRODUCT.md "Common flags"). */
export interface CommonFlags {
  config?: string;
  env?: string;
  stateDir?: string;
  json?: boolean;
  yes?: boolean;
}

export interface CommandContext {
  flags: CommonFlags;
  out: Out;
  inventory: Inventory;
  configPath: string;
  /** The local state directory (used when the inventory keeps `state: local`). */
  stateDir: string;
  state: StateStore;
  clock: Clock;
  logger: Logger;
  processEnv: NodeJS.ProcessEnv;
  interactive: boolean;
}

export function resolveConfigPath(flags: CommonFlags): string {
  return resolve(flags.config ?? 'targets.yaml');
}

/** `--state-dir`, else KEYROT_STATE_DIR, else `.keyrot/` beside the config. */
export function resolveStateDir(flags: CommonFlags, configPath: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flags.stateDir) return resolve(flags.stateDir);
  if (env.KEYROT_STATE_DIR) return resolve(env.KEYROT_STATE_DIR);
  return resolve(dirname(configPath), '.keyrot');
}

export function createOutFor(flags: CommonFlags): Out {
  return createOut(Boolean(flags.json));
}

export async function commandContext(flags: CommonFlags): Promise<CommandContext> {
  const out = createOut(Boolean(flags.json));
  const configPath = resolveConfigPath(flags);
  const inventory = await loadInventory(configPath);
  const stateDir = resolveStateDir(flags, configPath);
  return {
    flags,
    out,
    inventory,
    configPath,
    stateDir,
    state: await openState(inventory, stateDir),
    clock: systemClock,
    logger: createLogger({ level: process.env.KEYROT_LOG_LEVEL === 'debug' ? 'debug' : 'warn' }),
    processEnv: process.env,
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
  };
}

export function environment(ctx: CommandContext): Environment {
  return selectEnvironment(ctx.inventory, ctx.flags.env);
}

export async function promptHidden(message: string): Promise<string> {
  const { default: password } = await import('@inquirer/password');
  return password({ message, mask: false }, { output: process.stderr });
}

export async function confirmYesNo(message: string, def = false): Promise<boolean> {
  const { default: confirm } = await import('@inquirer/confirm');
  return confirm({ message, default: def }, { output: process.stderr });
}

export function keySourceContext(ctx: CommandContext, label?: string): KeySourceContext {
  return {
    baseDir: ctx.inventory.baseDir,
    env: ctx.processEnv,
    stdin: process.stdin,
    interactive: ctx.interactive,
    promptHidden,
    label,
  };
}

export async function confirmRevocation(p: RevocationPrompt): Promise<boolean> {
  process.stderr.write(
    `\nEvery target of "${p.env}" now holds the new key and was verified.\n` +
      `Revoke the OLD key now:\n  key          ${p.oldHint}\n  fingerprint  ${p.oldFingerprint}\n  where        ${p.where}\n\n`,
  );
  return confirmYesNo('Have you revoked the old key? (No = keep it; finish later with `keyrot revoke`)', false);
}

/** Engine options for a command, with the live display. Call `done()` when the engine returns. */
export async function engineOptions(ctx: CommandContext, env: Environment): Promise<EngineOptions & { done(): void; reporter: LiveReporter }> {
  const reporter = await createReporter(ctx.out);
  return {
    inventory: ctx.inventory,
    env,
    processEnv: ctx.processEnv,
    clock: ctx.clock,
    logger: ctx.logger,
    state: ctx.state,
    reporter,
    interactive: ctx.interactive,
    yes: Boolean(ctx.flags.yes),
    confirmRevocation: (p) => paused(reporter, () => confirmRevocation(p)),
    done: () => reporter.done(),
  };
}

export function usage(message: string): never {
  throw new ExitError(EXIT.usage, message);
}

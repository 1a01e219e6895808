import { dirname, resolve } from 'node:path';
import { createLogger, type Logger } from '../runtime/logger.ts';
import { systemClock, type Clock } from '../runtime/clock.ts';
import { EXIT, ExitError, type TargetError } from '../core/errors.ts';
import type { EngineOptions, RevocationPrompt } from '../machine/run.ts';
import { Refusal, type RotationReport } from '../machine/outcome.ts';
import type { CommandFlags } from '../render/command.ts';
import { renderRefusal } from '../render/refusals.ts';
import { where } from '../render/notices.ts';
import { loadInventory, selectEnvironment, type Environment, type Inventory } from '../inventory/load.ts';
import { environmentEndpointProblems } from '../inventory/endpoints.ts';
import { credentialVariables } from '../inventory/credentials.ts';
import { keyrotEnv, withholdFromChildren } from '../core/withheld-env.ts';
import { printable } from '../core/printable.ts';
import type { KeySourceContext } from '../keys/sources.ts';
import { openState } from '../state/open.ts';
import { useFingerprintsOf } from '../state/trust.ts';
import type { StateStore } from '../state/store.ts';
import { locateConfig, configNote } from './config-path.ts';
import { withUserFlags } from '../render/command.ts';
import { createOut, logLevelAlias, printRotationReport, type Out } from './output.ts';
import { createReporter, paused, type LiveReporter } from './live-reporter.ts';
import { currentInterruption, watchInterrupts, type Interruption } from './interrupt.ts';
import { holdKeystrokes, releaseKeystrokes } from './keystrokes.ts';
import { keyrotCommand as nextCommand } from '../render/command.ts';
import { confirmYesNo, promptHidden } from './prompt.ts';
import { journalMark, whereThingsStand } from './where-things-stand.ts';

/** The shared flags (cli/help.ts); each command takes the ones it uses. */
export interface CommonFlags {
  config?: string;
  env?: string;
  stateDir?: string;
  json?: boolean;
  yes?: boolean;
  /** rotate, emergency, resume: where the new (old) key comes from. */
  newKey?: string;
  oldKey?: string;
  wide?: boolean;
  quiet?: boolean;
  verbose?: boolean;
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
  /** Told of every failed OpenAI Admin API call (the daemon counts them in keyrot_provider_errors_total). */
  onAdminApiError?: (err: TargetError) => void;
}

let noted = false;

/** The inventory: -c, KEYROT_CONFIG, or targets.yaml found here or above (cli/config-path.ts). */
export function resolveConfigPath(flags: CommonFlags): string {
  const loc = locateConfig(flags.config);
  const note = configNote(loc);
  // Said once, on stderr: the inventory a command acts on is never a surprise.
  if (note && !noted && !flags.quiet && logLevelAlias() !== 'quiet') process.stderr.write(`${note}\n`);
  noted = true;
  return loc.path;
}

/** `--state-dir`, else KEYROT_STATE_DIR, else `.keyrot/` beside the config. */
export function resolveStateDir(flags: CommonFlags, configPath: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flags.stateDir) return resolve(flags.stateDir);
  if (env.KEYROT_STATE_DIR) return resolve(env.KEYROT_STATE_DIR);
  return resolve(dirname(configPath), '.keyrot');
}

export function createOutFor(flags: CommonFlags): Out {
  return createOut({ json: flags.json, quiet: flags.quiet, verbose: flags.verbose, wide: flags.wide });
}

export async function commandContext(flags: CommonFlags): Promise<CommandContext> {
  const out = createOutFor(flags);
  const configPath = resolveConfigPath(flags);
  const inventory = await loadInventory(configPath);
  // Before anything can start a child (a kubeconfig exec plugin, credential_process...): no key or
  // credential keyrot reads stays in process.env for it to inherit.
  withholdFromChildren(credentialVariables(inventory, [flags.newKey, flags.oldKey]));
  const processEnv = keyrotEnv();
  // Endpoints left to the environment follow targets.yaml's rule (https unless loopback), before anything is contacted.
  const endpointProblems = environmentEndpointProblems(inventory, processEnv);
  if (endpointProblems.length) throw new ExitError(EXIT.usage, endpointProblems.join('\n'));
  const stateDir = resolveStateDir(flags, configPath);
  const state = await openState(inventory, stateDir, processEnv);
  // kind: generic keys are fingerprinted under the state key (from here on, in this process).
  await useFingerprintsOf(inventory.config.key.kind, state.trust, true);
  return {
    flags,
    out,
    inventory,
    configPath,
    stateDir,
    state,
    clock: systemClock,
    logger: createLogger({ level: out.verbose ? 'debug' : 'warn', write: (line) => process.stderr.write(`${withUserFlags(line)}\n`) }),
    processEnv,
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
  };
}

export function environment(ctx: CommandContext): Environment {
  return selectEnvironment(ctx.inventory, ctx.flags.env);
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

export async function confirmRevocation(p: RevocationPrompt, flags: CommonFlags): Promise<boolean> {
  process.stderr.write(
    printable(`\nEvery target of "${p.env}" now holds the new key and was verified.\n` +
      `Revoke the OLD key now:\n  key          ${p.oldHint}\n  fingerprint  ${p.oldFingerprint}\n  where        ${where(p.revokeAt)}\n` +
      (p.also?.length ? `Revoke these retired keys too:\n${p.also.map((a) => `  ${a.hint}  ${a.fingerprint}  (${a.why})`).join('\n')}\n` : '') +
      '\n'),
  );
  return confirmYesNo(`Have you revoked the old key? (No = keep it; finish later with \`${nextCommand(flags, 'revoke', '-e', p.env)}\`)`, false);
}

/** Engine options for a command, with the live display. Call `done()` when the engine returns. */
export async function engineOptions(ctx: CommandContext, env: Environment): Promise<EngineOptions & { done(): void; reporter: LiveReporter }> {
  const reporter = ctx.out.quiet ? quietReporter(ctx.out) : await createReporter(ctx.out, new Map(env.targets.map((t) => [t.name, t.type])));
  const stop = currentInterruption();
  if (stop) stop.say = (line) => reporter.info(line);
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
    signal: stop?.signal,
    confirmRevocation: (p) => paused(reporter, () => confirmRevocation(p, ctx.flags)),
    admin: adminIssuer(ctx, env),
    // The disuse gate asks where the old key is still held: the inventory's providers and its directory's files.
    findKey: async (key) => {
      const { quickDiscovery } = await import('./plan-discovery.ts');
      return (await quickDiscovery(ctx, env, key, [ctx.inventory.baseDir])).found.map((f) => f.location);
    },
    done: () => reporter.done(),
  };
}

/** --quiet: no progress at all; warnings still said. */
function quietReporter(out: Out): LiveReporter {
  const nothing = () => {};
  return { step: nothing, target: nothing, info: nothing, warn: (m) => out.err(`warning: ${m}`), pause: nothing, resume: nothing, done: nothing };
}

export function usage(message: string): never {
  throw new ExitError(EXIT.usage, message);
}

/** The -c / --state-dir the user typed, repeated in every command keyrot prints. */
export function commandFlags(ctx: CommandContext): CommandFlags {
  return { config: ctx.flags.config, stateDir: ctx.flags.stateDir };
}

/** An engine refusal in words, as the error the command ends with. */
export function refusalError(ctx: CommandContext, env: Environment, err: unknown): unknown {
  return err instanceof Refusal ? new ExitError(err.exitCode, renderRefusal(err.reason, err.env, commandFlags(ctx))) : err;
}

/** Sends the notification a finished rotation calls for (notify.webhook); never fails the command. */
export async function notifyReport(
  ctx: CommandContext,
  report: RotationReport,
  mode: 'rotate' | 'emergency' | 'revoke',
  logger: Logger = ctx.logger,
): Promise<void> {
  const webhook = ctx.inventory.config.notify?.webhook;
  if (!webhook) return;
  const { eventFor, notificationFor, sendNotification } = await import('../scheduler/notify.ts');
  const event = eventFor(report, mode);
  if (!event) return;
  const { auditHead } = await import('../state/audit-log.ts');
  const head = await auditHead(ctx.state).catch(() => null);
  await sendNotification(webhook, notificationFor(event, report, ctx.clock.now(), head, commandFlags(ctx)), {
    baseDir: ctx.inventory.baseDir,
    env: ctx.processEnv,
    clock: ctx.clock,
    logger,
  });
}

/** The OpenAI Admin API client of `key.admin`, created on first use (its token is resolved then). */
export function adminIssuer(ctx: CommandContext, env: Environment): (() => Promise<import('../keys/openai-admin.ts').KeyIssuer>) | undefined {
  const admin = ctx.inventory.config.key.admin;
  if (!admin) return undefined;
  let issuer: Promise<import('../keys/openai-admin.ts').KeyIssuer> | undefined;
  return () =>
    (issuer ??= (async () => {
      const [{ createOpenAIIssuer }, { resolveCredential }, { adminEndpoint }] = await Promise.all([
        import('../keys/openai-admin.ts'),
        import('../inventory/credentials.ts'),
        import('../keys/kinds.ts'),
      ]);
      const adminKey = await resolveCredential(admin.token, ctx.inventory.baseDir, ctx.processEnv);
      return createOpenAIIssuer({
        endpoint: adminEndpoint(admin.endpoint),
        adminKey,
        project: admin.project,
        clock: ctx.clock,
        ...(ctx.onAdminApiError ? { onError: ctx.onAdminApiError } : {}),
        // A revocation the Admin API did not confirm (state tampered with?) is an audit event.
        onRefusal: async (r) => {
          const { appendAudit } = await import('../state/audit-log.ts');
          await appendAudit(ctx.state, { event: 'revocation.refused', env: r.env ?? env.name, details: { ...r } });
        },
      });
    })());
}

/**
 * The new key from `source`: prompt/stdin/env:/file: through keys/sources.ts, or `openai-admin`
 * minted through the Admin API (a service account named after the environment and rotation).
 */
export async function obtainNewKey(
  ctx: CommandContext,
  env: Environment,
  source: string,
  at: { rotationId: string; env: string },
  interactive = ctx.interactive,
): Promise<import('../usecases/rotate.ts').ObtainedKey> {
  if (source === 'openai-admin') {
    const issuer = adminIssuer(ctx, env);
    if (!issuer) throw new ExitError(EXIT.usage, 'key source openai-admin needs key.admin (project and token) in the inventory');
    const expires = ctx.inventory.config.key.admin?.expires;
    return (await issuer()).issue({ env: at.env, rotationId: at.rotationId, expiresSeconds: expires ? Math.round(expires / 1000) : undefined });
  }
  const { obtainKey } = await import('../keys/sources.ts');
  return obtainKey(source, { ...keySourceContext(ctx), interactive });
}

/**
 * The inventory's key source for an unattended resume: `env:` and `file:` can be read again
 * (the scheduler's own runs use nothing else); a prompt or a mint cannot give the same key twice.
 */
export function unattendedNewKey(ctx: CommandContext, env: Environment): { source: string; obtain: () => Promise<import('../core/secret.ts').Secret> } | undefined {
  const source = env.keySource;
  if (!/^(env|file):/.test(source)) return undefined;
  return { source, obtain: async () => (await import('../keys/sources.ts')).obtainKey(source, { ...keySourceContext(ctx), interactive: false }) };
}

/**
 * A command that changes things starts here, right after its arguments are parsed: Ctrl-C and
 * SIGTERM stop it cleanly from now on, and when it will ask for a key on a terminal, keystrokes are
 * held off the screen at once (cli/keystrokes.ts). `keySources`: the command's key flags as
 * given, undefined where the inventory's key.source will decide (then call `keySourceResolved`).
 */
export function startChangingCommand(keySources: Array<string | undefined>): void {
  const stop = watchInterrupts();
  if (keySources.some((s) => s === undefined || s === 'prompt')) holdKeystrokes(() => stop.request('SIGINT'));
}

/**
 * A command that only reads (plan, discover, verify, status...) starts here: Ctrl-C ends it at once
 * with one line saying nothing was changed, exit 130 (cli/interrupt.ts).
 */
export function startReadingCommand(command: string, flags: CommonFlags): Interruption {
  const stop = watchInterrupts().onlyReads(command);
  stop.json = Boolean(flags.json);
  return stop;
}

/** The key source is known: no key prompt is coming, so the terminal is left alone again. */
export function keySourceResolved(sources: Array<string | undefined>): void {
  if (!sources.includes('prompt')) releaseKeystrokes();
}

/** rotate, resume, revoke: run the engine with the live display, then print the report and notify. */
export async function runEngineCommand(
  ctx: CommandContext,
  env: Environment,
  mode: 'rotate' | 'revoke',
  run: (o: EngineOptions & { reporter: LiveReporter }) => Promise<RotationReport>,
): Promise<number> {
  const stop = watchInterrupts();
  const mark = await journalMark(ctx, env.name);
  stop.whereThingsStand = () => whereThingsStand(ctx, env.name, mark, { command: mode });
  if (stop.requested) throw await stop.exitError();
  const o = await engineOptions(ctx, env);
  let report: RotationReport;
  try {
    report = await run(o);
  } catch (err) {
    throw stop.requested ? await stop.exitError() : refusalError(ctx, env, err);
  } finally {
    o.done();
  }
  if (!stop.requested) printRotationReport(ctx.out, report, commandFlags(ctx));
  await notifyReport(ctx, report, mode);
  if (stop.requested) throw await stop.exitError();
  return report.exitCode;
}

import { lstat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EXIT, ExitError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import type { Environment } from '../../inventory/load.ts';
import { obtainKey } from '../../keys/sources.ts';
import { closeAll, createTargets } from '../../machine/live-targets.ts';
import { preflightAll } from '../../machine/preflight.ts';
import { keyrotCommand } from '../../render/command.ts';
import { plural } from '../../render/plural.ts';
import { discover, type DiscoveryReport } from '../../usecases/discover.ts';
import { observedKeys } from '../../usecases/observe.ts';
import { commandContext, environment, keySourceContext, startReadingCommand, usage, type CommandContext, type CommonFlags } from '../context.ts';
import { createReporter, type LiveReporter } from '../live-reporter.ts';
import { bold, dim, green, red, yellow, type Out } from '../output.ts';
import type { Column } from '../table.ts';
import { entriesToAdd, entryBlock } from '../discover-entries.ts';
import { discoveryOf } from '../plan-discovery.ts';

export type DiscoverFlags = CommonFlags & { key?: string; path?: string[] | string; onlyInventory?: boolean };

/** How long one provider may search before it is reported as not searched. */
export const PROVIDER_DEADLINE_MS = 120_000;

const FOUND_COLUMNS: Column[] = [
  { header: 'LOCATION', min: 20 },
  { header: 'TYPE', min: 6, optional: true },
  { header: 'IN INVENTORY', fit: 'fixed' },
];

/**
 * `keyrot discover`: where does the environment's key live? Exit 1 when it was found somewhere
 * the inventory lacks, 0 otherwise, 2 on a usage error. Never prints a key value.
 */
export async function discoverCommand(flags: DiscoverFlags): Promise<number> {
  const stop = startReadingCommand('discover', flags);
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const dirs = await directories(flags);
  const key = await keyToFind(ctx, env, flags.key);
  const reporter = ctx.out.tty && !ctx.out.json && !ctx.out.quiet ? await createReporter(ctx.out) : undefined;
  if (reporter) stop.clearDisplay = () => reporter.done('clear');
  reporter?.step('discover', `where does ${key.hint} live?`);
  let report: DiscoveryReport;
  try {
    report = await discover({
      ...discoveryOf(ctx, env, key, dirs),
      providerDeadlineMs: PROVIDER_DEADLINE_MS,
      inventoryTypesOnly: Boolean(flags.onlyInventory),
      progress: progressOn(reporter),
      // A throttling provider makes the search wait: say so, as a rotation does.
      notice: (m) => (reporter ? reporter.info(m) : ctx.out.info(m)),
    });
  } finally {
    reporter?.done();
  }
  if (ctx.out.json) ctx.out.result(report);
  else printReport(ctx.out, report, env, ctx);
  return report.found.some((f) => !f.inInventory) ? EXIT.failed : EXIT.ok;
}

function progressOn(reporter: LiveReporter | undefined) {
  if (!reporter) return undefined;
  return (provider: string, phase: 'searching' | 'searched' | 'skipped', detail?: string) => reporter.target(provider, phase, detail);
}

/** The working tree and every `--path` (each must exist: exit 2 otherwise). */
async function directories(flags: DiscoverFlags): Promise<string[]> {
  const given = flags.path === undefined ? [] : Array.isArray(flags.path) ? flags.path : [flags.path];
  const dirs = [process.cwd()];
  for (const p of given) {
    const abs = resolve(p);
    if (!(await lstat(abs).catch(() => null))) usage(`--path ${p}: no such file or directory`);
    if (!dirs.includes(abs)) dirs.push(abs);
  }
  return dirs;
}

/** `--key SOURCE`, else the key the environment's readable targets hold (most of them), as `rotate` reads it. */
/** `--key` names where the key to look for is: never the key itself (`ps` shows the command line). */
export function checkKeySource(source: string): void {
  if (!/^(stdin|env:.+|file:.+)$/.test(source)) usage('--key: expected stdin, env:VAR or file:PATH (a key itself is never taken from the command line, where `ps` shows it)');
}

async function keyToFind(ctx: CommandContext, env: Environment, source: string | undefined): Promise<Secret> {
  if (source !== undefined) {
    checkKeySource(source);
    return obtainKey(source, keySourceContext(ctx, 'key to search for'));
  }
  const live = await createTargets({ inventory: ctx.inventory, env, processEnv: ctx.processEnv, clock: ctx.clock, logger: ctx.logger });
  try {
    const preflight = await preflightAll(live, { clock: ctx.clock });
    const old = observedKeys({ live, preflight }).old;
    if (old) return old;
  } finally {
    await closeAll(live);
  }
  throw new ExitError(EXIT.usage, `no target of "${env.name}" could be read to learn its key: pass the key with --key stdin, env:VAR or file:PATH (\`${keyrotCommand(ctx.flags, 'plan', '-e', env.name)}\` says why each target is unreadable)`);
}

/** The places the inventory lacks lead the table: they are what the reader must act on. */
function outsideFirst(found: DiscoveryReport['found']): DiscoveryReport['found'] {
  return [...found.filter((f) => !f.inInventory), ...found.filter((f) => f.inInventory)];
}

function printReport(out: Out, r: DiscoveryReport, env: Environment, ctx: CommandContext): void {
  const c = out.color;
  const outside = r.found.filter((f) => !f.inInventory);
  const lines = [
    bold(`Key ${r.key.hint} (${r.key.fingerprint}) of "${env.name}": found in ${plural(r.found.length, 'place')}${outside.length ? `, ${outside.length} not in the inventory` : ''}.`, c),
  ];
  if (r.found.length) {
    lines.push('', out.table(FOUND_COLUMNS, outsideFirst(r.found).map((f) => [f.inInventory ? f.location : yellow(f.location, c), f.type, f.inInventory ? 'yes' : red('no', c)])));
  }
  const add = entriesToAdd(r.found);
  if (add.length) {
    lines.push('', `Add to targets.yaml, under environments.${env.name}.targets (review each first):`, '');
    for (const f of add) lines.push(...entryBlock(f).split('\n').map((l) => `  ${l}`));
  }
  for (const f of outside.filter((f) => f.target === null)) {
    lines.push(yellow(`${f.location}: no target type rewrites the key where it is (inside a config file or a JSON secret's field); move it somewhere keyrot rotates (a .env, a key file, a secret of its own), or remove it`, c));
  }
  if (r.otherKeys.length) {
    lines.push('', 'Other OpenAI keys found (not this one; one key per environment keeps a leak contained):');
    for (const k of r.otherKeys) lines.push(`  ${k.location}  ${k.hint}  ${dim(k.fingerprint, c)}`);
  }
  lines.push('');
  for (const s of r.searched) lines.push(dim(`searched ${s.provider}: ${s.scope}`, c));
  for (const s of r.skipped) lines.push(yellow(`skipped ${s.provider}: ${s.reason}`, c));
  lines.push('');
  if (outside.length) {
    const them = outside.length === 1 ? 'it' : 'them';
    lines.push(red(`Rotating now would leave the key at ${plural(outside.length, 'place')} outside the inventory, and revoking the key would break ${them}: add ${them} to targets.yaml, then \`${keyrotCommand(ctx.flags, 'plan', '-e', env.name)}\`.`, c));
  } else if (r.found.length === 0) {
    lines.push(yellow(`The key was found nowhere keyrot searched${r.skipped.length ? ' (see what was skipped above, and why)' : ''}: check that it is the key you meant (--key).`, c));
  } else {
    lines.push(green(`Every place found is in the inventory of "${env.name}".`, c));
  }
  out.human(lines.join('\n'));
}

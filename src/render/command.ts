import type { NextStep } from '../machine/outcome.ts';

/** The flags the user gave that every printed command must repeat, so it works when copied. */
export interface CommandFlags {
  config?: string;
  stateDir?: string;
}

/** The `-c` default (cli/main.ts): naming it again changes nothing. */
const DEFAULT_CONFIG = 'targets.yaml';

/** A shell word as is when it is plain, else in single quotes (paths with spaces, quotes...). */
function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/**
 * A `keyrot ...` command to print as a next step, with the `-c/--config` and `--state-dir` the
 * user gave (as typed: the next command runs from the same directory), so that copying it acts on
 * the same inventory and state. `SOURCE` stays a placeholder.
 */
export function keyrotCommand(flags: CommandFlags, ...args: string[]): string {
  const words = ['keyrot', ...args.map((a) => (a === 'SOURCE' ? a : shellWord(a)))];
  if (flags.config && flags.config !== DEFAULT_CONFIG) words.push('-c', shellWord(flags.config));
  if (flags.stateDir) words.push('--state-dir', shellWord(flags.stateDir));
  return words.join(' ');
}

/** `keyrot resume -e prod --rollback -c deploy/targets.yaml --state-dir /var/lib/keyrot` */
export function commandLine(step: NextStep, flags: CommandFlags = {}): string {
  return keyrotCommand(flags, step.command, '-e', step.env, ...(step.flags ?? []));
}

/** `` `keyrot resume -e prod` `` — a command inside a sentence. */
export function cmd(step: NextStep, flags: CommandFlags = {}): string {
  return `\`${commandLine(step, flags)}\``;
}

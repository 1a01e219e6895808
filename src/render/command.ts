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

/** The words to append so a command names the user's inventory and state. */
function flagWords(flags: CommandFlags, present: { config: boolean; stateDir: boolean } = { config: false, stateDir: false }): string[] {
  const words: string[] = [];
  if (!present.config && flags.config && flags.config !== DEFAULT_CONFIG) words.push('-c', shellWord(flags.config));
  if (!present.stateDir && flags.stateDir) words.push('--state-dir', shellWord(flags.stateDir));
  return words;
}

/**
 * A `keyrot ...` command to print as a next step, with the `-c/--config` and `--state-dir` the
 * user gave (as typed: the next command runs from the same directory), so that copying it acts on
 * the same inventory and state. `SOURCE` stays a placeholder.
 */
export function keyrotCommand(flags: CommandFlags, ...args: string[]): string {
  return ['keyrot', ...args.map((a) => (a === 'SOURCE' ? a : shellWord(a))), ...flagWords(flags)].join(' ');
}

/** `keyrot resume -e prod --rollback -c deploy/targets.yaml --state-dir /var/lib/keyrot` */
export function commandLine(step: NextStep, flags: CommandFlags = {}): string {
  return keyrotCommand(flags, step.command, '-e', step.env, ...(step.flags ?? []));
}

/** `` `keyrot resume -e prod` `` — a command inside a sentence. */
export function cmd(step: NextStep, flags: CommandFlags = {}): string {
  return `\`${commandLine(step, flags)}\``;
}

/** The flags of the command running in this process (cli/main.ts sets them once parsed). */
let invocation: CommandFlags = {};

export function setInvocationFlags(flags: CommandFlags): void {
  invocation = { config: flags.config, stateDir: flags.stateDir };
}

export function invocationFlags(): CommandFlags {
  return invocation;
}

/**
 * Every `` `keyrot …` `` quoted in `text`, completed with the `-c` / `--state-dir` it lacks. Messages
 * written where the user's flags are not known (a target adapter, the state store) quote the bare
 * command; the CLI passes everything it prints through this, so each command printed is the one to
 * copy. Commands built with keyrotCommand() already carry the flags and are left as they are.
 */
export function withUserFlags(text: string, flags: CommandFlags = invocation): string {
  if (!flags.stateDir && (!flags.config || flags.config === DEFAULT_CONFIG)) return text;
  return text.replace(/`keyrot ([a-z][^`\n]*)`/g, (whole, rest: string) => {
    const present = { config: /(^|\s)(-c|--config)(\s|=)/.test(rest), stateDir: /(^|\s)--state-dir(\s|=)/.test(rest) };
    const extra = flagWords(flags, present);
    return extra.length ? `\`keyrot ${rest} ${extra.join(' ')}\`` : whole;
  });
}

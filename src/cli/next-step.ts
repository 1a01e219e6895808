import type { CommonFlags } from './context.ts';

/** The `-c` default (cli/main.ts): naming it again changes nothing. */
const DEFAULT_CONFIG = 'targets.yaml';

/**
 * A `keyrot ...` command to print as the next step, with the `-c/--config` and `--state-dir` the
 * user gave (as they typed them: the next command runs from the same directory), so that copying
 * it acts on the same inventory and state.
 */
export function nextCommand(flags: CommonFlags, ...args: string[]): string {
  const words = ['keyrot', ...args];
  if (flags.config && flags.config !== DEFAULT_CONFIG) words.push('-c', shellWord(flags.config));
  if (flags.stateDir) words.push('--state-dir', shellWord(flags.stateDir));
  return words.join(' ');
}

/** A path as one shell word: as is when it is plain, else in single quotes. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

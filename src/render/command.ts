import type { NextStep } from '../machine/outcome.ts';

/** The flags the user gave that every printed command must repeat, so it works when copied. */
export interface CommandFlags {
  config?: string;
  stateDir?: string;
}

/** Quotes a shell word when it needs it (paths with spaces, quotes...). */
function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** `keyrot resume -e prod --rollback -c deploy/targets.yaml --state-dir /var/lib/keyrot` */
export function commandLine(step: NextStep, flags: CommandFlags = {}): string {
  const words = ['keyrot', step.command, '-e', step.env, ...(step.flags ?? [])];
  if (flags.config) words.push('-c', flags.config);
  if (flags.stateDir) words.push('--state-dir', flags.stateDir);
  return words.map((w) => (w === 'SOURCE' ? w : shellWord(w))).join(' ');
}

/** `` `keyrot resume -e prod` `` — a command inside a sentence. */
export function cmd(step: NextStep, flags: CommandFlags = {}): string {
  return `\`${commandLine(step, flags)}\``;
}

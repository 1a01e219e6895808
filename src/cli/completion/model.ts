import type { CommandSpec } from '../main.ts';
import { optionsOf } from '../main.ts';
import type { OptionSpec } from '../help.ts';

/**
 * What the shells complete, read from the command table (cli/main.ts): a completion script cannot
 * offer a command or flag keyrot does not have, or miss one it has.
 */
export interface FlagModel {
  short?: string;
  long: string;
  description: string;
  /** undefined: a switch; else what its value completes with ([] = nothing to offer). */
  value?: string[] | 'file' | 'dir';
}

export interface CommandModel {
  name: string;
  summary: string;
  flags: FlagModel[];
  /** What the positional arguments complete with. */
  args?: string[] | 'file';
}

export function flagModel(o: OptionSpec): FlagModel {
  const short = /(?:^|[ ,])-([A-Za-z])\b/.exec(o.flags)?.[1];
  const long = /--([a-z][a-z-]*)/.exec(o.flags)![1]!;
  const takesValue = /[<[]/.test(o.flags);
  return { short, long, description: o.description, value: takesValue ? (o.complete ?? []) : undefined };
}

const HELP: FlagModel = { short: 'h', long: 'help', description: 'display help for command' };

export function completionModel(commands: CommandSpec[], values: { targetTypes: string[] }): CommandModel[] {
  return commands.map((spec) => ({
    name: spec.name,
    summary: spec.summary,
    args: spec.completeArgs,
    flags: [
      ...optionsOf(spec).map((o) => {
        const f = flagModel(o);
        // init --type takes target type ids: the registry's, not a list written here.
        return spec.name === 'init' && f.long === 'type' ? { ...f, value: values.targetTypes } : f;
      }),
      HELP,
    ],
  }));
}

/** A description on one line, short enough for a completion menu. */
export function shortDescription(text: string, max = 70): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, max - 1).trimEnd()}…`;
}

import { Command, Option } from 'commander';

/**
 * The shape every command's help and every usage error share: the flags a command takes (only the
 * ones it uses), an Examples section, and errors as one `keyrot: …` line with a "did you mean".
 */

/** The flags several commands share; each command lists the ones it uses. */
export type SharedFlag = 'config' | 'env' | 'stateDir' | 'json' | 'yes' | 'wide';

export interface OptionSpec {
  flags: string;
  description: string;
  default?: unknown;
  /** The option may be given several times; its values are collected in a list. */
  repeat?: boolean;
  /** What the shell may complete its value with: fixed words, files or directories. */
  complete?: string[] | 'file' | 'dir';
}

export const SHARED: Record<SharedFlag | 'quiet' | 'verbose', OptionSpec> = {
  config: {
    flags: '-c, --config <path>',
    description: 'inventory file (default: targets.yaml here or in a parent directory up to the repository root; env KEYROT_CONFIG)',
    complete: 'file',
  },
  env: { flags: '-e, --env <name>', description: 'environment (optional when the inventory has one)' },
  stateDir: { flags: '--state-dir <dir>', description: 'state directory (default: .keyrot/ beside the inventory; env KEYROT_STATE_DIR)', complete: 'dir' },
  json: { flags: '--json', description: 'machine-readable result on stdout (progress and messages stay on stderr)' },
  yes: { flags: '--yes', description: 'non-interactive: answer yes to confirmations (never invents a key or a revocation)' },
  wide: { flags: '--wide', description: 'print tables in full, whatever the terminal width' },
  quiet: { flags: '-q, --quiet', description: 'no progress or notes on stderr: results, warnings and errors only' },
  verbose: { flags: '-v, --verbose', description: "more detail: providers' debug lines, Node's and libraries' warnings, stack traces of unexpected errors (env KEYROT_LOG_LEVEL=debug)" },
};

/** Adds an option from its spec (a repeatable one collects its values). */
export function addOption(cmd: Command, o: OptionSpec): void {
  const opt = new Option(o.flags, o.description).default(o.default);
  if (o.repeat) opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
  cmd.addOption(opt);
}

/** The Examples section: each command line, its comment aligned after it. */
export function examplesText(examples: Array<[string, string?]>): string {
  if (!examples.length) return '';
  const width = Math.max(...examples.map(([c]) => c.length));
  return `\nExamples:\n${examples.map(([c, why]) => `  ${why ? `${c.padEnd(width)}   # ${why}` : c}`).join('\n')}\n`;
}

/**
 * commander's usage errors in keyrot's style: `error: unknown option '--confg'` and its
 * `(Did you mean --config?)` line become one line, `keyrot: unknown option '--confg' (did you
 * mean --config?)`.
 */
export function styleUsageError(text: string): string {
  const lines = text.trimEnd().split('\n');
  const first = lines[0]!.replace(/^error: /, 'keyrot: ');
  const mean = lines.slice(1).map((l) => /^\(Did you mean (.+)\?\)$/.exec(l.trim())?.[1]).find(Boolean);
  const rest = lines.slice(1).filter((l) => !/^\(Did you mean /.test(l.trim()));
  return [`${first}${mean ? ` (did you mean ${mean}?)` : ''}`, ...rest].join('\n') + '\n';
}

import { Command, CommanderError } from 'commander';
import { printable } from '../core/printable.ts';
import { ConfigError, ConfigErrors, EXIT, ExitError, LockedError, PromptCancelled, TargetError } from '../core/errors.ts';
import type { CommonFlags } from './context.ts';
import { endInterrupts } from './interrupt.ts';
import { releaseKeystrokes } from './keystrokes.ts';
import { ignoreClosedPipes, outputWasLost } from './closed-pipe.ts';
import { errorJson } from './error-json.ts';
import { addOption, examplesText, SHARED, styleUsageError, type OptionSpec, type SharedFlag } from './help.ts';
import { setInvocationFlags, withUserFlags } from '../render/command.ts';

/** --verbose (or KEYROT_LOG_LEVEL=debug): unexpected errors come with their stack. */
let verbose = /^debug$/i.test(process.env.KEYROT_LOG_LEVEL ?? '');

/**
 * The CLI: commands declared as data, each loaded only when it runs (so `--help` and `plan`
 * start fast and no provider SDK is imported unless an inventory uses it). The same table makes
 * the help, the flags each command takes, and the shell completion scripts (`keyrot completion`).
 */
export interface CommandSpec {
  name: string;
  args?: string;
  /** Values the shell may complete the arguments with. */
  completeArgs?: string[] | 'file';
  summary: string;
  description?: string;
  /** The shared flags this command uses (-q/--quiet and -v/--verbose: every command). */
  shared: SharedFlag[];
  options?: OptionSpec[];
  examples: Array<[string, string?]>;
  /** Loads and runs the command; returns the exit code. */
  run: (flags: CommonFlags & Record<string, unknown>, args: string[]) => Promise<number>;
}

const KEY_SOURCES = ['prompt', 'stdin', 'env:', 'file:', 'openai-admin'];
const NEW_KEY: OptionSpec = {
  flags: '--new-key <source>',
  description: 'where the new key comes from: prompt, stdin, env:VAR, file:PATH or openai-admin (overrides key.source)',
  complete: KEY_SOURCES,
};
const INVENTORY: SharedFlag[] = ['config', 'env', 'stateDir', 'json'];

export const COMMANDS: CommandSpec[] = [
  {
    name: 'init',
    summary: 'write a commented targets.yaml for the target types you use',
    description:
      'Writes a commented inventory (targets.yaml, or the file -c names) with one example entry per target type chosen (--type, or a checklist on a terminal) or, with --discover, one entry per place the key (--key, or the only OpenAI-format key in the working tree) was found, each commented with where, and .keyrot/.gitignore so keyrot\'s state is never committed. Refuses to overwrite an existing file unless --force.',
    shared: [],
    options: [
      { flags: '-c, --config <path>', description: 'where to write the inventory (default: ./targets.yaml)', complete: 'file' },
      { flags: '-e, --env <name>', description: "the environment's name", default: 'production' },
      { flags: '--type <types>', description: 'comma-separated target types (e.g. dotenv,heroku); on a terminal without it, a checklist', complete: [] },
      { flags: '--force', description: 'overwrite an existing inventory' },
      { flags: '--discover', description: 'find where the key lives (as `keyrot discover` does) and write those places as the targets' },
      { flags: '--key <source>', description: 'with --discover: the key to look for: stdin, env:VAR or file:PATH (default: the only OpenAI-format key in the working tree)', complete: ['stdin', 'env:', 'file:'] },
      { flags: '--path <dir>', description: 'with --discover: also search this directory (repeatable)', repeat: true, complete: 'dir' },
    ],
    examples: [
      ['keyrot init --type dotenv,heroku', 'a .env file and a Heroku app'],
      ['keyrot init', 'on a terminal: pick the types from a list'],
      ['keyrot init -c ops/keys.yaml -e staging --type kubernetes'],
      ['keyrot init --discover --key env:OPENAI_API_KEY', 'list every place that key was found'],
    ],
    run: async (f) => (await import('./commands/init.ts')).init(f),
  },
  {
    name: 'plan',
    summary: 'dry run: check every target read-only and show what a rotation would do',
    description:
      'Validates the inventory, contacts every target read-only (credentials, permission, existence) and shows per target: provider, location, the current key (hint and fingerprint) where readable, what would be written, whether a redeploy follows and how it will be verified. Reports drift, the key found outside the inventory by a quick discovery pass over the providers it already uses (--no-discover skips it; `keyrot discover` searches everywhere), .env/key files that git would commit, key files other users can read (with the chmod that fixes it) and temp files an interrupted keyrot write left (rotate and resume remove them). Writes nothing. Exit 1 when a target is not ready (the reason is given per target); drift (targets holding different keys) is a warning, exit 0: a rotation fixes it and names every old key for revocation.',
    shared: [...INVENTORY, 'wide'],
    options: [{ flags: '--no-discover', description: "skip the discovery pass (the key looked for, by fingerprint, with the inventory's own providers, 10 s at most)" }],
    examples: [
      ['keyrot plan -e production'],
      ['keyrot plan -e production --json', 'per target: status, reason, current key, verification'],
    ],
    run: async (f) => (await import('./commands/plan.ts')).plan(f),
  },
  {
    name: 'rotate',
    summary: 'write a new key to every target, verify all, then the revocation step',
    description:
      'Preflight, obtain and check the new key (format, differs from the current one, live check), write every target concurrently, verify every target, then the revocation step. Any write or verify failure restores every target written and ends with exit 1; the old key is never revoked then. Without a terminal (or with --yes) the rotation ends awaiting revocation: revoke the old key, then run `keyrot revoke`.',
    shared: [...INVENTORY, 'yes', 'wide'],
    options: [NEW_KEY, { flags: '--dry-run', description: 'plan only (same as `keyrot plan`)' }],
    examples: [
      ['keyrot rotate -e production', 'asks for the new key (hidden, twice)'],
      ['printf \'%s\\n\' "$NEW_KEY" | keyrot rotate -e production --new-key stdin --yes'],
      ['keyrot rotate -e production --new-key openai-admin', 'mint the new key through the Admin API'],
    ],
    run: async (f) => (await import('./commands/rotate.ts')).rotateCommand(f),
  },
  {
    name: 'emergency',
    summary: 'rotate now because the key leaked: no grace, incident recorded, checklist',
    description:
      'A rotation for a compromised key: no grace period, an incident in the audit log; says if OpenAI already rejects the old key; then the revocation step (with the Admin API: immediate, no disuse wait), the old key\'s usage over the last 7 days and the organization\'s costs of the last 7 days against the 28 before, flagged per project and line item (Admin API), a leak scan of the working tree, and the emergency checklist (what was done, what is left to you). --revoke-first revokes the old key before anything else (through the Admin API when key.admin is set, otherwise you confirm it was revoked in the dashboard), accepting an outage to stop abuse.',
    shared: [...INVENTORY, 'yes', 'wide'],
    options: [
      NEW_KEY,
      { flags: '--revoke-first', description: 'revoke the old key before rotating (typed confirmation unless --yes)' },
      { flags: '--reason <text>', description: 'what happened, for the incident record' },
    ],
    examples: [
      ['keyrot emergency -e production --reason "key pasted in a public issue"'],
      ['keyrot emergency -e production --revoke-first', 'stop abuse first, accept the outage'],
    ],
    run: async (f) => (await import('./commands/emergency.ts')).emergency(f),
  },
  {
    name: 'revoke',
    summary: 'record (or, with the Admin API, perform) the revocation of the old key, then clean up',
    description:
      'Finishes a rotation awaiting revocation. In prompt mode, records your confirmation that you revoked the old key in the provider dashboard (asks on a terminal; --yes confirms without asking). In openai-admin mode, deletes the old key through the OpenAI Admin API once it shows no use (revoke.disuse). Then finalizes targets (old versions disabled, old Docker secret removed). Refuses unless every target was verified.',
    shared: [...INVENTORY, 'yes', 'wide'],
    examples: [
      ['keyrot revoke -e production', 'asks whether you revoked the old key'],
      ['keyrot revoke -e production --yes', 'you did: record it'],
    ],
    run: async (f) => (await import('./commands/revoke.ts')).revokeCommand(f),
  },
  {
    name: 'resume',
    summary: 'continue (or with --rollback undo) an interrupted rotation',
    description:
      'Continues the environment\'s interrupted rotation from its journal, or undoes it with --rollback. The new key is read back from a target that holds it, or given again with --new-key (its fingerprint must match). A lock left by a dead process does not block it.',
    shared: [...INVENTORY, 'yes', 'wide'],
    options: [
      NEW_KEY,
      { flags: '--rollback', description: 'undo: put every touched target back on the old key' },
      { flags: '--old-key <source>', description: 'the old key, for --rollback when no target holds it any more', complete: KEY_SOURCES },
    ],
    examples: [
      ['keyrot resume -e production'],
      ['keyrot resume -e production --rollback', 'undo it instead'],
      ['keyrot resume -e production --new-key env:NEW_KEY', 'no target holds the new key any more'],
    ],
    run: async (f) => (await import('./commands/resume.ts')).resumeCommand(f),
  },
  {
    name: 'status',
    summary: 'per environment: current key, age, last rotation, pending revocation, schedule',
    description:
      'Reads the state directory (no provider is contacted): current key hint and fingerprint, its age, the last rotation and its outcome, a revocation waiting, the next scheduled run, drift seen by the last `keyrot verify`, and keys shared between environments. Without -e, every environment.',
    shared: [...INVENTORY, 'wide'],
    examples: [['keyrot status'], ['keyrot status -e production --json']],
    run: async (f) => (await import('./commands/status.ts')).status(f),
  },
  {
    name: 'verify',
    summary: 'read every target now: same key everywhere? is it live? (exit 1 on drift or a dead key)',
    description:
      'Reads every target now: do all hold the same key, and does the issuer accept it (OpenAI: GET /models)? Exit 1 on drift or a key the issuer rejects; exit 4 when the issuer could not be reached to tell (network, timeout, 5xx): the key may be fine.',
    shared: [...INVENTORY, 'wide'],
    examples: [['keyrot verify -e production'], ['keyrot verify -e production --json', 'live.status: live, restricted, rejected or unreachable']],
    run: async (f) => (await import('./commands/verify.ts')).verify(f),
  },
  {
    name: 'history',
    summary: 'the audit log, newest first, verified (exit 1 if any entry or journal line fails)',
    description:
      "Shows the audit log, newest first, and verifies keyrot's state: each audit entry's and journal line's MAC (HMAC-SHA256 under the state key), the audit hash chain, and each head against the anchor keyrot keeps outside the state, so an edited, forged, removed or reordered entry, or a log cut short, is reported with the check that failed (exit 1). Entries written before authentication are shown and flagged as not verifiable. --anchor SEQ:HEAD also checks the head a notification carried; --reanchor records the current heads after you archived the state on purpose.",
    shared: [...INVENTORY, 'wide'],
    options: [
      { flags: '-n, --limit <n>', description: 'show at most n entries', default: '50' },
      { flags: '--anchor <seq:head>', description: "also check the audit log against this head (a notification's audit.seq:audit.head)" },
      { flags: '--reanchor', description: 'after a deliberate archive of the state: record its current heads as the anchor' },
    ],
    examples: [['keyrot history -n 20'], ['keyrot history --anchor 42:<audit.head of a notification>', 'was the log cut short?']],
    run: async (f) => (await import('./commands/history.ts')).history(f),
  },
  {
    name: 'report',
    summary: 'rotation history and key ages per environment: HTML (SVG timeline), Markdown, CSV or JSON',
    description:
      "Builds a report from keyrot's own state (journal and audit log, verified; no provider is contacted): per environment the key's age against its schedule, a timeline of rotations (started, outcome, emergency, revoked), drift and shared-key warnings, pending revocations, and the audit chain's verification. -o FILE writes it (format from the extension: .html, .md, .csv, .json); without -o it goes to stdout as Markdown. HTML is one self-contained file (no script, no network). Keys appear as hints and fingerprints only. Exit 1 when the audit log fails verification.",
    shared: INVENTORY,
    options: [
      { flags: '-o, --output <file>', description: 'write the report to this file (default: stdout)', complete: 'file' },
      { flags: '--format <format>', description: 'html, md, csv or json (default: from the -o extension, else md)', complete: ['html', 'md', 'csv', 'json'] },
    ],
    examples: [
      ['keyrot report', 'Markdown on stdout'],
      ['keyrot report -o report.html', 'one self-contained page with an SVG timeline'],
      ['keyrot report -e production --format csv'],
    ],
    run: async (f) => (await import('./commands/report.ts')).report(f),
  },
  {
    name: 'usage',
    summary: "requests and tokens per day of the current key and the keys keyrot retired (OpenAI Admin API)",
    description:
      "Reads the OpenAI Admin API's completions usage, per API key id, for the environment's current key and every key keyrot retired in the window (awaiting revocation or revoked), per UTC day: a sparkline per key on a terminal, a table otherwise, --json for scripts. Keys appear as hints and fingerprints only. A key whose id keyrot does not know (not minted by keyrot and not found among the project's keys by its hint) is listed as \"id unknown\" with the reason. Needs key.admin (project and token) in targets.yaml: exit 2 without it; exit 1 when a key's usage could not be read.",
    shared: INVENTORY,
    options: [{ flags: '--days <n>', description: 'the window, in UTC days (today included)', default: '7' }],
    examples: [
      ['keyrot usage -e production', 'the last 7 days: a sparkline per key on a terminal'],
      ['keyrot usage -e production --days 30 --json', 'for scripts'],
    ],
    run: async (f) => (await import('./commands/usage.ts')).usageCommand(f),
  },
  {
    name: 'discover',
    summary: 'where does the key live? every place the credentials reach, by fingerprint (exit 1 outside the inventory)',
    description:
      "Looks for the environment's current key (the one most of its readable targets hold, or --key) by fingerprint, read-only: in the working tree and --path directories (.env*, key files, Compose files, JSON/YAML config; .gitignore respected, except that ignored .env files are read too) and with every provider keyrot can list, using the credentials targets.yaml gives for that type, or the provider's usual variables (HEROKU_API_KEY...) for types it does not use. Shows each place found and whether the inventory has it, a ready-to-paste targets.yaml entry for those it lacks, other OpenAI keys found (hint and fingerprint only), and what was searched or skipped (missing credentials, an unreachable provider). Never prints a key. Exit 1 when the key was found outside the inventory.",
    shared: INVENTORY,
    options: [
      { flags: '--key <source>', description: 'the key to look for: stdin, env:VAR or file:PATH (default: the key the targets hold)', complete: ['stdin', 'env:', 'file:'] },
      { flags: '--path <dir>', description: 'also search this directory (repeatable)', repeat: true, complete: 'dir' },
      { flags: '--only-inventory', description: "only the provider types of the environment's targets, with their credentials (never the providers' usual variables)" },
    ],
    examples: [
      ['keyrot discover -e production', "where does production's key live?"],
      ['keyrot discover -e production --path ../side-service --json'],
      ['keyrot discover --key env:SUSPECT_KEY', 'where does this other key live?'],
    ],
    run: async (f) => (await import('./commands/discover.ts')).discoverCommand(f),
  },
  {
    name: 'scan',
    args: '[paths...]',
    completeArgs: 'file',
    summary: 'leak scan: OpenAI key patterns and retired keys in files, git history, images (exit 1 on findings)',
    description:
      "Looks for OpenAI keys (sk-proj-, sk-svcacct-, sk-admin-, legacy sk-) and for the fingerprints of keys keyrot has retired, in the given paths (default: the working tree; .gitignore respected, binaries and node_modules skipped), with --git in the whole history, with --image in a Docker image's history and config. Findings show file:line, the kind, the key's hint and fingerprint, never the key. A key in one of the inventory's own dotenv/file targets is expected, not a leak. Exit 1 on findings.",
    shared: ['config', 'stateDir', 'json', 'wide'],
    options: [
      { flags: '--git', description: 'also scan the whole git history (added lines of every commit)' },
      { flags: '--image <name>', description: "also scan a Docker image's history and config (repeatable)", repeat: true },
    ],
    examples: [['keyrot scan'], ['keyrot scan --git', 'the whole history too'], ['keyrot scan src/ --image myapp:latest']],
    run: async (f, a) => (await import('./commands/scan.ts')).scan(f, a),
  },
  {
    name: 'schedule',
    summary: 'the daemon: rotate each environment on its cron schedule (or --once: what is due)',
    description:
      "Runs each scheduled environment's rotation on schedule.cron in schedule.timezone (node-cron). At start it resumes an interrupted rotation and catches up a run missed while it was down (last rotation older than the schedule's period, or never rotated by keyrot). Unattended runs take the key from env:VAR, file:PATH or openai-admin, never a prompt, and end awaiting revocation unless revoke.mode is openai-admin; notify.webhook says what to revoke. The daemon logs JSON lines on stdout (--once: a summary table, --json for JSON). With watch: in targets.yaml it also polls the OpenAI Admin API every watch.interval and alerts (webhook, log line, keyrot_usage_alerts_total) once a day per key when the current key's use jumps above watch.factor × its baseline or a retired or pending key is used; --once polls once (exit 1 on a new alert). --listen serves /metrics and /healthz; --pushgateway pushes the metrics after --once. SIGTERM/SIGINT finish the current step, journal it and exit; the next start resumes. --once runs what is due and exits (for cron or a Kubernetes CronJob).",
    shared: [...INVENTORY, 'wide'],
    options: [
      { flags: '--once', description: 'run what is due now and exit' },
      { flags: '--listen <addr>', description: 'serve /metrics (Prometheus) and /healthz on PORT (127.0.0.1) or HOST:PORT' },
      { flags: '--pushgateway <url>', description: 'with --once: push the same metrics to this Prometheus Pushgateway when done' },
    ],
    examples: [
      ['keyrot schedule', 'the daemon'],
      ['keyrot schedule --once', 'from cron or a Kubernetes CronJob'],
      ['keyrot schedule --listen 9464', 'the daemon, with /metrics and /healthz on 127.0.0.1:9464'],
    ],
    run: async (f) => (await import('./commands/schedule.ts')).schedule(f),
  },
  {
    name: 'demo',
    summary: 'run a full rotation against built-in loopback emulators, narrated',
    description:
      "Starts loopback emulators (OpenAI for the live check, and every provider keyrot supports), writes a throw-away inventory in a temp directory, runs discover (it finds a Render service the inventory leaves out, which the demo then adds) and plan, rotate, verify and revoke end to end with a generated key. Nothing leaves 127.0.0.1. Docker Swarm secrets need a real Docker Engine: the demo uses yours only with --docker (or your yes at a prompt on a terminal), says what it creates, and removes it afterwards.",
    shared: ['json'],
    options: [
      { flags: '--keep', description: 'keep the temp directory and print its path' },
      { flags: '--docker', description: 'also use the Docker Engine at DOCKER_HOST (a swarm manager): one secret and one 0-replica service, removed afterwards' },
    ],
    examples: [['keyrot demo'], ['keyrot demo --docker', 'include your Docker swarm (cleaned up afterwards)']],
    run: async (f) => (await import('./commands/demo.ts')).demo(f),
  },
  {
    name: 'completion',
    args: '<shell>',
    completeArgs: ['bash', 'zsh', 'fish'],
    summary: 'print the shell completion script for bash, zsh or fish',
    description: "Prints a completion script for keyrot's commands, flags and their values, made from the same table as this help.",
    shared: [],
    examples: [
      ['keyrot completion bash > ~/.local/share/bash-completion/completions/keyrot'],
      ['keyrot completion zsh > "${fpath[1]}/_keyrot"', 'a directory of your $fpath'],
      ['keyrot completion fish > ~/.config/fish/completions/keyrot.fish'],
    ],
    run: async (f, a) => (await import('./commands/completion.ts')).completion(a, COMMANDS),
  },
];

/** The one option list of a command, in the order its help shows them. */
export function optionsOf(spec: CommandSpec): OptionSpec[] {
  return [...spec.shared.map((f) => SHARED[f]), ...(spec.options ?? []), SHARED.quiet, SHARED.verbose];
}

export function buildProgram(onRun: (code: number) => void): Command {
  const program = new Command('keyrot')
    .description('Rotate an API key everywhere it lives, together: write every target, verify every target, then revoke the old key.')
    .version('0.1.0', '-V, --version')
    .configureOutput({ writeErr: (s) => process.stderr.write(printable(s)), outputError: (s, write) => write(styleUsageError(s)) })
    .showHelpAfterError('(run `keyrot --help` for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      '\nExit codes: 0 success (a rotation awaiting revocation is a success), 1 failed or found a problem,\n2 invalid usage or inventory, 3 another rotation holds the lock, 4 verify could not reach the issuer,\n130 interrupted (Ctrl-C; 143: SIGTERM).\n' +
        examplesText([['keyrot demo', 'see a whole rotation on loopback emulators'], ['keyrot init', 'write a targets.yaml'], ['keyrot plan -e production'], ['keyrot <command> --help']]),
    );
  for (const spec of COMMANDS) {
    const cmd = program
      .command(spec.name + (spec.args ? ` ${spec.args}` : ''))
      .summary(spec.summary)
      .description(spec.description ?? spec.summary)
      .showHelpAfterError(`(run \`keyrot ${spec.name} --help\` for usage)`)
      .addHelpText('after', examplesText(spec.examples));
    for (const o of optionsOf(spec)) addOption(cmd, o);
    cmd.exitOverride();
    cmd.action(async (...a: unknown[]) => {
      const c = a[a.length - 1] as Command;
      const flags = c.opts() as CommonFlags & Record<string, unknown>;
      setInvocationFlags(flags);
      verbose ||= Boolean(flags.verbose);
      onRun(await spec.run(flags, c.args));
    });
  }
  return program;
}

/** Prints an error the way users read it and returns the exit code of the contract. */
export async function reportError(err: unknown, json = false): Promise<number> {
  const lines: string[] = [];
  const write = (s: string) => {
    const line = withUserFlags(printable(s));
    lines.push(line);
    process.stderr.write(line + '\n');
  };
  // Loaded only here, on the error path: `--help` and every successful run stay without it.
  const fsProblem = (await import('./fs-error.ts')).describeFsError(err);
  const code = describeError(err, write, fsProblem);
  // Scripts reading --json get a JSON document on stdout in failure too.
  if (json) process.stdout.write(errorJson(code, lines.join('\n')));
  return code;
}

function describeError(err: unknown, write: (s: string) => void, fsProblem: string | undefined): number {
  if (err instanceof ConfigErrors) {
    const total = err.errors.length + err.omitted;
    write(`keyrot: the inventory has ${total === 1 ? 'an error' : `${total} errors`}${err.omitted ? `; the first ${err.errors.length}:` : ':'}`);
    for (const e of err.errors) write(`  ${e.format()}`);
    if (err.omitted) write(`  ... and ${err.omitted} more`);
    return EXIT.usage;
  }
  if (err instanceof ConfigError) {
    write(`keyrot: ${err.format()}`);
    return EXIT.usage;
  }
  if (err instanceof LockedError) {
    write(`keyrot: ${err.message}`);
    return EXIT.locked;
  }
  if (err instanceof ExitError) {
    write(`keyrot: ${err.message}`);
    return err.code;
  }
  if (err instanceof PromptCancelled) {
    // Commands that change things say where they stand instead (cli/interrupt.ts).
    write('keyrot: interrupted: the question was left unanswered');
    return EXIT.interrupted;
  }
  if (err instanceof TargetError) {
    write(`keyrot: ${err.target ? `${err.target}: ` : ''}${err.message}`);
    return EXIT.failed;
  }
  if (fsProblem) {
    write(`keyrot: ${fsProblem}`);
    return EXIT.failed;
  }
  const e = err as Error;
  write(`keyrot: unexpected error (a bug in keyrot, please report it): ${e?.message ?? String(err)}`);
  if (verbose || process.env.KEYROT_DEBUG) write(String(e?.stack ?? ''));
  return EXIT.failed;
}

let strayHandler = false;
/**
 * A promise some library rejects with nobody awaiting it (seen: google-gax after missing ADC) would
 * otherwise kill the process mid-output with a raw, unredacted stack trace. Every step keyrot awaits
 * reports its own errors; a stray one is reported here (redacted) and the command goes on.
 */
function reportStrayRejections(): void {
  if (strayHandler) return;
  strayHandler = true;
  process.on('unhandledRejection', (reason) => {
    const e = reason as Error;
    process.stderr.write(printable(`keyrot: warning: ignored an error nothing was waiting for (a bug in keyrot or a library it uses, please report it): ${e?.message ?? String(reason)}`) + '\n');
    if (verbose || process.env.KEYROT_DEBUG) process.stderr.write(printable(String(e?.stack ?? '')) + '\n');
  });
}

export async function main(argv: string[]): Promise<number> {
  reportStrayRejections();
  ignoreClosedPipes();
  const code = await runCommand(argv);
  return code === EXIT.ok && outputWasLost() ? EXIT.failed : code;
}

async function runCommand(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram((c) => (code = c));
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT.ok;
    }
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    return await reportError(err, argv.includes('--json'));
  } finally {
    // The terminal as the command found it, and Ctrl-C back to ending the process.
    releaseKeystrokes();
    endInterrupts();
  }
}

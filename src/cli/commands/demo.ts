import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { OpenAIEmulator } from '../../../emulators/openai/index.ts';
import { generateKey } from '../../../emulators/keys.ts';
import type { DemoProvider, DemoSetup } from '../../../emulators/demo-types.ts';

type DemoForgotten = NonNullable<DemoProvider['forgotten']>[number];
import { fingerprint, hint } from '../../core/secret.ts';
import { EXIT, ExitError } from '../../core/errors.ts';
import { newKeyMaterial } from '../../state/state-key.ts';
import { bold, dim, green, red, yellow } from '../output.ts';
import { createOutFor } from '../context.ts';
import { setInvocationFlags } from '../../render/command.ts';
import { demoTeardown } from './demo-teardown.ts';
import { plural } from '../../render/plural.ts';

/**
 * Provider emulators that join the demo: each module exports `demo: DemoSetup`. The local targets
 * (dotenv, file) need no emulator and are set up here.
 */
export const DEMO_PROVIDERS: Array<[string, () => Promise<{ demo: DemoSetup }>]> = [
  ['docker-secret', () => import('../../../emulators/docker/demo.ts')],
  ['docker-compose', () => import('../../../emulators/docker-compose/demo.ts')],
  ['aws-secrets-manager', () => import('../../../emulators/aws-secrets-manager/demo.ts')],
  ['gcp-secret-manager', () => import('../../../emulators/gcp-secret-manager/demo.ts')],
  ['azure-key-vault', () => import('../../../emulators/azure-key-vault/demo.ts')],
  ['kubernetes', () => import('../../../emulators/kubernetes/demo.ts')],
  ['heroku', () => import('../../../emulators/heroku/demo.ts')],
  ['netlify', () => import('../../../emulators/netlify/demo.ts')],
  ['vercel', () => import('../../../emulators/vercel/demo.ts')],
  ['railway', () => import('../../../emulators/railway/demo.ts')],
  ['aws-ssm-parameter', () => import('../../../emulators/aws-ssm-parameter/demo.ts')],
  ['vault', () => import('../../../emulators/vault/demo.ts')],
  ['supabase', () => import('../../../emulators/supabase/demo.ts')],
  ['render', () => import('../../../emulators/render/demo.ts')],
  ['fly', () => import('../../../emulators/fly/demo.ts')],
  ['github-actions', () => import('../../../emulators/github-actions/demo.ts')],
  ['cloudflare-workers', () => import('../../../emulators/cloudflare-workers/demo.ts')],
];

interface Step {
  command: string;
  exitCode: number;
  expected: number;
  result?: unknown;
}

type DemoFlags = { json?: boolean; keep?: boolean; docker?: boolean; quiet?: boolean; verbose?: boolean };
type Say = (s: string) => void;

/**
 * `keyrot demo`: the embedded default. Loopback emulators, a throw-away inventory in a temp dir,
 * a forgotten place found by discover, and a full rotation (plan → rotate → verify → status → revoke →
 * history), narrated.
 */
export async function demo(flags: DemoFlags): Promise<number> {
  const out = createOutFor(flags);
  const c = out.color;
  // The narration is the demo's own output: stdout, in order with the commands' results (stderr under --json).
  const say: Say = (s) => out.human(s);
  const keys = { oldKey: generateKey(), newKey: generateKey() };
  const openai = new OpenAIEmulator();
  openai.addKey(keys.oldKey);
  openai.addKey(keys.newKey);
  const providers: DemoProvider[] = [];
  const savedEnv = { ...process.env };
  const workDir = await mkdtemp(join(tmpdir(), 'keyrot-demo-'));
  const teardown = demoTeardown(workDir, Boolean(flags.keep), async () => {
    for (const p of providers) await p.stop().catch(() => {});
    await openai.stop();
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    if (savedEnv.XDG_CONFIG_HOME !== undefined) process.env.XDG_CONFIG_HOME = savedEnv.XDG_CONFIG_HOME;
  });
  try {
    await openai.start();
    introduce(say, c, workDir, keys, openai.endpoint);
    const targets = await localTargets(workDir, keys.oldKey);
    say(dim('• local targets: backend/.env (dotenv) and secrets/openai_api_key (file)', c));
    const skipped = await startProviders({ flags, json: out.json, say, c, workDir, oldKey: keys.oldKey, providers, targets });
    const config = await writeDemoInventory(workDir, targets, openai.endpoint);
    say(dim(`• inventory: ${config} (${plural(targets.length, 'target')})`, c));
    const runStep = stepRunner({ flags, say, c, config, workDir });
    const forgotten = providers.flatMap((p) => p.forgotten ?? []);
    const found = await discoverForgotten(runStep, { say, c, workDir, forgotten });
    if (found) {
      targets.push(...forgotten.map((f) => f.target));
      await writeInventoryFile(workDir, targets, openai.endpoint);
    }
    await writeNewKey(workDir, keys.newKey);
    const steps = await runSteps(runStep, { say, c, workDir, oldKey: keys.oldKey, revoke: () => openai.revokeKey(keys.oldKey) });
    const ok = steps.every((s) => s.exitCode === s.expected);
    say('');
    if (ok) say(green(`Demo complete: ${plural(targets.length, 'target')}${found ? ` (${forgotten.length} of them found by keyrot discover)` : ''} rotated from ${hint(keys.oldKey)} to ${hint(keys.newKey)}, verified, old key revoked.`, c));
    else say(red('Demo failed: a step did not end as expected (see above).', c));
    if (skipped.length) say(yellow(`Skipped providers: ${skipped.join('; ')}`, c));
    if (flags.keep) say(dim(`Kept ${workDir}`, c));
    if (out.json) out.result({ ok, workDir: flags.keep ? workDir : undefined, targets: targets.length, skipped, steps });
    return ok ? EXIT.ok : EXIT.failed;
  } finally {
    await teardown();
  }
}

const VAR_NAME = 'OPENAI_API_KEY';

function introduce(say: Say, c: boolean, workDir: string, keys: { oldKey: string; newKey: string }, endpoint: string): void {
  say(bold('keyrot demo', c) + dim(`  (everything runs on 127.0.0.1; work dir ${workDir})`, c));
  say('');
  say(`A team keeps one OpenAI key in several places. The current key is ${hint(keys.oldKey)} (${fingerprint(keys.oldKey)}).`);
  say(`keyrot will replace it with a freshly generated key ${hint(keys.newKey)} (${fingerprint(keys.newKey)}) everywhere, verify`);
  say('every copy, and only then let the old key be revoked.');
  say('');
  say(dim(`• OpenAI emulator (live check of keys) at ${endpoint}`, c));
}

/** A .env file with neighbours that must survive byte for byte, and a key file. */
async function localTargets(workDir: string, oldKey: string): Promise<Array<Record<string, unknown>>> {
  await mkdir(join(workDir, 'backend'), { recursive: true });
  await mkdir(join(workDir, 'secrets'), { recursive: true });
  await writeFile(
    join(workDir, 'backend', '.env'),
    `# backend settings\nDATABASE_URL=postgres://localhost/app\nexport ${VAR_NAME}="${oldKey}"\nLOG_LEVEL=info # keep me\n`,
    { mode: 0o600 },
  );
  await writeFile(join(workDir, 'secrets', 'openai_api_key'), oldKey, { mode: 0o600 });
  return [
    { type: 'dotenv', name: 'backend-env', path: 'backend/.env' },
    { type: 'file', name: 'key-file', path: 'secrets/openai_api_key' },
  ];
}

/** Starts each provider's emulator (or skips it, saying why); returns the skipped ones. */
async function startProviders(d: {
  flags: DemoFlags;
  json: boolean;
  say: Say;
  c: boolean;
  workDir: string;
  oldKey: string;
  providers: DemoProvider[];
  targets: Array<Record<string, unknown>>;
}): Promise<string[]> {
  const skipped: string[] = [];
  for (const [id, load] of DEMO_PROVIDERS) {
    try {
      const { demo: setup } = await load();
      const p = await setup({ oldKey: d.oldKey, workDir: d.workDir, varName: VAR_NAME, consent: realServiceConsent(d.flags, d.json) });
      if ('skip' in p) {
        skipped.push(`${id}: ${p.skip}`);
        d.say(yellow(`• ${id}: skipped — ${p.skip}`, d.c));
        continue;
      }
      d.providers.push(p);
      d.targets.push(...p.targets);
      Object.assign(process.env, p.env);
      d.say(dim(`• ${p.description}`, d.c));
    } catch (err) {
      skipped.push(`${id}: ${(err as Error).message}`);
      d.say(red(`• ${id}: could not start its emulator: ${(err as Error).message}`, d.c));
    }
  }
  return skipped;
}

/** The throw-away inventory and the state's own key; returns the inventory's path. */
async function writeDemoInventory(workDir: string, targets: Array<Record<string, unknown>>, endpoint: string): Promise<string> {
  const config = await writeInventoryFile(workDir, targets, endpoint);
  // The throw-away state's own key and anchors go with it, not into ~/.config/keyrot (and the
  // key is made here: nothing to back up, so no first-use notice).
  process.env.XDG_CONFIG_HOME = join(workDir, 'config');
  await mkdir(join(workDir, 'config', 'keyrot'), { recursive: true, mode: 0o700 });
  await writeFile(join(workDir, 'config', 'keyrot', 'state.key'), `${newKeyMaterial()}\n`, { mode: 0o600 });
  return config;
}

async function writeInventoryFile(workDir: string, targets: Array<Record<string, unknown>>, endpoint: string): Promise<string> {
  const inventory = {
    version: 1,
    key: { name: VAR_NAME, kind: 'openai', source: 'file:new-key.txt', verify: true, endpoint },
    revoke: { mode: 'prompt', grace: '0s' },
    environments: { demo: { targets } },
  };
  const config = join(workDir, 'targets.yaml');
  await writeFile(config, `# written by keyrot demo: every endpoint is a loopback emulator\n${stringify(inventory)}`);
  return config;
}

/** The new key reaches keyrot through a file source (mode 0600), never through argv. */
async function writeNewKey(workDir: string, newKey: string): Promise<void> {
  await writeFile(join(workDir, 'new-key.txt'), newKey + '\n', { mode: 0o600 });
}

/**
 * Before the rotation: `keyrot discover` over the demo's providers and directory finds the places
 * seeded with the key that the inventory leaves out; the team then adds them (the demo appends
 * the entries discover printed), so the rotation gives them the new key too and revoking the old
 * one breaks nothing. True when discover reported them (exit 1) and they were added.
 */
async function discoverForgotten(runStep: RunStep, d: { say: Say; c: boolean; workDir: string; forgotten: DemoForgotten[] }): Promise<boolean> {
  const back = process.cwd();
  // The demo's own directory is the working tree searched, never the user's.
  process.chdir(d.workDir);
  let code: number;
  try {
    code = await runStep(
      '1. discover',
      "Where does the current key live? Every provider of the inventory and the directory's files, by fingerprint.",
      ['discover', '--only-inventory'],
      d.forgotten.length ? EXIT.failed : EXIT.ok,
    );
  } finally {
    process.chdir(back);
  }
  if (!d.forgotten.length || code !== EXIT.failed) return false;
  d.say('');
  d.say(dim(`(keyrot found ${d.forgotten.map((f) => f.location).join(', ')} holding the key, and the inventory left it out:`, d.c));
  d.say(dim(' revoking the old key would have broken it. The team adds the entry discover printed to targets.yaml, so the rotation covers it.)', d.c));
  return true;
}

type RunStep = (title: string, explain: string, args: string[], expected?: number) => Promise<number>;

/**
 * The step's own interrupt line may offer `keyrot resume` on the demo's state: that state goes
 * with the temp directory unless --keep, so the demo says which.
 */
function interruptedWords(d: { flags: DemoFlags; workDir: string }): string {
  return d.flags.keep
    ? `interrupted: the demo touched nothing outside its temporary directory, kept at ${d.workDir}`
    : 'interrupted: the demo touched nothing outside its temporary directory, which is removed with its rotation: nothing to resume (`keyrot demo --keep` keeps it)';
}

/** Runs one keyrot command in this process, narrated; its exit code (and --json result) recorded. */
function stepRunner(d: { flags: DemoFlags; say: Say; c: boolean; config: string; workDir: string }): RunStep & { steps: Step[] } {
  const steps: Step[] = [];
  const common = ['-c', d.config, '-e', 'demo', '--state-dir', join(d.workDir, '.keyrot')];
  const run = async (title: string, explain: string, args: string[], expected = 0): Promise<number> => {
    d.say('');
    d.say(bold(`── ${title}`, d.c) + dim(`   $ keyrot ${args.join(' ')}`, d.c));
    d.say(dim(explain, d.c));
    d.say('');
    const { code, captured } = await runCaptured([...args, ...common, ...(d.flags.json ? ['--json'] : [])], Boolean(d.flags.json));
    let result: unknown;
    try {
      result = captured ? JSON.parse(captured) : undefined;
    } catch {
      result = captured;
    }
    steps.push({ command: `keyrot ${args.join(' ')}`, exitCode: code, expected, result });
    // Ctrl-C ended the step (exit 130, cli/interrupt.ts): it ends the demo too.
    if (code === EXIT.interrupted || code === EXIT.terminated) throw new ExitError(code, interruptedWords(d));
    if (code !== expected) d.say(red(`(exit ${code}, expected ${expected})`, d.c));
    return code;
  };
  return Object.assign(run, { steps });
}

/** `main(argv)` in this process; under --json its stdout (the step's result document) is captured. */
async function runCaptured(argv: string[], capture: boolean): Promise<{ code: number; captured: string }> {
  const { main } = await import('../main.ts');
  let captured = '';
  const origWrite = process.stdout.write.bind(process.stdout);
  if (capture) {
    process.stdout.write = ((chunk: string | Uint8Array) => {
      captured += chunk.toString();
      return true;
    }) as typeof process.stdout.write;
  }
  try {
    return { code: await main(argv), captured };
  } finally {
    process.stdout.write = origWrite;
    // The step ran with the demo's own -c / --state-dir; the narration is the demo's again.
    setInvocationFlags({});
  }
}

/** The rotation, step by step: plan, rotate, verify, status, (the operator revokes), revoke, history. */
async function runSteps(runStep: RunStep & { steps: Step[] }, d: { say: Say; c: boolean; workDir: string; oldKey: string; revoke: () => void }): Promise<Step[]> {
  await runStep('2. plan', 'Dry run: every target is contacted read-only; nothing is written.', ['plan']);
  await runStep(
    '3. rotate',
    'The new key is read from file:new-key.txt, format-checked, live-checked against the OpenAI emulator,\nthen written to every target at once and verified. Without a terminal (--yes) it ends awaiting revocation.',
    ['rotate', '--yes'],
  );
  await rm(join(d.workDir, 'new-key.txt'), { force: true });
  await runStep('4. verify', 'Read every target again: all hold the same key, and it is live.', ['verify']);
  await runStep('5. status', 'The state directory says what waits: the old key must be revoked.', ['status']);
  d.say('');
  d.say(dim(`(The operator now revokes ${hint(d.oldKey)} in the OpenAI dashboard; the emulator plays along.)`, d.c));
  d.revoke();
  await runStep('6. revoke', 'Record the revocation (only possible because every target was verified).', ['revoke', '--yes']);
  await runStep('7. history', 'The hash-chained audit log, newest first.', ['history']);
  return runStep.steps;
}

/**
 * May a demo provider use a real service of the user's (today: the Docker Engine's swarm)? Only
 * with --docker, or a yes at a prompt on a terminal after saying what it would create; never by
 * default, since the demo's promise is that nothing leaves 127.0.0.1 and the temp directory.
 */
function realServiceConsent(flags: { docker?: boolean }, json: boolean): (what: string) => Promise<boolean> {
  return async (what) => {
    if (flags.docker) return true;
    if (json || !process.stdin.isTTY || !process.stderr.isTTY) return false;
    const { confirmYesNo } = await import('../prompt.ts');
    process.stderr.write(`\n${what}.\n`);
    return confirmYesNo('Use it for the demo?', false);
  };
}

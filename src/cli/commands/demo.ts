import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { OpenAIEmulator } from '../../../emulators/openai/index.ts';
import { generateKey } from '../../../emulators/keys.ts';
import type { DemoProvider, DemoSetup } from '../../../emulators/demo-types.ts';
import { fingerprint, hint } from '../../core/secret.ts';
import { EXIT, ExitError } from '../../core/errors.ts';
import { newKeyMaterial } from '../../state/state-key.ts';
import { bold, createOut, dim, green, red, yellow } from '../output.ts';
import { demoTeardown } from './demo-teardown.ts';

/**
 * Provider emulators that join the demo: each module exports `demo: DemoSetup`. The local targets
 * (dotenv, file) need no emulator and are set up here.
 */
export const DEMO_PROVIDERS: Array<[string, () => Promise<{ demo: DemoSetup }>]> = [
  ['docker-secret', () => import('../../../emulators/docker/demo.ts')],
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
  ['github-actions', () => import('../../../emulators/github-actions/demo.ts')],
  ['cloudflare-workers', () => import('../../../emulators/cloudflare-workers/demo.ts')],
];

interface Step {
  command: string;
  exitCode: number;
  expected: number;
  result?: unknown;
}

/**
 * `keyrot demo`: the embedded default. Loopback emulators, a throw-away inventory in a temp dir,
 * and a full rotation (plan → rotate → verify → revoke → status → history), narrated.
 */
export async function demo(flags: { json?: boolean; keep?: boolean }): Promise<number> {
  const out = createOut(Boolean(flags.json));
  const c = out.color;
  // The narration is the demo's own output: stdout, in order with the commands' results (stderr under --json).
  const say = (s: string) => out.human(s);
  const varName = 'OPENAI_API_KEY';
  const oldKey = generateKey();
  const newKey = generateKey();
  const openai = new OpenAIEmulator();
  openai.addKey(oldKey);
  openai.addKey(newKey);
  const providers: DemoProvider[] = [];
  const skipped: string[] = [];
  const steps: Step[] = [];
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
    say(bold('keyrot demo', c) + dim(`  (everything runs on 127.0.0.1; work dir ${workDir})`, c));
    say('');
    say(`A team keeps one OpenAI key in several places. The current key is ${hint(oldKey)} (${fingerprint(oldKey)}).`);
    say(`keyrot will replace it with a freshly generated key ${hint(newKey)} (${fingerprint(newKey)}) everywhere, verify`);
    say('every copy, and only then let the old key be revoked.');
    say('');
    say(dim(`• OpenAI emulator (live check of keys) at ${openai.endpoint}`, c));

    // Local targets: a .env file with neighbours that must survive byte for byte, and a key file.
    await mkdir(join(workDir, 'backend'), { recursive: true });
    await mkdir(join(workDir, 'secrets'), { recursive: true });
    await writeFile(
      join(workDir, 'backend', '.env'),
      `# backend settings\nDATABASE_URL=postgres://localhost/app\nexport ${varName}="${oldKey}"\nLOG_LEVEL=info # keep me\n`,
      { mode: 0o600 },
    );
    await writeFile(join(workDir, 'secrets', 'openai_api_key'), oldKey, { mode: 0o600 });
    say(dim('• local targets: backend/.env (dotenv) and secrets/openai_api_key (file)', c));
    const targets: Array<Record<string, unknown>> = [
      { type: 'dotenv', name: 'backend-env', path: 'backend/.env' },
      { type: 'file', name: 'key-file', path: 'secrets/openai_api_key' },
    ];
    for (const [id, load] of DEMO_PROVIDERS) {
      try {
        const { demo: setup } = await load();
        const p = await setup({ oldKey, workDir, varName });
        if ('skip' in p) {
          skipped.push(`${id}: ${p.skip}`);
          say(yellow(`• ${id}: skipped — ${p.skip}`, c));
          continue;
        }
        providers.push(p);
        targets.push(...p.targets);
        Object.assign(process.env, p.env);
        say(dim(`• ${p.description}`, c));
      } catch (err) {
        skipped.push(`${id}: ${(err as Error).message}`);
        say(red(`• ${id}: could not start its emulator: ${(err as Error).message}`, c));
      }
    }
    const inventory = {
      version: 1,
      key: { name: varName, kind: 'openai', source: 'file:new-key.txt', verify: true, endpoint: openai.endpoint },
      revoke: { mode: 'prompt', grace: '0s' },
      environments: { demo: { targets } },
    };
    const config = join(workDir, 'targets.yaml');
    await writeFile(config, `# written by keyrot demo: every endpoint is a loopback emulator\n${stringify(inventory)}`);
    // The new key reaches keyrot through a file source (mode 0600), never through argv.
    await writeFile(join(workDir, 'new-key.txt'), newKey + '\n', { mode: 0o600 });
    say(dim(`• inventory: ${config} (${targets.length} targets)`, c));

    const { main } = await import('../main.ts');
    const common = ['-c', config, '-e', 'demo', '--state-dir', join(workDir, '.keyrot')];
    // The throw-away state's own key and anchors go with it, not into ~/.config/keyrot (and the
    // key is made here: nothing to back up, so no first-use notice).
    process.env.XDG_CONFIG_HOME = join(workDir, 'config');
    await mkdir(join(workDir, 'config', 'keyrot'), { recursive: true, mode: 0o700 });
    await writeFile(join(workDir, 'config', 'keyrot', 'state.key'), `${newKeyMaterial()}\n`, { mode: 0o600 });
    const runStep = async (title: string, explain: string, args: string[], expected = 0): Promise<number> => {
      say('');
      say(bold(`── ${title}`, c) + dim(`   $ keyrot ${args.join(' ')}`, c));
      say(dim(explain, c));
      say('');
      let captured = '';
      const origWrite = process.stdout.write.bind(process.stdout);
      if (flags.json) {
        process.stdout.write = ((chunk: string | Uint8Array) => {
          captured += chunk.toString();
          return true;
        }) as typeof process.stdout.write;
      }
      let code: number;
      try {
        code = await main([...args, ...common, ...(flags.json ? ['--json'] : [])]);
      } finally {
        process.stdout.write = origWrite;
      }
      let result: unknown;
      try {
        result = captured ? JSON.parse(captured) : undefined;
      } catch {
        result = captured;
      }
      steps.push({ command: `keyrot ${args.join(' ')}`, exitCode: code, expected, result });
      // Ctrl-C ended the step (exit 130, cli/interrupt.ts): it ends the demo too.
      if (code === EXIT.interrupted || code === EXIT.terminated) throw new ExitError(code, 'interrupted: the demo touched nothing outside its temporary directory');
      if (code !== expected) say(red(`(exit ${code}, expected ${expected})`, c));
      return code;
    };

    await runStep('1. plan', 'Dry run: every target is contacted read-only; nothing is written.', ['plan']);
    await runStep(
      '2. rotate',
      'The new key is read from file:new-key.txt, format-checked, live-checked against the OpenAI emulator,\nthen written to every target at once and verified. Without a terminal (--yes) it ends awaiting revocation.',
      ['rotate', '--yes'],
    );
    await rm(join(workDir, 'new-key.txt'), { force: true });
    await runStep('3. verify', 'Read every target again: all hold the same key, and it is live.', ['verify']);
    await runStep('4. status', 'The state directory says what waits: the old key must be revoked.', ['status']);
    say('');
    say(dim(`(The operator now revokes ${hint(oldKey)} in the OpenAI dashboard; the emulator plays along.)`, c));
    openai.revokeKey(oldKey);
    await runStep('5. revoke', 'Record the revocation (only possible because every target was verified).', ['revoke', '--yes']);
    await runStep('6. history', 'The hash-chained audit log, newest first.', ['history']);

    const ok = steps.every((s) => s.exitCode === s.expected);
    say('');
    if (ok) {
      say(green(`Demo complete: ${targets.length} targets rotated from ${hint(oldKey)} to ${hint(newKey)}, verified, old key revoked.`, c));
    } else {
      say(red('Demo failed: a step did not end as expected (see above).', c));
    }
    if (skipped.length) say(yellow(`Skipped providers: ${skipped.join('; ')}`, c));
    if (flags.keep) say(dim(`Kept ${workDir}`, c));
    if (out.json) out.result({ ok, workDir: flags.keep ? workDir : undefined, targets: targets.length, skipped, steps });
    return ok ? EXIT.ok : EXIT.failed;
  } finally {
    await teardown();
  }
}

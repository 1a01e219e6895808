import { createHash, randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';

/**
 * Item 19: a `kind: generic` key may be a weak secret. Its fingerprint used to be an unsalted
 * 48-bit SHA-256 prefix, shown with its last 4 characters, in the journal (a ConfigMap in cluster
 * mode), the audit log and webhooks: a dictionary attack on those recovers it. The attack is run
 * here against what keyrot records; generic fingerprints are now keyed with the state key, and
 * short values show no tail. Recognising a key by fingerprint still works where keyrot holds the
 * state key: shared keys between environments, retired keys in `keyrot scan`.
 */

/** A weak secret of a guessable family, generated at run time, and the guesser's whole dictionary. */
const WORDS = ['hunter', 'summer', 'dragon', 'monkey'];
const weak = () => `${WORDS[randomInt(WORDS.length)]}-pass-${String(randomInt(1000)).padStart(3, '0')}`;
const dictionary = WORDS.flatMap((w) => Array.from({ length: 1000 }, (_, i) => `${w}-pass-${String(i).padStart(3, '0')}`));

/** The public fingerprint (first 12 hex of SHA-256) of every guess: what an attacker computes offline. */
const guessed = new Map(dictionary.map((d) => [createHash('sha256').update(d).digest('hex').slice(0, 12), d]));

/** Every fingerprint-looking value and every hint in a text (the state, a webhook body). */
function recorded(text: string): { fingerprints: string[]; hints: string[] } {
  const fingerprints = [...text.matchAll(/"(?:fingerprint|oldFingerprint|old|new|key)":"([0-9a-f]{12})"/g)].map((m) => m[1]!);
  const hints = [...text.matchAll(/"(?:hint|oldHint)":"([^"]*)"/g)].map((m) => m[1]!);
  return { fingerprints, hints };
}

function expectNotGuessable(text: string, secrets: string[]): void {
  const { fingerprints, hints } = recorded(text);
  expect(fingerprints.length).toBeGreaterThan(0);
  for (const fp of fingerprints) expect(guessed.get(fp), `fingerprint ${fp} was guessed`).toBeUndefined();
  for (const h of hints) expect(h).toBe('***');
  for (const s of secrets) {
    expect(text).not.toContain(s);
    expect(text).not.toContain(s.slice(-4));
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-generic-fp-'));
  return () => rm(dir, { recursive: true, force: true });
});

const inventory = (extra = '', envs = ['production']) => `version: 1
key:
  name: API_TOKEN
  kind: generic
  source: env:NEW_KEY
${extra}environments:
${envs.map((e) => `  ${e}:\n    targets:\n      - type: file\n        name: ${e}-file\n        path: ${e}.token\n`).join('')}`;

function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runCli(args, { cwd: dir, env: { XDG_CONFIG_HOME: join(dir, 'config'), ...env } });
}

describe('generic keys (local state)', () => {
  it('no fingerprint in the journal, audit log or webhook matches a dictionary guess; short values show no tail', async () => {
    const oldKey = weak();
    const newKey = weak().replace('-pass-', '-pazz-');
    const bodies: string[] = [];
    const hook = createServer((req, res) => {
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => {
        bodies.push(b);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
      await writeFile(join(dir, 'targets.yaml'), inventory('notify:\n  webhook: env:HOOK\n'));
      await writeFile(join(dir, 'production.token'), oldKey, { mode: 0o600 });
      const r = await cli(['rotate', '--yes'], { NEW_KEY: newKey, HOOK: url });
      expect(r.code, r.stderr).toBe(0);
      expect(bodies).toHaveLength(1);
      const state = [await readFile(join(dir, '.keyrot', 'journal', 'production.ndjson'), 'utf8'), await readFile(join(dir, '.keyrot', 'audit.ndjson'), 'utf8')].join('\n');
      expectNotGuessable(state, [oldKey, newKey]);
      expectNotGuessable(bodies.join('\n'), [oldKey, newKey]);
      // The attacker's dictionary does hold the old key: only its public fingerprint would have matched.
      expect(dictionary).toContain(oldKey);
      expect(r.stdout + r.stderr).not.toContain(oldKey.slice(-4));
    } finally {
      hook.close();
    }
  }, 120_000);

  it('the same key in two environments is still flagged (one state key per inventory)', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory('', ['staging', 'production']));
    const shared = weak();
    for (const env of ['staging', 'production']) {
      await writeFile(join(dir, `${env}.token`), weak(), { mode: 0o600 });
      const r = await cli(['rotate', '-e', env, '--yes'], { NEW_KEY: shared });
      expect(r.code, r.stderr).toBe(0);
    }
    const s = await cli(['status', '--json'], {});
    const envs = JSON.parse(s.stdout).environments as Array<{ env: string; sharedWith: string[]; key: { fingerprint: string } }>;
    expect(envs.find((e) => e.env === 'staging')!.sharedWith).toEqual(['production']);
    expect(guessed.get(envs[0]!.key.fingerprint)).toBeUndefined();
  }, 120_000);

  it('keyrot scan still recognises a retired generic key by its (keyed) fingerprint', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory());
    const oldKey = weak();
    await writeFile(join(dir, 'production.token'), oldKey, { mode: 0o600 });
    expect((await cli(['rotate', '--yes'], { NEW_KEY: weak().replace('-pass-', '-pazz-') })).code).toBe(0);
    await writeFile(join(dir, 'notes.env'), `API_TOKEN=${oldKey}\n`);
    const r = await cli(['scan', 'notes.env', '--json'], {});
    expect(r.code, r.stderr).toBe(1);
    const findings = JSON.parse(r.stdout).findings as Array<{ kind: string; file: string }>;
    expect(findings).toEqual([expect.objectContaining({ kind: 'retired', file: expect.stringContaining('notes.env') })]);
    expect(r.stdout).not.toContain(oldKey);
  }, 120_000);
});

describe('generic keys (cluster mode: the state ConfigMap)', () => {
  const emu = new KubernetesEmulator();
  let kubeconfig: string;
  beforeAll(async () => {
    await emu.start();
  });
  afterAll(() => emu.stop());

  it('the ConfigMap anyone with get on it reads gives no guessable fingerprint; the key is in a Secret of its own', async () => {
    emu.allowAll();
    emu.seedNamespace('keyrot');
    kubeconfig = await emu.writeKubeconfig(join(dir, 'kubeconfig'));
    await writeFile(join(dir, 'targets.yaml'), inventory('state: { type: kubernetes, namespace: keyrot, name: fpcheck }\n'));
    const oldKey = weak();
    await writeFile(join(dir, 'production.token'), oldKey, { mode: 0o600 });
    const r = await cli(['rotate', '--yes'], { NEW_KEY: weak().replace('-pass-', '-pazz-'), KUBECONFIG: kubeconfig });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("generated keyrot's state key in Secret keyrot/fpcheck-state-key");
    const cm = emu.getConfigMap('keyrot', 'fpcheck-state')!;
    expectNotGuessable(Object.values(cm.data).join('\n'), [oldKey]);
    expect(emu.getSecret('keyrot', 'fpcheck-state-key')?.data['state.key']).toMatch(/^[0-9a-f]{64}$/);
  }, 120_000);
});

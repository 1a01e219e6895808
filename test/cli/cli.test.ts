import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { getVar } from '../../src/targets/dotenv/parse.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * The CLI as a real subprocess in temp dirs: every command, every exit code of the contract,
 * a crash (SIGKILL) mid-rotation and its resume, and a canary key that must appear nowhere.
 */
const openai = new OpenAIEmulator();
const seen: CliResult[] = [];
const allKeys: string[] = [];
let dir: string;
let oldKey: string;

function key(): string {
  const k = testKey();
  allKeys.push(k);
  return k;
}

async function cli(args: string[], input?: string, env?: Record<string, string>): Promise<CliResult> {
  const r = await runCli(args, { cwd: dir, input, env });
  seen.push(r);
  return r;
}

const inventory = (endpoint: string) => `version: 1
key:
  name: OPENAI_API_KEY
  source: stdin
  endpoint: ${endpoint}
environments:
  local:
    targets:
      - type: dotenv
        name: app-env
        path: app/.env
      - type: file
        name: key-file
        path: secrets/openai_api_key
`;

async function readTargets(): Promise<{ env: string | null; file: string }> {
  const env = getVar(await readFile(join(dir, 'app/.env'), 'utf8'), 'OPENAI_API_KEY');
  const file = await readFile(join(dir, 'secrets/openai_api_key'), 'utf8');
  return { env, file: file.trim() };
}

beforeAll(async () => {
  await openai.start();
});

afterAll(async () => {
  await openai.stop();
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-cli-'));
  oldKey = key();
  openai.addKey(oldKey);
  await mkdir(join(dir, 'app'));
  await mkdir(join(dir, 'secrets'));
  await writeFile(join(dir, 'app/.env'), `# app\nPORT=3000\nOPENAI_API_KEY=${oldKey}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'secrets/openai_api_key'), oldKey + '\n', { mode: 0o600 });
  await writeFile(join(dir, 'targets.yaml'), inventory(openai.endpoint));
  return async () => {
    // Invariant 3: no key value in the state directory, whatever the test did.
    const state = join(dir, '.keyrot');
    for (const f of await readdir(state, { recursive: true }).catch(() => [] as string[])) {
      const text = await readFile(join(state, f), 'utf8').catch(() => '');
      for (const k of allKeys) expect(text, `state file ${f}`).not.toContain(k);
    }
    await rm(dir, { recursive: true, force: true });
  };
});

describe('help', () => {
  it('keyrot --help lists every command and the exit codes', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['plan', 'rotate', 'emergency', 'revoke', 'resume', 'status', 'verify', 'history', 'demo']) expect(r.stdout).toContain(c);
    expect(r.stdout).toMatch(/3 another rotation holds the lock/);
  });

  it.each(['plan', 'rotate', 'emergency', 'revoke', 'resume', 'status', 'verify', 'history', 'demo'])('keyrot %s --help', async (c) => {
    const r = await cli([c, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: keyrot ${c}`);
    if (c !== 'demo') expect(r.stdout).toContain('--config');
  });

  it('an unknown command or option is a usage error (exit 2)', async () => {
    expect((await cli(['rotat'])).code).toBe(2);
    expect((await cli(['plan', '--bogus'])).code).toBe(2);
  });
});

describe('plan', () => {
  it('shows every target and writes nothing (exit 0)', async () => {
    const r = await cli(['plan']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('app-env');
    expect(r.stdout).toContain('key-file');
    expect(r.stdout).toMatch(/sk-proj-\.\.\./);
    expect(await readTargets()).toEqual({ env: oldKey, file: oldKey });
  });

  it('--json is machine-readable', async () => {
    const r = await cli(['plan', '--json']);
    const j = JSON.parse(r.stdout);
    expect(j.env).toBe('local');
    expect(j.targets).toHaveLength(2);
    expect(j.targets[0].current.fingerprint).toMatch(/^[0-9a-f]{12}$/);
    expect(j.drift).toBe(false);
  });

  it('warns of drift (a rotation fixes it: exit 0) and reports a target that is not ready (exit 1)', async () => {
    await writeFile(join(dir, 'secrets/openai_api_key'), key());
    const r = await cli(['plan']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/warning: drift/);
    await writeFile(join(dir, 'targets.yaml'), inventory(openai.endpoint).replace('secrets/openai_api_key', 'missing/dir/key'));
    const r2 = await cli(['plan']);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/missing\/dir/);
  });

  it('an inventory error is exit 2 with file:line:column', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory(openai.endpoint).replace('type: file', 'type: flie'));
    const r = await cli(['plan']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/targets\.yaml:\d+:\d+: .*unknown target type "flie" \(did you mean "file"\?\); valid types: .*dotenv/);
  });

  it('a missing credential reference is reported by plan, not a crash', async () => {
    await writeFile(
      join(dir, 'targets.yaml'),
      inventory(openai.endpoint) + '      - type: aws-secrets-manager\n        secret: app/key\n        region: us-east-1\n        endpoint: http://127.0.0.1:9\n',
    );
    const r = await cli(['plan']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/aws-secrets-manager/);
    expect(r.stderr).not.toMatch(/unexpected error/);
  });
});

describe('rotate, status, revoke', () => {
  it('rotates from stdin, ends awaiting revocation; revoke records it', async () => {
    const newKey = key();
    openai.addKey(newKey);
    const r = await cli(['rotate', '--new-key', 'stdin', '--yes'], newKey + '\n');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/awaiting revocation/);
    expect(await readTargets()).toEqual({ env: newKey, file: newKey });

    const s = await cli(['status', '--json']);
    expect(s.code).toBe(0);
    const st = JSON.parse(s.stdout).environments[0];
    expect(st.pendingRevocation.fingerprint).toMatch(/^[0-9a-f]{12}$/);
    expect(st.lastRotation.outcome).toBe('awaiting-revocation');

    // A second rotation waits for the revocation of the first.
    const again = await cli(['rotate', '--yes'], key() + '\n');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/awaiting revocation/);

    // Without a terminal, revoke needs --yes (exit 2); then it records it (exit 0); then nothing is left (exit 1).
    expect((await cli(['revoke'])).code).toBe(2);
    const rv = await cli(['revoke', '--yes']);
    expect(rv.code, rv.stderr).toBe(0);
    expect(rv.stdout).toMatch(/revoked/);
    expect((await cli(['revoke', '--yes'])).code).toBe(1);
    const s2 = JSON.parse((await cli(['status', '--json'])).stdout).environments[0];
    expect(s2.lastRotation.outcome).toBe('completed');
    expect(s2.pendingRevocation).toBeNull();
  });

  it('a key OpenAI rejects is refused before any write (exit 1)', async () => {
    const bad = key(); // never added to the emulator
    const r = await cli(['rotate', '--yes'], bad + '\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/OpenAI rejected the key .* \(401 invalid_api_key\).*Nothing was written/);
    expect(await readTargets()).toEqual({ env: oldKey, file: oldKey });
  });

  it('the same key as the current one is refused (exit 1)', async () => {
    const r = await cli(['rotate', '--yes'], oldKey + '\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already hold/);
  });

  it('usage errors exit 2: prompt without a terminal, a key on the command line', async () => {
    const r = await cli(['rotate', '--new-key', 'prompt', '--yes']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/no terminal/);
    const literal = key();
    const r2 = await cli(['rotate', '--new-key', literal]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).not.toContain(literal);
  });

  it('a second rotation while one holds the lock exits 3', async () => {
    await mkdir(join(dir, '.keyrot/locks'), { recursive: true });
    // This test process is alive: its lock is not stale.
    await writeFile(join(dir, '.keyrot/locks/local.lock'), JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString(), command: 'rotate' }));
    const r = await cli(['rotate', '--yes'], key() + '\n');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/locked by rotate \(pid \d+ on /);
  });

  it('resume and revoke also exit 3 while another rotation holds the lock; --json failures are JSON', async () => {
    await mkdir(join(dir, '.keyrot/locks'), { recursive: true });
    await writeFile(join(dir, '.keyrot/locks/local.lock'), JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString(), command: 'rotate' }));
    expect((await cli(['resume'])).code).toBe(3);
    const rv = await cli(['revoke', '--yes', '--json']);
    expect(rv.code).toBe(3);
    expect(JSON.parse(rv.stdout).error).toMatchObject({ exitCode: 3, message: expect.stringMatching(/locked by rotate/) });
  });

  it('two rotations started at the same moment: exactly one rotates, the other is refused', async () => {
    const [k1, k2] = [key(), key()];
    openai.addKey(k1);
    openai.addKey(k2);
    const results = await Promise.all([cli(['rotate', '--yes', '--json'], k1 + '\n'), cli(['rotate', '--yes', '--json'], k2 + '\n')]);
    const codes = results.map((r) => r.code).sort();
    // The loser either finds the lock (3) or, if it starts after the winner finished, the pending revocation (1).
    expect(codes[0]).toBe(0);
    expect([1, 3]).toContain(codes[1]);
    const held = await readTargets();
    expect(held.env).toBe(held.file);
    expect([k1, k2]).toContain(held.env);
  });

  it('a stale lock (dead process) does not block', async () => {
    await mkdir(join(dir, '.keyrot/locks'), { recursive: true });
    await writeFile(join(dir, '.keyrot/locks/local.lock'), JSON.stringify({ pid: 2 ** 22 + 4321, host: hostname(), at: new Date().toISOString() }));
    const k = key();
    openai.addKey(k);
    const r = await cli(['rotate', '--yes'], k + '\n');
    expect(r.code, r.stderr).toBe(0);
  });

  it('rotate --dry-run is plan', async () => {
    const r = await cli(['rotate', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Nothing was written/);
  });
});

describe('crash and resume', () => {
  it('a rotation killed mid-write is resumed from the journal (new key read back from a target)', async () => {
    const newKey = key();
    openai.addKey(newKey);
    const r = await cli(['rotate', '--yes'], newKey + '\n', { KEYROT_FAILPOINTS: 'after-write:app-env' });
    expect(r.signal).toBe('SIGKILL');
    const s = await cli(['status']);
    expect(s.code).toBe(1);
    expect(s.stdout).toMatch(/interrupted/);
    expect((await cli(['rotate', '--yes'], key() + '\n')).code).toBe(1); // must resume first

    const res = await cli(['resume']);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    expect(res.stdout).toMatch(/awaiting revocation/);
    expect(await readTargets()).toEqual({ env: newKey, file: newKey });
  });

  it('resume --rollback puts every target back on the old key', async () => {
    const newKey = key();
    openai.addKey(newKey);
    const r = await cli(['rotate', '--yes'], newKey + '\n', { KEYROT_FAILPOINTS: 'after-write:app-env' });
    expect(r.signal).toBe('SIGKILL');
    let res = await cli(['resume', '--rollback', '--json']);
    if (res.code === 1) {
      // Both writes landed before the kill: no target holds the old key, which keyrot never
      // stores, so the rollback asks for it.
      const rep = JSON.parse(res.stdout);
      expect(rep.targets.every((t: { error?: string }) => /the old key is not known/.test(t.error ?? ''))).toBe(true);
      expect(rep.messages.join(' ')).toMatch(/keyrot resume -e \S+ --rollback --old-key SOURCE/);
      res = await cli(['resume', '--rollback', '--old-key', 'stdin', '--json'], oldKey + '\n');
    }
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).outcome).toBe('rolled-back');
    expect(await readTargets()).toEqual({ env: oldKey, file: oldKey });
  });

  it('an undo that needs the old key names only the way that can work: plain resume retries the undo, it never goes forward', async () => {
    const newKey = key();
    openai.addKey(newKey);
    // Killed after verifying the first target: both writes landed, no target holds the old key.
    const r = await cli(['rotate', '--yes'], newKey + '\n', { KEYROT_FAILPOINTS: 'after-verify:app-env' });
    expect(r.signal).toBe('SIGKILL');
    const undo = await cli(['resume', '--rollback', '--json']);
    expect(undo.code).toBe(1);
    const said = JSON.parse(undo.stdout).messages.join(' ') as string;
    expect(said).toMatch(/give it back with `keyrot resume -e \S+ --rollback --old-key SOURCE`/);
    expect(said).not.toMatch(/finish the rotation/);
    // What the message says of plain resume holds: it retries the undo and asks for the old key again.
    const plain = await cli(['resume', '--json']);
    expect(plain.code).toBe(1);
    expect(JSON.parse(plain.stdout).outcome).toBe('interrupted');
    expect(JSON.parse(plain.stdout).messages.join(' ')).toMatch(/--rollback --old-key SOURCE/);
    const back = await cli(['resume', '--rollback', '--old-key', 'stdin', '--json'], oldKey + '\n');
    expect(back.code, back.stderr).toBe(0);
    expect(await readTargets()).toEqual({ env: oldKey, file: oldKey });
    // Restored now: the earlier attempts' "cannot restore" is no longer any target's problem.
    const targets = JSON.parse(back.stdout).targets as Array<{ name: string; error?: string }>;
    expect(targets.map((t) => [t.name, t.error])).toEqual([['app-env', undefined], ['key-file', undefined]]);
  });

  it('resume --new-key with a different key is refused', async () => {
    const newKey = key();
    openai.addKey(newKey);
    await cli(['rotate', '--yes'], newKey + '\n', { KEYROT_FAILPOINTS: 'after-start' });
    const res = await cli(['resume', '--new-key', 'stdin'], key() + '\n');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/use the same key, or undo with `keyrot resume -e \S+ --rollback`/);
    const ok = await cli(['resume', '--new-key', 'stdin'], newKey + '\n');
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('resume with nothing interrupted exits 1', async () => {
    const r = await cli(['resume']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/journal is empty/);
  });
});

describe('emergency, verify, history', () => {
  it('emergency rotates with an incident record and a checklist', async () => {
    const newKey = key();
    openai.addKey(newKey);
    const r = await cli(['emergency', '--yes', '--reason', 'key pasted in a public issue'], newKey + '\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Emergency checklist/);
    expect(r.stdout).toMatch(/\[done\] +Generate a new key/);
    expect(r.stdout).toMatch(/\[you\] +Revoke the compromised key/);
    expect(r.stdout).toMatch(/\[skipped\] +Review usage logs: key.admin is not configured/);
    expect(r.stdout).toMatch(/\[done\] +Audit your codebase for the leaked key: keyrot scan: no key found/);
    const h = await cli(['history', '--json']);
    const events = JSON.parse(h.stdout).entries.map((e: { event: string }) => e.event);
    expect(events).toContain('incident.opened');
    expect(events).toContain('incident.checklist');
  });

  it('emergency --revoke-first --yes completes without a revocation step', async () => {
    const newKey = key();
    openai.addKey(newKey);
    const r = await cli(['emergency', '--revoke-first', '--yes', '--json'], newKey + '\n');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.outcome).toBe('completed');
    expect(j.checklist[0].state).toBe('done');
  });

  it('verify: exit 0 when all agree and live, exit 1 on drift', async () => {
    expect((await cli(['verify'])).code).toBe(0);
    await writeFile(join(dir, 'secrets/openai_api_key'), key());
    const r = await cli(['verify', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).drift).toBe(true);
  });

  it('verify: exit 1 when the key the targets hold is not live', async () => {
    openai.revokeKey(oldKey);
    const r = await cli(['verify']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Not live/);
  });

  it('history: newest first; a tampered audit log exits 1', async () => {
    const k = key();
    openai.addKey(k);
    await cli(['rotate', '--yes'], k + '\n');
    const h = await cli(['history']);
    expect(h.code).toBe(0);
    expect(h.stdout.indexOf('rotation.awaiting-revocation')).toBeLessThan(h.stdout.indexOf('rotation.started'));
    const path = join(dir, '.keyrot/audit.ndjson');
    const lines = (await readFile(path, 'utf8')).trim().split('\n');
    await writeFile(path, [lines[1], lines[0], ...lines.slice(2)].join('\n') + '\n');
    const bad = await cli(['history']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/FAILS verification/);
    expect(bad.stderr).toMatch(/\[chain\]: entry \d+ does not follow/);
  });
});

describe('demo', () => {
  it('runs a full narrated rotation on the built-in emulators', async () => {
    const userConfig = join(dir, 'user-config');
    const r = await cli(['demo'], undefined, { XDG_CONFIG_HOME: userConfig });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout).toMatch(/Demo complete/);
    for (const step of ['1. discover', '2. plan', '3. rotate', '4. verify', '6. revoke']) expect(r.stdout).toContain(step);
    // discover found the Render service the demo inventory left out; the rotation then covered it.
    expect(r.stdout).toMatch(/render service keyrot-demo-forgotten-worker \(srv-\w+\) OPENAI_API_KEY +render +no/);
    expect(r.stdout).toMatch(/keyrot found render service keyrot-demo-forgotten-worker \(srv-\w+\) holding the key/);
    expect(r.stdout).toMatch(/Demo complete: \d+ targets \(1 of them found by keyrot discover\) rotated/);
    // Its throw-away state's key and anchors went with it: nothing in the user's config directory.
    expect(existsSync(userConfig)).toBe(false);
    expect(r.stderr).toMatch(/Verified: \d+ entries' MACs/);
  }, 120_000);
});

describe('invariant 3: no key in any output', () => {
  it('no stdout or stderr of any command above contains a key', () => {
    expect(seen.length).toBeGreaterThan(20);
    for (const r of seen) {
      for (const k of allKeys) {
        expect(r.stdout).not.toContain(k);
        expect(r.stderr).not.toContain(k);
      }
    }
  });
});

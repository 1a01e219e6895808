import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HerokuEmulator } from '../../emulators/heroku/emulator.ts';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { getVar } from '../../src/targets/dotenv/parse.ts';
import { latestRotation } from '../../src/machine/state.ts';
import { readJournal } from '../../src/state/journal.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';
import { runCliOnPty, type PtyExit, type PtySession } from '../helpers/pty.ts';

/**
 * Ctrl-C, Ctrl-D and signals on a real terminal (a pseudo-terminal, test/helpers/pty.ts): each
 * ends the command with exit 130 (143 for SIGTERM) and one line saying where things stand, a
 * rotation whose targets were all verified stays awaiting revocation, and no keystroke typed while
 * a key prompt is due is echoed. Every command runs with `-c inventory.yaml --state-dir st`, so
 * each printed next step must carry both.
 */
const openai = new OpenAIEmulator();
const heroku = new HerokuEmulator();
const FLAGS = ['-c', 'inventory.yaml', '--state-dir', 'st'];
/** Each test runs keyrot two to four times on a terminal: generous on a loaded machine. */
const TIMEOUT = 120_000;
const STATE_FLAGS = '-c inventory.yaml --state-dir st';
let dir: string;
let oldKey: string;
let herokuToken: string;

beforeAll(async () => {
  await openai.start();
  await heroku.start();
});
afterAll(async () => {
  await openai.stop();
  await heroku.stop();
});

/** A new key the OpenAI emulator accepts (the live check). */
function newKey(): string {
  const k = testKey();
  openai.addKey(k);
  return k;
}

async function inventory(o: { source?: string; heroku?: boolean; webhook?: boolean } = {}): Promise<void> {
  const herokuTarget = `
      - type: heroku
        app: api
        endpoint: ${heroku.url}
        token: env:HEROKU_TOKEN`;
  await writeFile(
    join(dir, 'inventory.yaml'),
    `version: 1
key:
  name: OPENAI_API_KEY
  source: ${o.source ?? 'prompt'}
  endpoint: ${openai.endpoint}
${o.webhook ? 'notify:\n  webhook: env:KEYROT_WEBHOOK\n' : ''}environments:
  prod:
    targets:
      - type: dotenv
        name: app-env
        path: app/.env
      - type: file
        name: key-file
        path: secrets/openai_api_key${o.heroku ? herokuTarget : ''}
`,
  );
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-tty-'));
  oldKey = testKey();
  openai.addKey(oldKey);
  await mkdir(join(dir, 'app'));
  await mkdir(join(dir, 'secrets'));
  await writeFile(join(dir, 'app/.env'), `PORT=3000\nOPENAI_API_KEY=${oldKey}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'secrets/openai_api_key'), oldKey + '\n', { mode: 0o600 });
  herokuToken = heroku.addToken({ scopes: ['read-protected', 'write-protected'] });
  heroku.seedApp('api', { OPENAI_API_KEY: oldKey });
  heroku.server.clearFaults();
  await inventory();
  return () => rm(dir, { recursive: true, force: true });
});

const env = () => ({ HEROKU_TOKEN: herokuToken });
const pty = (args: string[], extra: Record<string, string> = {}) => runCliOnPty([...args, ...FLAGS], { cwd: dir, env: { ...env(), ...extra } });
const cli = (args: string[], input?: string) => runCli([...args, ...FLAGS], { cwd: dir, input, env: env() });

async function targets(): Promise<{ env: string | null; file: string }> {
  return {
    env: getVar(await readFile(join(dir, 'app/.env'), 'utf8'), 'OPENAI_API_KEY'),
    file: (await readFile(join(dir, 'secrets/openai_api_key'), 'utf8')).trim(),
  };
}

/** Types the key at both key prompts. */
async function enterKey(t: PtySession, key: string): Promise<void> {
  await t.waitFor('Paste the new key');
  t.type(key + '\r');
  await t.waitFor('Paste it again');
  t.type(key + '\r');
}

/** Exit 130 with the terminal as it was (echo and line editing on), and the one line. */
async function interrupted(t: PtySession, line: RegExp): Promise<PtyExit> {
  const exit = await t.exited;
  expect(exit, t.output()).toMatchObject({ code: 130, echo: true, icanon: true, isig: true });
  expect(t.output()).toMatch(line);
  expect(t.output()).not.toMatch(/a bug in keyrot|unsettled top-level await/);
  return exit;
}

/** Exit 130 "nothing was written": the files hold the old key, the journal is empty. */
async function nothingWritten(t: PtySession): Promise<void> {
  await interrupted(t, /keyrot: interrupted: nothing was written\r?\n/);
  expect(await targets()).toEqual({ env: oldKey, file: oldKey });
  expect(await readJournal(join(dir, 'st'), 'prod')).toEqual([]);
}

describe('at the key prompt', () => {
  it('Ctrl-C: exit 130, "nothing was written", journal untouched, files unchanged', async () => {
    const t = pty(['rotate']);
    await t.waitFor('Paste the new key');
    t.type('\x03');
    await nothingWritten(t);
  }, TIMEOUT);

  it('Ctrl-C at the second (confirm) prompt: the same', async () => {
    const t = pty(['rotate']);
    await t.waitFor('Paste the new key');
    t.type(newKey() + '\r');
    await t.waitFor('Paste it again');
    t.type('\x03');
    await nothingWritten(t);
  }, TIMEOUT);

  it('Ctrl-D (end of input): exit 130, nothing was written', async () => {
    const t = pty(['rotate']);
    await t.waitFor('Paste the new key');
    t.type('\x04');
    await nothingWritten(t);
  }, TIMEOUT);
});

it("Ctrl-C at emergency's typed confirmation: exit 130, nothing written, nothing revoked", async () => {
  const t = pty(['emergency', '--revoke-first']);
  await t.waitFor('Type REVOKED');
  t.type('REV\x03');
  await nothingWritten(t);
  const audit = await readFile(join(dir, 'st', 'audit.ndjson'), 'utf8');
  expect(audit).toMatch(/"incident.update".*interrupted: nothing was written/);
  expect(audit).not.toContain('key.revoked');
}, TIMEOUT);

it('Ctrl-C at the key prompt after the old key was revoked first says so', async () => {
  const t = pty(['emergency', '--revoke-first']);
  await t.waitFor('Type REVOKED');
  t.type('REVOKED\r');
  await t.waitFor('Paste the new key');
  t.type('\x03');
  await interrupted(
    t,
    /keyrot: interrupted: nothing was written, but the old key was revoked first: apps still using it are failing; run `keyrot emergency -e prod -c inventory.yaml --state-dir st` again now/,
  );
  expect(await targets()).toEqual({ env: oldKey, file: oldKey });
}, TIMEOUT);

it('Ctrl-D at the revocation prompt keeps the rotation awaiting revocation; status shows it, revoke finishes it', async () => {
  const key = newKey();
  const t = pty(['rotate']);
  await enterKey(t, key);
  await t.waitFor('Have you revoked the old key?');
  t.type('\x04');
  await interrupted(
    t,
    new RegExp(`keyrot: interrupted: every target holds the new key; the rotation awaits revocation: revoke the old key sk-proj-\\.\\.\\.${oldKey.slice(-4)} \\([0-9a-f]+\\), then run \`keyrot revoke -e prod ${STATE_FLAGS}\``),
  );
  expect(await targets()).toEqual({ env: key, file: key });
  expect((await latestRotation(join(dir, 'st'), 'prod'))?.outcome).toBe('awaiting-revocation');
  const audit = await readFile(join(dir, 'st', 'audit.ndjson'), 'utf8');
  expect(audit).toContain('"rotation.awaiting-revocation"');
  const status = await cli(['status']);
  expect(status.stdout).toMatch(/pending\s+revoke sk-proj-/);
  expect(status.stdout).toContain(`then: keyrot revoke -e prod ${STATE_FLAGS}`);
  const done = await cli(['revoke', '--yes']);
  expect(done.code, done.stderr).toBe(0);
  expect(done.stdout).toContain('Rotation complete');
}, TIMEOUT);

it('Ctrl-C at the revocation prompt: the same, and Ctrl-C at `keyrot revoke` asking again changes nothing', async () => {
  const key = newKey();
  const t = pty(['rotate']);
  await enterKey(t, key);
  await t.waitFor('Have you revoked the old key?');
  t.type('\x03');
  await interrupted(t, /the rotation awaits revocation: revoke the old key .*, then run `keyrot revoke -e prod -c inventory.yaml --state-dir st`/);
  expect((await latestRotation(join(dir, 'st'), 'prod'))?.outcome).toBe('awaiting-revocation');

  const again = pty(['revoke']);
  await again.waitFor('Have you revoked the old key?');
  again.type('\x03');
  await interrupted(again, /keyrot: interrupted: every target holds the new key; the rotation awaits revocation/);
  expect((await latestRotation(join(dir, 'st'), 'prod'))?.outcome).toBe('awaiting-revocation');
  const done = await cli(['revoke', '--yes']);
  expect(done.code, done.stderr).toBe(0);
  expect((await latestRotation(join(dir, 'st'), 'prod'))?.outcome).toBe('completed');
}, TIMEOUT);

describe('Ctrl-C while the rotation writes', () => {
  it('stops after the current step, exit 130 "resumable"; resume --new-key prompt Ctrl-C keeps it so; resume finishes', async () => {
    await inventory({ heroku: true });
    heroku.server.failNext({ method: 'PATCH', path: '/apps/api/config-vars', delayMs: 2500 });
    const key = newKey();
    const t = pty(['rotate']);
    await enterKey(t, key);
    await t.waitFor(/write/);
    await waitUntil(() => heroku.server.requests.some((r) => r.method === 'PATCH'));
    t.type('\x03'); // raw mode (keystrokes held): a byte, turned into the same stop request
    await t.waitFor('keyrot: stopping after the current step (press Ctrl-C again to force)');
    await interrupted(t, /keyrot: interrupted: the rotation is resumable: `keyrot resume -e prod -c inventory.yaml --state-dir st`/);
    const journal = await latestRotation(join(dir, 'st'), 'prod');
    expect(journal?.outcome).toBeUndefined();
    expect(journal?.events.some((e) => e.step === 'write')).toBe(true);

    const r = pty(['resume', '--new-key', 'prompt']);
    await r.waitFor('Paste the new key');
    r.type('\x03');
    await interrupted(r, /keyrot: interrupted: nothing was written; the rotation is resumable: `keyrot resume -e prod -c inventory.yaml --state-dir st`/);

    const done = await cli(['resume']);
    expect(done.code, done.stderr).toBe(0);
    expect((await latestRotation(join(dir, 'st'), 'prod'))?.outcome).toBe('awaiting-revocation');
    expect(await targets()).toEqual({ env: key, file: key });
    expect(heroku.getVars('api').OPENAI_API_KEY).toBe(key);
  }, TIMEOUT);

  it('a second Ctrl-C forces the quit (exit 130 at once); the journal lets resume finish', async () => {
    // The stop lets the rotation end cleanly, then the notification webhook hangs: a second
    // Ctrl-C does not wait for it.
    const hook: Server = createServer(() => {});
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    try {
      await inventory({ heroku: true, source: 'file:new.key', webhook: true });
      const key = newKey();
      await writeFile(join(dir, 'new.key'), key, { mode: 0o600 });
      heroku.server.failNext({ method: 'PATCH', path: '/apps/api/config-vars', delayMs: 2500 });
      const port = (hook.address() as { port: number }).port;
      const t = pty(['rotate'], { KEYROT_WEBHOOK: `http://127.0.0.1:${port}/hook` });
      await t.waitFor(/write/);
      await waitUntil(() => heroku.server.requests.some((r) => r.method === 'PATCH'));
      t.type('\x03'); // echo on here: the terminal sends SIGINT
      await t.waitFor('press Ctrl-C again to force');
      await new Promise((r) => setTimeout(r, 1500));
      const before = Date.now();
      t.type('\x03');
      await interrupted(t, /keyrot: forced quit: the rotation is resumable: `keyrot resume -e prod -c inventory.yaml --state-dir st`/);
      expect(Date.now() - before).toBeLessThan(8000); // the webhook would hold it 30 s (10 s timeout, 3 attempts)
      const done = await cli(['resume']);
      expect(done.code, done.stderr).toBe(0);
      expect(await targets()).toEqual({ env: key, file: key });
    } finally {
      hook.closeAllConnections();
      await new Promise((r) => hook.close(r));
    }
  }, TIMEOUT);
});

describe('keystrokes while a key prompt is due', () => {
  it('a key typed during preflight is never echoed; the prompt says it was discarded', async () => {
    await inventory({ heroku: true });
    heroku.server.failNext({ method: 'GET', path: '/apps/api/config-vars', delayMs: 2500 });
    const early = testKey();
    const key = newKey();
    const t = pty(['rotate']);
    await t.waitFor(/preflight/);
    t.type(early + '\r');
    await t.waitFor('Paste the new key');
    expect(t.output()).not.toContain(early.slice(8, 24)); // not echoed by the terminal
    const prompt = t.output().lastIndexOf('Paste the new key');
    expect(t.output().slice(0, prompt)).toContain('keyrot: input typed before the prompt was discarded');
    await enterKey(t, key);
    await t.waitFor('Have you revoked the old key?');
    t.type('n\r');
    const exit = await t.exited;
    expect(exit, t.output()).toMatchObject({ code: 0, echo: true, icanon: true });
    // Neither the early paste (discarded) nor the key at the prompt appears on the terminal.
    expect(t.output()).not.toContain(early.slice(8, 24));
    expect(t.output()).not.toContain(key.slice(8, 24));
    expect(await targets()).toEqual({ env: key, file: key });
  }, TIMEOUT);

  it('SIGTERM while keystrokes are held: exit 143, the terminal restored', async () => {
    await inventory({ heroku: true });
    heroku.server.failNext({ method: 'GET', path: '/apps/api/config-vars', delayMs: 2500 });
    const t = pty(['rotate']);
    await t.waitFor(/preflight/);
    t.type('abc');
    t.kill('SIGTERM');
    const exit = await t.exited;
    expect(exit, t.output()).toMatchObject({ code: 143, echo: true, icanon: true, isig: true });
    expect(t.output()).toMatch(/keyrot: interrupted: nothing was written/);
    expect(t.output()).not.toContain('abc');
  }, TIMEOUT);

  it('a failed preflight (exit 1) leaves the terminal as it found it', async () => {
    await inventory({ heroku: true });
    heroku.server.failNext({ method: 'GET', path: '/apps/api/config-vars', status: 401, body: { id: 'unauthorized', message: 'Invalid credentials provided.' }, times: 5 });
    const t = pty(['rotate']);
    const exit = await t.exited;
    expect(exit, t.output()).toMatchObject({ code: 1, echo: true, icanon: true, isig: true });
    expect(t.output()).toContain('nothing was written');
  }, TIMEOUT);
});

it("emergency's printed next steps keep -c and --state-dir", async () => {
  const key = newKey();
  await writeFile(join(dir, 'new.key'), key, { mode: 0o600 });
  const r = await cli(['emergency', '--yes', '--new-key', 'file:new.key']);
  expect(r.code, r.stderr).toBe(0);
  const text = r.stdout + r.stderr;
  expect(text).toContain(`then run \`keyrot revoke -e prod ${STATE_FLAGS}\`.`);
  expect(text).toContain(`then run \`keyrot revoke -e prod ${STATE_FLAGS}\``);
  expect(text).not.toMatch(/keyrot revoke -e prod(?! -c)/);
}, TIMEOUT);

async function waitUntil(cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { HerokuEmulator } from '../../emulators/heroku/emulator.ts';
import { readAudit } from '../../src/state/audit-log.ts';
import { BIN } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';
import { runCliOnPty } from '../helpers/pty.ts';

/**
 * Ctrl-C in a command that only reads (cli/interrupt.ts `onlyReads`): a Heroku emulator takes the
 * request and never answers, so the signal always lands mid-command. The command ends at once with
 * exit 130 (143 for SIGTERM) and one line saying nothing was changed, without a stack trace, with
 * its live display erased on a terminal, and with its output piped into `head`.
 */
const heroku = new HerokuEmulator();
const FLAGS = ['-c', 'inventory.yaml', '--state-dir', 'st'];
const TIMEOUT = 90_000;
let dir: string;
let oldKey: string;
let token: string;

beforeAll(() => heroku.start());
afterAll(() => heroku.stop());

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-ro-int-'));
  oldKey = testKey();
  token = heroku.addToken({ scopes: ['read-protected', 'write-protected'] });
  heroku.seedApp('api', { OPENAI_API_KEY: oldKey });
  heroku.server.clearFaults();
  await mkdir(join(dir, 'app'));
  await writeFile(join(dir, 'app/.env'), `OPENAI_API_KEY=${oldKey}\n`, { mode: 0o600 });
  await writeFile(
    join(dir, 'inventory.yaml'),
    `version: 1
key:
  name: OPENAI_API_KEY
  source: prompt
  verify: false
environments:
  prod:
    targets:
      - type: dotenv
        name: app-env
        path: app/.env
      - type: heroku
        app: api
        endpoint: ${heroku.url}
        token: env:HEROKU_TOKEN
`,
  );
  return () => rm(dir, { recursive: true, force: true });
});

const childEnv = (extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '/tmp',
  ...(process.env.XDG_CONFIG_HOME ? { XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME } : {}),
  NO_COLOR: '1',
  HEROKU_TOKEN: token,
  ...extra,
});

/** Resolves once `method path` reached the emulator after its `from`th request (the request it will never answer). */
async function hangingRequest(method: string, path: string, from: number): Promise<void> {
  while (!heroku.server.requests.slice(from).some((r) => r.method === method && r.path === path)) await new Promise((r) => setTimeout(r, 50));
}

/** The one line, nothing that reads like a crash, and nothing written anywhere. */
async function nothingChanged(stderr: string, command: string): Promise<void> {
  expect(stderr).toContain(`keyrot: interrupted: nothing was changed (keyrot ${command} only reads)\n`);
  expect(stderr).not.toMatch(/a bug in keyrot|\n\s+at |EPIPE|Error:/);
  expect(await readFile(join(dir, 'app/.env'), 'utf8')).toBe(`OPENAI_API_KEY=${oldKey}\n`);
  expect(heroku.getVars('api').OPENAI_API_KEY).toBe(oldKey);
  expect(heroku.server.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`)).toEqual([]);
}

/**
 * Runs keyrot with its stdout piped into `head -n 1` (or, without `head`, read here) and sends it
 * `signal` once the hanging request arrived: to `head` too, as a terminal's Ctrl-C reaches the whole pipeline.
 */
function interrupted(args: string[], hang: { method: string; path: string }, o: { signal: NodeJS.Signals; head: boolean }) {
  const from = heroku.server.requests.length;
  const keyrot = spawn(process.execPath, [BIN, ...args, ...FLAGS], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const head = o.head ? spawn('head', ['-n', '1'], { stdio: [keyrot.stdout, 'ignore', 'ignore'] }) : undefined;
  let stdout = '';
  let stderr = '';
  if (!head) keyrot.stdout.on('data', (d) => (stdout += d));
  keyrot.stderr.on('data', (d) => (stderr += d));
  // 'exit', not 'close': with `head`, keyrot's stdout is head's, and this process never reads it to its end.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => keyrot.on('exit', (code, sig) => resolve({ code, signal: sig })));
  const stderrEnded = new Promise((resolve) => keyrot.stderr.on('end', resolve));
  return (async () => {
    await hangingRequest(hang.method, hang.path, from);
    head?.kill(o.signal);
    keyrot.kill(o.signal);
    const exit = await exited;
    await stderrEnded;
    return { ...exit, stdout: () => stdout, stderr: () => stderr };
  })();
}

it('Ctrl-C in `keyrot plan | head` while a provider does not answer: exit 130, one line, nothing changed', async () => {
  heroku.server.failNext({ method: 'GET', path: '/apps/api/config-vars', hang: 'headers' });
  const r = await interrupted(['plan', '-e', 'prod'], { method: 'GET', path: '/apps/api/config-vars' }, { signal: 'SIGINT', head: true });
  expect(r, r.stderr()).toMatchObject({ code: 130, signal: null });
  await nothingChanged(r.stderr(), 'plan');
}, TIMEOUT);

it('SIGTERM in `keyrot verify --json` while a provider does not answer: exit 143, the line, its JSON error document, no audit entry', async () => {
  heroku.server.failNext({ method: 'GET', path: '/apps/api/config-vars', hang: 'headers' });
  const r = await interrupted(['verify', '-e', 'prod', '--json'], { method: 'GET', path: '/apps/api/config-vars' }, { signal: 'SIGTERM', head: false });
  expect(r, r.stderr()).toMatchObject({ code: 143, signal: null });
  await nothingChanged(r.stderr(), 'verify');
  expect(JSON.parse(r.stdout())).toEqual({ error: { exitCode: 143, message: 'interrupted: nothing was changed (keyrot verify only reads)' } });
  const audit = await readAudit(join(dir, 'st'));
  expect(audit.entries.map((e) => e.event)).toEqual([]);
}, TIMEOUT);

it('Ctrl-C on a terminal while `keyrot discover` searches Heroku: the live display is erased, the cursor shown, exit 130', async () => {
  heroku.server.failNext({ method: 'GET', path: '/apps', hang: 'headers' });
  const from = heroku.server.requests.length;
  const t = runCliOnPty(['discover', '-e', 'prod', '--key', 'env:FIND_KEY', ...FLAGS], { cwd: dir, env: { HEROKU_TOKEN: token, FIND_KEY: oldKey } });
  await t.waitFor('searching');
  await hangingRequest('GET', '/apps', from);
  const drawn = t.output().length;
  t.type('\x03'); // echo on: the terminal sends SIGINT
  const exit = await t.exited;
  const out = t.output();
  expect(exit, out).toMatchObject({ code: 130, echo: true, icanon: true, isig: true });
  await nothingChanged(out.replace(/\r\n/g, '\n'), 'discover');
  // The last frame's lines erased (ESC[2K, cursor up...), the cursor shown again, then the one line and nothing after it.
  const after = out.slice(drawn);
  const line = after.indexOf('keyrot: interrupted:');
  const beforeLine = after.slice(0, line);
  const erasing = beforeLine.slice(beforeLine.lastIndexOf('\x1b[2K\x1b[1A'));
  expect(erasing, JSON.stringify(after)).toMatch(/^(\x1b\[[0-9;?]*[A-Za-z])+$/);
  expect(erasing).toContain('\x1b[?25h');
  expect(after.slice(line).replace(/\x1b\[\?25h/g, '').trim()).toBe('keyrot: interrupted: nothing was changed (keyrot discover only reads)');
}, TIMEOUT);

/**
 * A write a read-only command makes of its own (verify's audit entry, report -o's file) runs
 * `uninterrupted`: a Ctrl-C that lands during it quits only once it is done. A real process that
 * signals itself while its write is in flight (the write takes 1 s: the signal always lands in it).
 */
it('Ctrl-C during an uninterrupted write: the quit waits for the write, then the one line, exit 130', async () => {
  const marker = join(dir, 'written');
  const interrupt = new URL('../../src/cli/interrupt.ts', import.meta.url).href;
  const script = `
    import { writeFile } from 'node:fs/promises';
    import { watchInterrupts } from ${JSON.stringify(interrupt)};
    const stop = watchInterrupts().onlyReads('verify');
    const write = stop.uninterrupted(async () => {
      process.kill(process.pid, 'SIGINT');
      await new Promise((r) => setTimeout(r, 1000));
      await writeFile(${JSON.stringify(marker)}, 'done');
      process.stderr.write('write finished\\n');
    });
    await write;
    await new Promise((r) => setTimeout(r, 60_000)); // the quit ends the process before this does
    process.stderr.write('not quit\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig })));
  expect(exit, stderr).toEqual({ code: 130, signal: null });
  expect(stderr).toBe('write finished\nkeyrot: interrupted: nothing was changed (keyrot verify only reads)\n');
  expect(await readFile(marker, 'utf8')).toBe('done');
}, TIMEOUT);

it('Ctrl-C while `keyrot init --discover` searches: exit 130, "nothing was written", the inventory untouched', async () => {
  const before = await readFile(join(dir, 'inventory.yaml'), 'utf8');
  heroku.server.failNext({ method: 'GET', path: '/apps', hang: 'headers' });
  const args = ['init', '--discover', '--force', '--key', 'env:FIND_KEY', '-e', 'prod', '-c', 'inventory.yaml'];
  const from = heroku.server.requests.length;
  const keyrot = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: childEnv({ FIND_KEY: oldKey }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  keyrot.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => keyrot.on('close', (code, sig) => resolve({ code, signal: sig })));
  await hangingRequest('GET', '/apps', from);
  keyrot.kill('SIGINT');
  expect(await exited, stderr).toEqual({ code: 130, signal: null });
  expect(stderr).toContain('keyrot: interrupted: nothing was written (the inventory is written once the search is done)\n');
  expect(stderr).not.toMatch(/a bug in keyrot|\n\s+at /);
  expect(await readFile(join(dir, 'inventory.yaml'), 'utf8')).toBe(before);
}, TIMEOUT);

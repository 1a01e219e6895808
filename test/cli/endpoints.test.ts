import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { demo as herokuDemo } from '../../emulators/heroku/demo.ts';
import type { DemoProvider } from '../../emulators/demo-types.ts';
import { safeUrl } from '../../src/runtime/http.ts';
import { runCli } from '../helpers/cli.ts';
import { sendNotification } from '../../src/scheduler/notify.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { systemClock } from '../../src/runtime/clock.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * targets.yaml is code: a pull request's inventory run through `keyrot plan` in CI must not send a
 * credential in clear to a host of its choosing, and plan names every host that is not the
 * provider's own.
 */
let dir: string;
const openai = new OpenAIEmulator();
let heroku: DemoProvider;
let oldKey: string;

beforeAll(async () => {
  await openai.start();
  oldKey = testKey();
  openai.addKey(oldKey);
  const setup = await herokuDemo({ oldKey, workDir: tmpdir(), varName: 'OPENAI_API_KEY' });
  if ('skip' in setup) throw new Error(setup.skip);
  heroku = setup;
});
afterAll(async () => {
  await heroku.stop();
  await openai.stop();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-endpoints-'));
  await writeFile(join(dir, '.env'), `OPENAI_API_KEY=${oldKey}\n`, { mode: 0o600 });
  return () => rm(dir, { recursive: true, force: true });
});

const dotenvOnly = (key = '') => `version: 1\n${key}environments:\n  p:\n    targets:\n      - type: dotenv\n        path: .env\n`;

describe('plain http to another host: refused before anything is contacted', () => {
  it('a target endpoint in targets.yaml: exit 2 at file:line:column', async () => {
    const path = join(dir, 'targets.yaml');
    await writeFile(path, `version: 1\nenvironments:\n  p:\n    targets:\n      - type: heroku\n        app: api\n        endpoint: http://attacker.invalid/\n        token: env:CI_DEPLOY_TOKEN\n`);
    const r = await runCli(['plan'], { cwd: dir, env: { CI_DEPLOY_TOKEN: `tok-${testKey('')}` } });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${path}:7:19: environments.p.targets[0].endpoint: "http://attacker.invalid/": plain http:// is allowed only to a loopback address`);
  });

  it('OPENAI_BASE_URL over http to a gateway: a usage error naming the variable; nothing is written', async () => {
    await writeFile(join(dir, 'targets.yaml'), dotenvOnly());
    const env = { OPENAI_BASE_URL: 'http://llm-gateway.invalid/v1', NEW: testKey() };
    for (const args of [['plan'], ['rotate', '--new-key', 'env:NEW', '--yes']]) {
      const r = await runCli(args, { cwd: dir, env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^keyrot: OPENAI_BASE_URL: "http:\/\/llm-gateway\.invalid\/v1": plain http:\/\/ is allowed only to a loopback address/);
    }
    expect(await readFile(join(dir, '.env'), 'utf8')).toBe(`OPENAI_API_KEY=${oldKey}\n`);
  });

  it('a webhook URL over http: a usage error naming its host only', async () => {
    await writeFile(join(dir, 'targets.yaml'), dotenvOnly(`key:\n  endpoint: ${openai.endpoint}\nnotify:\n  webhook: env:HOOK\n`));
    const r = await runCli(['plan'], { cwd: dir, env: { HOOK: 'http://hooks.invalid/services/T0/B0/s3cretpath' } });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('HOOK: the URL (host hooks.invalid): plain http://');
    expect(r.stderr).not.toContain('s3cretpath');
  });
});

describe('a webhook URL read from a file (only known when sending)', () => {
  it('over http to another host: not sent, a warning naming the host only', async () => {
    await writeFile(join(dir, 'hook.url'), 'http://hooks.invalid/services/T0/B0/s3cretpath\n');
    const lines: string[] = [];
    const logger = createLogger({ write: (l) => lines.push(l) });
    const n = { text: 'x', event: 'success' as const, env: 'p', at: new Date(0).toISOString() };
    const sent = await sendNotification({ kind: 'file', path: 'hook.url', raw: 'file:hook.url' }, n, { baseDir: dir, env: {}, clock: systemClock, logger });
    expect(sent).toBe(false);
    expect(lines.join('\n')).toContain('notify.webhook file:hook.url: the URL (host hooks.invalid): plain http://');
    expect(lines.join('\n')).not.toContain('s3cretpath');
  });
});

describe('plan names every endpoint that is not the provider public one', () => {
  it('in the notes, and in --json (targets[].endpoint, keyEndpoints)', async () => {
    const inv = {
      version: 1,
      key: { endpoint: openai.endpoint, admin: { project: 'proj_1', token: 'env:OPENAI_ADMIN_KEY', endpoint: openai.endpoint } },
      environments: { p: { targets: [{ type: 'dotenv', path: '.env' }, ...heroku.targets] } },
    };
    await writeFile(join(dir, 'targets.yaml'), stringify(inv));
    const herokuUrl = String(heroku.targets[0]!.endpoint);
    const json = await runCli(['plan', '--json'], { cwd: dir, env: heroku.env });
    expect(json.code, json.stderr).toBe(0);
    const plan = JSON.parse(json.stdout);
    expect(plan.targets[0].endpoint).toBeUndefined();
    expect(plan.targets[1].endpoint).toBe(safeUrl(herokuUrl));
    expect(plan.keyEndpoints).toEqual([
      { what: 'live check', url: openai.endpoint, from: 'key.endpoint', receives: 'the new key' },
      { what: 'Admin API', url: openai.endpoint, from: 'key.admin.endpoint', receives: 'the admin key' },
    ]);
    const human = await runCli(['plan'], { cwd: dir, env: heroku.env });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(`talks to ${plan.targets[1].endpoint} (endpoint:), not https://api.heroku.com: that host receives this target's credentials`);
    expect(human.stdout).toContain(`live check: ${openai.endpoint} (key.endpoint), not https://api.openai.com/v1: that host receives the new key`);
  });
});

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * The unattended path end to end through the real CLI: a key minted through the OpenAI Admin API
 * (a project service account), the old key revoked through it once it shows no use since the
 * switch, an emergency's usage review, and the webhook notification.
 */
const emu = new OpenAIEmulator();
let dir: string;
let adminKey: string;
let oldKey: string;
const outputs: CliResult[] = [];
const PROJECT = 'proj_keyrot_test';

const inventory = (revokeMode: 'openai-admin' | 'prompt', extra = '') => `version: 1
key:
  source: openai-admin
  endpoint: ${emu.endpoint}
  admin:
    project: ${PROJECT}
    token: env:OPENAI_ADMIN_KEY
    endpoint: ${emu.endpoint}
    expires: 90d
revoke:
  mode: ${revokeMode}
  disuse:
    margin: 1s
    limit: 3s
    poll: 200ms
${extra}environments:
  prod:
    targets:
      - type: file
        name: key-file
        path: openai_api_key
`;

async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await runCli(args, { cwd: dir, env: { OPENAI_ADMIN_KEY: adminKey, ...env } });
  outputs.push(r);
  return r;
}

beforeAll(async () => {
  await emu.start();
  adminKey = emu.addAdminKey();
});
afterAll(() => emu.stop());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-admin-'));
  oldKey = testKey();
  emu.addUserKey(PROJECT, oldKey);
  await writeFile(join(dir, 'openai_api_key'), oldKey, { mode: 0o600 });
  return () => rm(dir, { recursive: true, force: true });
});

describe('OpenAI Admin API', () => {
  it('mints the new key as a service account and revokes the old key once it is unused', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory('openai-admin'));
    const r = await cli(['rotate', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.outcome).toBe('completed');
    const held = (await readFile(join(dir, 'openai_api_key'), 'utf8')).trim();
    expect(held).not.toBe(oldKey);
    expect(emu.isValid(held)).toBe(true);
    // The service account's name says keyrot, the environment and the rotation id.
    const sa = emu.serviceAccounts(PROJECT).find((s) => s.name.includes(rep.rotation));
    expect(sa?.name).toMatch(/keyrot.*prod/);
    // The old (user-owned) key is deleted: OpenAI now rejects it.
    expect(emu.isValid(oldKey)).toBe(false);
    expect(rep.messages.join(' ')).toMatch(/revoked through the OpenAI Admin API/);
  }, 30_000);

  it('does not revoke a key still in use after the switch, says so, and revokes once it is idle', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory('openai-admin'));
    // Something outside the inventory keeps using the old key: a side service's .env holds it.
    await mkdir(join(dir, 'side'));
    await writeFile(join(dir, 'side', '.env'), `OPENAI_API_KEY=${oldKey}\n`);
    const timer = setInterval(() => emu.useKey(oldKey, Date.now()), 100);
    let r: CliResult;
    try {
      r = await cli(['rotate', '--yes', '--json']);
    } finally {
      clearInterval(timer);
    }
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.outcome).toBe('awaiting-revocation');
    expect(rep.messages.join(' ')).toMatch(/Not revoked: the old key .* was still used at .* after every target of "prod" switched/);
    // The disuse gate says where a quick discovery found the old key, and how to search everywhere.
    expect(rep.messages.join(' ')).toContain('It is still held at side/.env:1: give those the new key');
    expect(rep.messages.join(' ')).toContain('`keyrot discover -e prod --key env:OLD_KEY` (the old key in OLD_KEY)');
    expect(r.stdout + r.stderr).not.toContain(oldKey);
    expect(emu.isValid(oldKey)).toBe(true);
    // While the straggler runs, `keyrot revoke` refuses too (disuse is judged from the moment it runs).
    const timer2 = setInterval(() => emu.useKey(oldKey, Date.now()), 100);
    try {
      const again = await cli(['revoke', '--yes']);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/still used/);
    } finally {
      clearInterval(timer2);
    }
    expect(emu.isValid(oldKey)).toBe(true);
    // The operator found and stopped it (last_used_at has whole-second precision, so the next
    // second starts clean): revoke waits out the margin, sees no use, revokes.
    await new Promise((r) => setTimeout(r, 1100));
    const done = await cli(['revoke', '--yes']);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/revoked through the OpenAI Admin API/);
    expect(emu.isValid(oldKey)).toBe(false);
  }, 30_000);

  it('an emergency revokes at once (no disuse wait), reviews the old key usage and scans the tree', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory('openai-admin'));
    emu.useKey(oldKey, Date.now() - 3_600_000, { model: 'gpt-4o-mini', requests: 42, inputTokens: 1000, outputTokens: 500 });
    const r = await cli(['emergency', '--yes', '--json', '--reason', 'key in a public gist']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.outcome).toBe('completed');
    expect(emu.isValid(oldKey)).toBe(false);
    const usage = j.checklist.find((c: { step: string }) => c.step === 'Review usage logs');
    expect(usage.state).toBe('operator');
    expect(usage.detail).toMatch(/42 requests .*gpt-4o-mini: 42/);
    const audit = j.checklist.find((c: { step: string }) => c.step.startsWith('Audit your codebase'));
    expect(audit.state).toBe('done');
  }, 30_000);

  it('emergency --revoke-first deletes the old key through the Admin API before writing', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory('prompt'));
    const r = await cli(['emergency', '--revoke-first', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/revoked through the OpenAI Admin API/);
    const j = JSON.parse(r.stdout);
    expect(j.outcome).toBe('completed');
    expect(j.checklist[0]).toMatchObject({ state: 'done' });
    expect(emu.isValid(oldKey)).toBe(false);
    const held = (await readFile(join(dir, 'openai_api_key'), 'utf8')).trim();
    expect(emu.isValid(held)).toBe(true);
  }, 30_000);

  it('an emergency detects a key OpenAI already disabled', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory('prompt'));
    emu.revokeKey(oldKey);
    const r = await cli(['emergency', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/OpenAI already rejects the old key .* \(401\)/);
    expect(r.stdout).toMatch(/\[done\] +Revoke the compromised key: OpenAI already rejects/);
  }, 30_000);

  it('notifies the webhook on pending revocation and failure, without any key', async () => {
    const { createServer } = await import('node:http');
    const received: Array<Record<string, unknown>> = [];
    let failFirst = true;
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (failFirst) {
          failFirst = false; // the first delivery fails: retried
          res.writeHead(503).end();
          return;
        }
        received.push(JSON.parse(body));
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/services/T0/B0/secretpath`;
    try {
      await writeFile(join(dir, 'targets.yaml'), inventory('prompt', 'notify:\n  webhook: env:KEYROT_WEBHOOK_URL\n'));
      const r = await cli(['rotate', '--yes'], { KEYROT_WEBHOOK_URL: url });
      expect(r.code, r.stderr).toBe(0);
      expect(received).toHaveLength(1);
      const n = received[0]!;
      expect(n.event).toBe('awaiting-revocation');
      expect(String(n.text)).toMatch(/Revoke the old key sk-proj-\.\.\./);
      expect(n.action).toMatch(/keyrot revoke -e prod/);
      const wire = JSON.stringify(n);
      expect(wire).not.toContain(oldKey);
      const held = (await readFile(join(dir, 'openai_api_key'), 'utf8')).trim();
      expect(wire).not.toContain(held);
      expect(r.stderr + r.stdout).not.toContain('secretpath');
    } finally {
      hook.close();
    }
  }, 30_000);

  it('no output contains a key or the admin key', () => {
    for (const o of outputs) {
      expect(o.stdout + o.stderr).not.toContain(adminKey);
      expect(o.stdout + o.stderr).not.toContain(oldKey);
      expect(o.stdout + o.stderr).not.toMatch(/sk-(proj|svcacct|admin)-[A-Za-z0-9_-]{20,}/);
    }
  });
});

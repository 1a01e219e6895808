import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';
import { runCliOnPty } from '../helpers/pty.ts';

/**
 * `keyrot usage` end to end: real rotations through the CLI write the journal, the OpenAI emulator
 * serves the Admin API's completions usage over HTTP, and the CLI reads it per key id.
 */
const emu = new OpenAIEmulator();
const PROJECT = 'proj_usage_test';
const DAY = 86_400_000;
let dir: string;
let adminKey: string;
let oldKey: string;
const secrets: string[] = [];

const inventory = (admin = true) => `version: 1
key:
  source: openai-admin
  endpoint: ${emu.endpoint}
${admin ? `  admin:\n    project: ${PROJECT}\n    token: env:OPENAI_ADMIN_KEY\n    endpoint: ${emu.endpoint}\n` : ''}environments:
  prod:
    targets:
      - type: file
        name: key-file
        path: openai_api_key
`;

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { cwd: dir, env: { OPENAI_ADMIN_KEY: adminKey } });
}

/** Rotates once (the old key awaits revocation) and gives the new key's value. */
async function rotate(): Promise<string> {
  const r = await cli(['rotate', '--yes', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const held = (await readFile(join(dir, 'openai_api_key'), 'utf8')).trim();
  secrets.push(held);
  return held;
}

function expectNoSecret(r: CliResult): void {
  for (const s of secrets) {
    expect(r.stdout).not.toContain(s);
    expect(r.stderr).not.toContain(s);
  }
}

beforeAll(async () => {
  await emu.start();
  adminKey = emu.addAdminKey();
  secrets.push(adminKey);
});
afterAll(() => emu.stop());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-usage-'));
  oldKey = testKey();
  secrets.push(oldKey);
  emu.addUserKey(PROJECT, oldKey);
  await writeFile(join(dir, 'openai_api_key'), oldKey, { mode: 0o600 });
  await writeFile(join(dir, 'targets.yaml'), inventory());
  return () => rm(dir, { recursive: true, force: true });
});

describe('keyrot usage', () => {
  it('shows per key and per day the use of the current key and of the key awaiting revocation, across pages', async () => {
    const now = Date.now();
    // 35 days ago: only a 40-day window reaches it, and 1d buckets come 31 per page.
    emu.useKey(oldKey, now - 35 * DAY, { requests: 7, inputTokens: 70, outputTokens: 7 });
    emu.useKey(oldKey, now - 2 * DAY, { requests: 5, inputTokens: 50, outputTokens: 5 });
    const newKey = await rotate();
    emu.useKey(newKey, now, { requests: 3, inputTokens: 30, outputTokens: 3 });
    emu.useKey(newKey, now - DAY, { requests: 1, inputTokens: 10, outputTokens: 1 });

    const r = await cli(['usage', '--days', '40', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expectNoSecret(r);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ env: 'prod', days: 40 });
    const [cur, old] = out.keys;
    expect(cur).toMatchObject({ role: 'current', keyId: emu.keyIdOf(newKey), requests: 4, inputTokens: 40, outputTokens: 4 });
    expect(old).toMatchObject({ role: 'awaiting-revocation', keyId: emu.keyIdOf(oldKey), requests: 12, inputTokens: 120, outputTokens: 12 });
    expect(cur.hint).toMatch(/^sk-svcacct-\.\.\..{4}$/);
    expect(cur.fingerprint).toMatch(/^[0-9a-f]{12}$/);
    expect(old.daily).toHaveLength(40);
    const day = (t: number) => new Date(t).toISOString().slice(0, 10);
    expect(old.daily.find((d: { day: string }) => d.day === day(now - 35 * DAY)).requests).toBe(7);
    expect(cur.daily.at(-1)).toEqual({ day: day(now), requests: 3, inputTokens: 30, outputTokens: 3 });

    // A 7-day window leaves the use of 35 days ago out.
    const week = JSON.parse((await cli(['usage', '--json'])).stdout);
    expect(week.keys[1].requests).toBe(5);
  }, 60_000);

  it('lists a revoked key as retired, and prints a table without a terminal', async () => {
    emu.useKey(oldKey, Date.now() - DAY, { requests: 9 });
    await rotate();
    const rv = await cli(['revoke', '--yes']);
    expect(rv.code, rv.stderr).toBe(0);
    const r = await cli(['usage', '--days', '3']);
    expect(r.code, r.stderr).toBe(0);
    expectNoSecret(r);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/KEY\s+HINT FINGERPRINT\s+ID\s+DAY\s+REQUESTS\s+INPUT\s+OUTPUT/);
    // One row per key and day: 3 for the current key, 3 for the retired one.
    expect(lines.filter((l) => /^\s+current\s/.test(l))).toHaveLength(3);
    const retired = lines.filter((l) => /^\s+retired\s/.test(l));
    expect(retired).toHaveLength(3);
    const oldId = emu.keyIdOf(oldKey)!;
    expect(retired.every((l) => l.includes(oldId))).toBe(true);
    expect(retired.filter((l) => /\s9\s+100\s+20$/.test(l))).toHaveLength(1);
  }, 60_000);

  it('draws a sparkline per key on a terminal', async () => {
    const now = Date.now();
    emu.useKey(oldKey, now - 2 * DAY, { requests: 14 });
    emu.useKey(oldKey, now - DAY, { requests: 7 });
    await rotate();
    const t = runCliOnPty(['usage', '--days', '3'], { cwd: dir, env: { OPENAI_ADMIN_KEY: adminKey } });
    const exit = await t.exited;
    expect(exit.code, t.output()).toBe(0);
    for (const s of secrets) expect(t.output()).not.toContain(s);
    expect(t.output()).toMatch(/current\s+sk-svcacct-\.\.\.\S{4} [0-9a-f]{12}\s+key_\w+\s+▁▁▁  0 requests/);
    expect(t.output()).toMatch(/awaiting revocation\s+sk-proj-\.\.\.\S{4} [0-9a-f]{12}\s+key_\w+\s+█▅▁  21 requests, 200 in \/ 40 out tokens/);
  }, 60_000);

  it('lists a key keyrot cannot find in the project as "id unknown", with the reason', async () => {
    // A key the organisation accepts but that is no project key here: not locatable by its hint.
    const stranger = testKey();
    secrets.push(stranger);
    emu.addKey(stranger);
    await writeFile(join(dir, 'openai_api_key'), stranger, { mode: 0o600 });
    await rotate();
    const r = await cli(['usage', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expectNoSecret(r);
    const old = JSON.parse(r.stdout).keys[1];
    expect(old).toMatchObject({ role: 'awaiting-revocation', keyId: null, requests: 0 });
    expect(old.idUnknown).toMatch(/no API key of project proj_usage_test matches sk-proj-\.\.\./);
    const human = await cli(['usage']);
    expect(human.stdout).toMatch(/awaiting revocation.*-\s+-\s+-\s+-\s+id unknown: no API key of project/);
  }, 60_000);

  it('lists a key the rotation retired along with the old one (alsoRevoke: drift), with why', async () => {
    const drifted = testKey();
    secrets.push(drifted);
    emu.addUserKey(PROJECT, drifted);
    emu.useKey(drifted, Date.now() - DAY, { requests: 6 });
    await writeFile(join(dir, 'other.key'), drifted, { mode: 0o600 });
    await writeFile(join(dir, 'targets.yaml'), inventory() + '      - type: file\n        name: other-file\n        path: other.key\n');
    await rotate();
    const r = await cli(['usage', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expectNoSecret(r);
    const keys = JSON.parse(r.stdout).keys;
    expect(keys.map((k: { role: string }) => k.role)).toEqual(['current', 'awaiting-revocation', 'awaiting-revocation']);
    expect(keys[2]).toMatchObject({ keyId: emu.keyIdOf(drifted), requests: 6, why: 'held by target other-file (drift)', retiredAt: expect.any(String) });
    expect(keys[1]).toMatchObject({ keyId: emu.keyIdOf(oldKey) });
    expect(keys[1].why).toBeUndefined();
    const table = await cli(['usage', '--days', '2']);
    expect(table.stdout).toMatch(/awaiting revocation\s+sk-proj-\.\.\.\S{4} [0-9a-f]{12} \(held by target other-file \(drift\)\)\s+key_\w+\s+\d{4}-\d\d-\d\d\s+6\s/);
  }, 60_000);

  it('without key.admin says what to add, exit 2', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory(false).replace('source: openai-admin', 'source: prompt'));
    const r = await cli(['usage']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/key\.admin is not configured/);
    expect(r.stderr).toMatch(/token: env:OPENAI_ADMIN_KEY/);
  });

  it('rejects a --days that is not a whole number of days (exit 2)', async () => {
    const r = await cli(['usage', '--days', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--days 0: expected a whole number of days from 1 to 180/);
  });
});

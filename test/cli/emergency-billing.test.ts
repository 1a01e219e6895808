import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * The emergency's billing step through the real CLI: with key.admin it reads the organization
 * costs (the OpenAI emulator over HTTP) of the last 7 days against the 28 before, and the
 * checklist's billing line carries the figures; a failing costs call never fails the emergency.
 * One emulator per test: costs are organization-wide.
 */
const PROJECT = 'proj_billing_test';
const DAY = 86_400_000;
let emu: OpenAIEmulator;
let dir: string;
let adminKey: string;

beforeEach(async () => {
  emu = new OpenAIEmulator();
  await emu.start();
  adminKey = emu.addAdminKey();
  dir = await mkdtemp(join(tmpdir(), 'keyrot-billing-'));
  const oldKey = testKey();
  emu.addUserKey(PROJECT, oldKey);
  await writeFile(join(dir, 'openai_api_key'), oldKey, { mode: 0o600 });
  await writeFile(
    join(dir, 'targets.yaml'),
    `version: 1
key:
  source: openai-admin
  endpoint: ${emu.endpoint}
  admin:
    project: ${PROJECT}
    token: env:OPENAI_ADMIN_KEY
    endpoint: ${emu.endpoint}
environments:
  prod:
    targets:
      - type: file
        name: key-file
        path: openai_api_key
`,
  );
});
afterEach(async () => {
  await emu.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A cost at noon UTC of each of the 35 days up to today: `perDay(daysAgo)`. */
function costs(lineItem: string, perDay: (daysAgo: number) => number): void {
  const today = Math.floor(Date.now() / DAY);
  for (let ago = 0; ago < 35; ago++) emu.addCost(PROJECT, lineItem, (today - ago) * DAY + DAY / 2, perDay(ago));
}

async function billingLine(): Promise<{ state: string; detail: string }> {
  const r = await runCli(['emergency', '--yes', '--json'], { cwd: dir, env: { OPENAI_ADMIN_KEY: adminKey } });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).not.toContain(adminKey);
  const line = JSON.parse(r.stdout).checklist.find((i: { step: string }) => i.step === 'Check billing');
  expect(line).toBeDefined();
  return line;
}

describe('emergency: the billing step', () => {
  it('flags a line item whose last 7 days run above twice its 28-day daily average', async () => {
    costs('gpt-4o, input', (ago) => (ago < 7 ? 10 : 1));
    costs('embeddings', () => 1);
    const line = await billingLine();
    expect(line.state).toBe('operator');
    expect(line.detail).toContain('$77.00 in the last 7 days against $2.00/day over the 28 before');
    expect(line.detail).toContain(`${PROJECT} gpt-4o, input: $10.00/day against $1.00/day`);
    expect(line.detail).not.toContain('embeddings');
  }, 60_000);

  it('marks billing done with the figures when spend stays at its baseline', async () => {
    costs('gpt-4o, input', () => 1.5);
    const line = await billingLine();
    expect(line).toEqual({
      step: 'Check billing',
      state: 'done',
      detail: '$10.50 in the last 7 days against $1.50/day over the 28 before: no project or line item above 2× its daily average',
    });
  }, 60_000);

  it('does not flag a jump below the absolute floor', async () => {
    costs('gpt-4o, input', (ago) => (ago < 7 ? 0.5 : 0.01));
    expect((await billingLine()).state).toBe('done');
  }, 60_000);

  it('says billing could not be checked, and why, when the costs endpoint fails; the emergency goes on', async () => {
    emu.server.failNext({ status: 500, path: '/v1/organization/costs', body: { error: { message: 'internal error', type: 'server_error', param: null, code: null } } });
    const line = await billingLine();
    expect(line.state).toBe('skipped');
    expect(line.detail).toMatch(/^could not be checked \(the costs API failed: .*500/);
    expect(line.detail).toContain('OpenAI dashboard Billing page');
  }, 60_000);
});

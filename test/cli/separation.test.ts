import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/** `status` and `verify` flag environments sharing a key, and keys older than the schedule. */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-sep-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const inventory = `version: 1
key:
  source: stdin
  verify: false
schedule:
  cron: "0 9 1 * *"
environments:
  staging:
    targets:
      - type: file
        path: staging.key
  production:
    targets:
      - type: file
        path: production.key
`;

it('two environments holding the same key are flagged by status and verify', async () => {
  await writeFile(join(dir, 'targets.yaml'), inventory);
  await writeFile(join(dir, 'staging.key'), testKey());
  await writeFile(join(dir, 'production.key'), testKey());
  const shared = testKey();
  for (const env of ['staging', 'production']) {
    const r = await runCli(['rotate', '-e', env, '--yes'], { cwd: dir, input: shared + '\n' });
    expect(r.code, r.stderr).toBe(0);
  }
  const s = await runCli(['status', '--json'], { cwd: dir });
  expect(s.code).toBe(1);
  const envs = JSON.parse(s.stdout).environments as Array<{ env: string; sharedWith: string[]; schedule: { overdue: boolean; nextRun: string } }>;
  expect(envs.find((e) => e.env === 'staging')!.sharedWith).toEqual(['production']);
  expect(envs[0]!.schedule.overdue).toBe(false);
  expect(envs[0]!.schedule.nextRun).toMatch(/T09:00:00\.000Z$/);
  const v = await runCli(['verify', '-e', 'staging'], { cwd: dir });
  expect(v.code).toBe(1);
  expect(v.stdout).toMatch(/environment "production" uses the same key/);
  for (const r of [s, v]) expect(r.stdout + r.stderr).not.toContain(shared);
}, 90_000); // four CLI runs: seconds each on a loaded machine

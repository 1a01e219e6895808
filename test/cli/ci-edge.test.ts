import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GitHubEmulator } from '../../emulators/github-actions/emulator.ts';
import { CloudflareEmulator } from '../../emulators/cloudflare-workers/emulator.ts';
import { getVar } from '../../src/targets/dotenv/parse.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `plan`, `rotate` and `verify` as a real subprocess on an inventory with a GitHub Actions
 * environment secret (with a dispatched smoke workflow) and a Cloudflare Worker secret next to a
 * .env file: nothing target-specific in the engine or the CLI, only the Target contract.
 */
const ACCOUNT = '0123456789abcdef0123456789abcdef';
const REPO = 'acme/api';
const VAR = 'OPENAI_API_KEY';
const ENV_REF = { repo: REPO, environment: 'production' };

let dir: string;
let gh: GitHubEmulator;
let cf: CloudflareEmulator;
let env: Record<string, string>;
const keys: string[] = [];
const seen: CliResult[] = [];

function key(): string {
  const k = testKey();
  keys.push(k);
  return k;
}

async function cli(args: string[], input?: string): Promise<CliResult> {
  const r = await runCli([...args, '-e', 'prod'], { cwd: dir, input, env });
  seen.push(r);
  return r;
}

const dotenvKey = async () => getVar(await readFile(join(dir, 'app/.env'), 'utf8'), VAR);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-ci-edge-'));
  gh = new GitHubEmulator({ runMs: 150 });
  cf = new CloudflareEmulator();
  await Promise.all([gh.start(), cf.start()]);
  env = { GH_TOKEN: gh.addToken({ repos: [REPO] }), CLOUDFLARE_API_TOKEN: cf.addToken({ accounts: [ACCOUNT] }) };
  const old = key();
  gh.seedRepo(REPO, { environments: ['production'], workflows: [{ file: 'smoke.yml', environment: 'production' }] });
  gh.setSecret(ENV_REF, VAR, old);
  cf.seedWorker(ACCOUNT, 'api-worker', { secrets: { [VAR]: old } });
  await mkdir(join(dir, 'app'));
  await writeFile(join(dir, 'app/.env'), `PORT=3000\n${VAR}=${old}\n`, { mode: 0o600 });
  await writeFile(
    join(dir, 'targets.yaml'),
    `version: 1
key: { name: ${VAR}, kind: openai, source: stdin, verify: false }
environments:
  prod:
    targets:
      - { type: dotenv, name: app-env, path: app/.env }
      - type: github-actions
        name: ci
        repo: ${REPO}
        environment: production
        dispatch: { workflow: smoke.yml, ref: main }
        endpoint: ${gh.url}
      - { type: cloudflare-workers, name: edge, account: ${ACCOUNT}, script: api-worker, endpoint: ${cf.url} }
`,
  );
  return async () => {
    // No key value in the state directory, whatever happened.
    for (const f of await readdir(join(dir, '.keyrot'), { recursive: true }).catch(() => [] as string[])) {
      const text = await readFile(join(dir, '.keyrot', f), 'utf8').catch(() => '');
      for (const k of keys) expect(text, f).not.toContain(k);
    }
    await Promise.all([gh.stop(), cf.stop()]);
    await rm(dir, { recursive: true, force: true });
  };
});

afterEach(() => {
  for (const r of seen.splice(0)) for (const k of keys) expect(r.stdout + r.stderr).not.toContain(k);
});

describe('CI and edge targets through the CLI', () => {
  it('plan says how each is written and verified; rotate writes, verifies and dispatches; verify proves it by metadata', async () => {
    const plan = await cli(['plan']);
    expect(plan.code, plan.stderr).toBe(0);
    const planText = plan.stdout + plan.stderr;
    expect(planText).toMatch(/environment secret OPENAI_API_KEY of environment production of acme\/api is write-only/);
    expect(planText).toMatch(/updated_at moving past keyrot's write/);
    expect(planText).toMatch(/runs workflow smoke.yml of acme\/api on main and waits for it to succeed/);
    expect(planText).toMatch(/creates a new version of Worker api-worker/);
    // Each names the host that receives its token when it is not the provider's own.
    expect(planText).toContain(`talks to ${gh.url}`);
    expect(planText).toContain('not https://api.github.com');
    expect(planText).toContain('not https://api.cloudflare.com/client/v4');

    const next = key();
    const rotate = await cli(['rotate', '--new-key', 'stdin', '--yes'], `${next}\n`);
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(await dotenvKey()).toBe(next);
    expect(gh.peekSecret(ENV_REF, VAR)?.value).toBe(next);
    expect(cf.peekSecret(ACCOUNT, 'api-worker', VAR)).toBe(next);
    const [run] = gh.runs(REPO);
    expect(run).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(run!.secretsSeen[VAR]).toBe(next);

    const verify = await cli(['verify', '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    const rows = JSON.parse(verify.stdout).targets as Array<{ name: string; matches: boolean; method: string }>;
    expect(rows.map((r) => [r.name, r.matches, r.method])).toEqual([
      ['app-env', true, 'read-back'],
      ['ci', true, 'metadata'],
      ['edge', true, 'metadata'],
    ]);
    // Three CLI subprocesses: generous for a loaded machine (no timing is asserted).
  }, 120_000);

  it('a failed CI run rolls everything back, and runs CI again on the old key', async () => {
    const before = await dotenvKey();
    gh.failNextRun();
    const next = key();
    const rotate = await cli(['rotate', '--new-key', 'stdin', '--yes'], `${next}\n`);
    expect(rotate.code).toBe(1);
    expect(rotate.stdout + rotate.stderr).toMatch(/concluded failure, so CI did not prove it works with the new key/);
    expect(await dotenvKey()).toBe(before);
    expect(gh.peekSecret(ENV_REF, VAR)?.value).toBe(before);
    expect(cf.peekSecret(ACCOUNT, 'api-worker', VAR)).toBe(before);
    const runs = gh.runs(REPO);
    expect(runs.map((r) => [r.conclusion, r.secretsSeen[VAR] === next])).toEqual([
      ['failure', true],
      ['success', false],
    ]);
  }, 60_000);
});

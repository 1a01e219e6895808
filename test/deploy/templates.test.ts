import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import cron from 'node-cron';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';
import { workflowSchema } from './github-workflow-schema.ts';

/**
 * The deploy/ templates for GitHub Actions, systemd and cron: each parses, and the keyrot command
 * it runs really runs — `keyrot schedule --once` over a one-target inventory rotates the key —
 * with the template's own flags, paths (moved into a temp dir) and environment handling.
 */
const run = promisify(execFile);
const repo = new URL('../../', import.meta.url).pathname;
const read = (path: string) => readFileSync(join(repo, path), 'utf8');
const version = JSON.parse(read('package.json')).version as string;

interface Sandbox {
  dir: string;
  /** A `keyrot` on PATH that runs this checkout's CLI under the tests' Node. */
  bin: string;
  key: string;
}

/** A config directory with targets.yaml and the .env it rotates, and a keyrot shim. */
function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'keyrot-deploy-'));
  mkdirSync(join(dir, 'app'));
  writeFileSync(join(dir, 'app', '.env'), 'OPENAI_API_KEY=placeholder-old\n', { mode: 0o600 });
  writeFileSync(
    join(dir, 'targets.yaml'),
    ['version: 1', 'key: { name: OPENAI_API_KEY, source: env:OPENAI_NEW_KEY, verify: false }', 'schedule: { cron: "0 9 1 * *" }',
      'environments:', '  production:', '    targets:', '      - { type: dotenv, path: app/.env }', ''].join('\n'),
  );
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'keyrot'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(bin, 'keyrot'), 0o755);
  return { dir, bin, key: testKey() };
}

/** What `schedule --once --json` printed, and whether the .env now holds the new key. */
function expectRotated(sb: Sandbox, stdout: string): void {
  const { results } = JSON.parse(stdout) as { results: { env: string; action: string }[] };
  expect(results).toEqual([expect.objectContaining({ env: 'production', action: expect.stringMatching(/rotat/) })]);
  expect(readFileSync(join(sb.dir, 'app', '.env'), 'utf8')).toBe(`OPENAI_API_KEY=${sb.key}\n`);
  expect(stdout).not.toContain(sb.key);
}

const baseEnv = (sb: Sandbox) => ({ PATH: `${sb.bin}:/usr/bin:/bin`, HOME: sb.dir, NO_COLOR: '1', ...(process.env.XDG_CONFIG_HOME ? { XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME } : {}) });

describe('deploy/github-actions/rotate.yml', () => {
  const workflow = workflowSchema.parse(parse(read('deploy/github-actions/rotate.yml')));
  const steps = Object.values(workflow.jobs).flatMap((j) => j.steps);

  it('is a workflow GitHub accepts: known keys only, a valid daily schedule, no overlapping runs, read-only token', () => {
    for (const { cron: expr } of workflow.on.schedule ?? []) expect(cron.validate(expr), expr).toBe(true);
    expect(workflow.concurrency).toEqual({ group: expect.any(String), 'cancel-in-progress': false });
    expect(workflow.permissions).toEqual({ contents: 'read' });
  });

  it('installs the version this repository is, and takes every credential from secrets', () => {
    const install = steps.find((s) => s.run?.includes('npm install --global'));
    expect(install?.env?.KEYROT_VERSION).toBe(version);
    const keyrotStep = steps.find((s) => s.run?.startsWith('keyrot '))!;
    for (const [name, value] of Object.entries(keyrotStep.env ?? {})) {
      if (name !== 'KUBECONFIG') expect(value, name).toBe(`\${{ secrets.${name} }}`);
    }
  });

  it('its keyrot step runs: schedule --once rotates what is due', async () => {
    const sb = sandbox();
    const keyrotStep = steps.find((s) => s.run?.startsWith('keyrot '))!;
    const { stdout } = await run('bash', ['-eo', 'pipefail', '-c', keyrotStep.run!], {
      cwd: sb.dir,
      env: { ...baseEnv(sb), KEYROT_STATE_DIR: join(sb.dir, 'state'), OPENAI_NEW_KEY: sb.key },
    });
    expectRotated(sb, stdout);
  });
});

describe('deploy/systemd', () => {
  /** The service with its /etc/keyrot, /var/lib/keyrot and /usr/local/bin/keyrot moved into the sandbox. */
  function unitIn(sb: Sandbox): string {
    return read('deploy/systemd/keyrot.service')
      .replaceAll('/usr/local/bin/keyrot', join(sb.bin, 'keyrot'))
      .replaceAll('/etc/keyrot', sb.dir)
      .replaceAll('/var/lib/keyrot', join(sb.dir, 'state'));
  }

  it('the service and timer pass systemd-analyze verify', async (ctx) => {
    if (!existsSync('/usr/bin/systemd-analyze')) {
      if (process.env.CI === 'true') throw new Error('systemd-analyze is missing: apt-get install -y systemd');
      ctx.skip();
    }
    const sb = sandbox();
    const units = join(sb.dir, 'units');
    mkdirSync(units);
    writeFileSync(join(units, 'keyrot.service'), unitIn(sb));
    writeFileSync(join(units, 'keyrot.timer'), read('deploy/systemd/keyrot.timer'));
    const { stderr } = await run('systemd-analyze', ['verify', '--man=no', join(units, 'keyrot.service'), join(units, 'keyrot.timer')]);
    // Only the sandbox's missing users may be named (User=keyrot exists on the host once installed).
    expect(stderr.split('\n').filter((l) => l && !/keyrot.*user|Failed to resolve/i.test(l))).toEqual([]);
  });

  it('its ExecStart, with its EnvironmentFile and Environment, rotates what is due', async () => {
    const sb = sandbox();
    writeFileSync(join(sb.dir, 'credentials.env'), `OPENAI_NEW_KEY=${sb.key}\n`, { mode: 0o600 });
    const unit = unitIn(sb);
    const directive = (name: string) => unit.match(new RegExp(`^${name}=(.*)$`, 'm'))![1]!;
    const fileEnv = Object.fromEntries(readFileSync(directive('EnvironmentFile'), 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
    const [exe, ...args] = directive('ExecStart').split(' ');
    const [stateVar, stateDir] = directive('Environment').split('=');
    const { stdout } = await run(exe!, args, { cwd: directive('WorkingDirectory'), env: { ...baseEnv(sb), ...fileEnv, [stateVar!]: stateDir! } });
    expectRotated(sb, stdout);
  });
});

describe('deploy/cron/keyrot.cron', () => {
  const lines = read('deploy/cron/keyrot.cron').split('\n').filter((l) => l && !l.startsWith('#'));
  const job = lines.find((l) => /^\S+ \S+ \S+ \S+ \S+ /.test(l) && !l.startsWith('PATH='))!;

  it('is one valid crontab entry after a PATH line', () => {
    expect(lines[0]).toMatch(/^PATH=/);
    const fields = job.split(' ').slice(0, 5).join(' ');
    expect(cron.validate(fields)).toBe(true);
  });

  it('its command, run by sh as cron would, sources the credentials and rotates what is due', async () => {
    const sb = sandbox();
    writeFileSync(join(sb.dir, 'credentials.env'), `OPENAI_NEW_KEY=${sb.key}\n`, { mode: 0o600 });
    mkdirSync(join(sb.dir, 'log'));
    const command = job
      .split(' ')
      .slice(5)
      .join(' ')
      .replaceAll('/etc/keyrot', sb.dir)
      .replaceAll('/var/lib/keyrot', join(sb.dir, 'state'))
      .replaceAll('/var/log/keyrot', join(sb.dir, 'log'));
    await run('/bin/sh', ['-c', command], { env: baseEnv(sb) });
    const log = readFileSync(join(sb.dir, 'log', 'keyrot.log'), 'utf8');
    expectRotated(sb, log.slice(log.indexOf('{\n')));
  });
});

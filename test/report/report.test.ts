import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportHtml } from '../../src/report/html.ts';
import type { ReportData } from '../../src/report/data.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `keyrot report` over real state: a rotation then its revocation, an emergency, and a rotation of
 * a second environment, all run through the CLI. The HTML is rendered by a real headless browser
 * (Debian's Chromium): its DOM has one timeline mark per rotation, the page loads with no console
 * error or CSP violation, and a screenshot is kept in test-artifacts/.
 */
const run = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
let dir: string;
const keys: string[] = [];

async function cli(args: string[]) {
  const key = testKey();
  keys.push(key);
  const r = await runCli([...args, '--yes'], { cwd: dir, input: key + '\n' });
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-report-'));
  await writeFile(
    join(dir, 'targets.yaml'),
    ['version: 1', 'key: { source: stdin, verify: false }', 'schedule: { cron: "0 9 1 * *" }', 'environments:', '  production:', '    targets:',
      '      - { type: file, path: a.key }', '      - { type: file, path: b.key }', '  staging:', '    targets:', '      - { type: file, path: s.key }', ''].join('\n'),
  );
  for (const f of ['a.key', 'b.key', 's.key']) await writeFile(join(dir, f), testKey(), { mode: 0o600 });
  await writeFile(join(dir, 'b.key'), await readFile(join(dir, 'a.key')), { mode: 0o600 });
  await cli(['rotate', '-e', 'production']);
  const revoked = await runCli(['revoke', '-e', 'production', '--yes'], { cwd: dir });
  expect(revoked.code, revoked.stderr).toBe(0);
  await cli(['emergency', '-e', 'production']);
  await cli(['rotate', '-e', 'staging']);
}, 180_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

async function chromium(args: string[]): Promise<{ stdout: string; stderr: string }> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error('Chromium is missing: apt-get install -y chromium');
    return { stdout: '', stderr: '' };
  }
  // Headless, nothing fetched: the page must render from the file alone.
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--hide-scrollbars', '--enable-logging=stderr', '--v=0'];
  return run(CHROMIUM, [...flags, ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
}

describe('keyrot report', () => {
  it('HTML: one self-contained page a real browser renders, one timeline mark per rotation, a screenshot kept', async (ctx) => {
    const file = join(dir, 'report.html');
    const r = await runCli(['report', '-o', file], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`wrote the html report to ${file}`);
    const html = await readFile(file, 'utf8');
    expect(html).not.toMatch(/<script|src=|href=|url\(/i); // nothing to load: no script, no external asset
    for (const k of keys) expect(html).not.toContain(k);
    if (!existsSync(CHROMIUM)) return ctx.skip();

    const dom = await chromium(['--dump-dom', `file://${file}`]);
    const marks = (section: string) => (dom.stdout.split(`data-env="${section}"`)[1]!.split('</section>')[0]!.match(/class="mark rotation /g) ?? []).length;
    expect({ production: marks('production'), staging: marks('staging') }).toEqual({ production: 2, staging: 1 });
    expect(dom.stdout).toContain('outcome-completed');
    expect(dom.stdout).toContain('Audit log verified');
    // The browser's own log: no console message and no Content-Security-Policy violation from the page.
    expect(dom.stderr.split('\n').filter((l) => /CONSOLE|Content Security Policy|Refused to/i.test(l))).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    const png = join(ARTIFACTS, 'report.png');
    await chromium(['--window-size=1200,1400', `--screenshot=${png}`, `file://${file}`]);
    expect(statSync(png).size).toBeGreaterThan(20_000);
    console.log(`report screenshot: ${png}`);
  }, 300_000);

  it('md (stdout by default), csv and json give the same rotations', async () => {
    const md = await runCli(['report'], { cwd: dir });
    expect(md.code).toBe(0);
    expect(md.stdout).toMatch(/^# keyrot report/);
    expect(md.stdout).toContain('## production');
    const json = JSON.parse((await runCli(['report', '--json'], { cwd: dir })).stdout) as ReportData;
    const outcomes = Object.fromEntries(json.environments.map((e) => [e.env, e.rotations.map((r) => `${r.mode}:${r.outcome}`)]));
    expect(outcomes).toEqual({ production: ['rotate:completed', 'emergency:awaiting-revocation'], staging: ['rotate:awaiting-revocation'] });
    expect(json.audit.intact).toBe(true);
    const csv = (await runCli(['report', '--format', 'csv'], { cwd: dir })).stdout.trim().split('\r\n');
    expect(csv[0]).toBe('env,rotation,mode,started,ended,outcome,all_verified,revoked,targets');
    expect(csv).toHaveLength(4);
    for (const out of [md.stdout, csv.join('\n')]) for (const k of keys) expect(out).not.toContain(k);
    expect((await runCli(['report', '--format', 'pdf'], { cwd: dir })).code).toBe(2);
  });

  it('an edited audit log: exit 1, and the page says verification failed and where', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'keyrot-report-tampered-'));
    await run('cp', ['-a', `${dir}/.`, copy]);
    const audit = join(copy, '.keyrot', 'audit.ndjson');
    const lines = (await readFile(audit, 'utf8')).trim().split('\n');
    lines[1] = lines[1]!.replace(/"env":"production"/, '"env":"prod-x"');
    await writeFile(audit, lines.join('\n') + '\n');
    const r = await runCli(['report', '--format', 'html'], { cwd: copy });
    await rm(copy, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Audit log verification FAILED');
    expect(r.stdout).toMatch(/line 2: <b>(mac|hash)<\/b>/);
  });

  it('text from the state is inert in the page', () => {
    const hostile = '<img src=x onerror=alert(1)>';
    const html = reportHtml({
      generatedAt: '2026-01-01T00:00:00.000Z',
      state: hostile,
      audit: { intact: false, entries: 1, unauthenticated: 0, anchored: false, problems: [{ line: 1, check: 'mac', problem: hostile }] },
      environments: [{ env: hostile, key: null, schedule: null, pendingRevocation: null, interrupted: hostile, lastVerify: null, sharedWith: [hostile],
        rotations: [{ id: hostile, mode: 'rotate', startedAt: '2026-01-01T00:00:00.000Z', endedAt: null, outcome: hostile, allVerified: false, revokedAt: null, targets: 1 }] }],
    });
    expect(html).not.toContain('<img');
    expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;');
  });
});

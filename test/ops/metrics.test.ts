import { execFile, spawn } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HerokuEmulator } from '../../emulators/heroku/emulator.ts';
import { METRIC_NAMES } from '../../src/ops/metrics.ts';
import { parseListen } from '../../src/ops/listen.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `keyrot schedule --listen`: a real daemon over a file and a Heroku target (the emulator throttles
 * its first request), scraped over HTTP; the scrape is checked by Prometheus's own `promtool check
 * metrics`, holds the figures of the rotation it ran, and no key, hint or fingerprint. `--once
 * --pushgateway` pushes to a loopback gateway. The deploy/ alert rules and dashboard only name
 * metrics keyrot serves.
 */
const run = promisify(execFile);
const heroku = new HerokuEmulator({ releaseMs: 50 });
const repo = new URL('../../', import.meta.url).pathname;
let dir: string;

beforeAll(async () => {
  await heroku.start();
  dir = await mkdtemp(join(tmpdir(), 'keyrot-metrics-'));
});
afterAll(async () => {
  await heroku.stop();
  await rm(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** An inventory of a key file and a Heroku app, both on `oldKey`; the new key in new.key. */
async function inventory(sub: string, oldKey: string, newKey: string): Promise<{ cwd: string; env: Record<string, string> }> {
  const cwd = join(dir, sub);
  const token = heroku.addToken({ scopes: ['read-protected', 'write-protected'] });
  heroku.seedApp(sub, { OPENAI_API_KEY: oldKey });
  await rm(cwd, { recursive: true, force: true });
  await (await import('node:fs/promises')).mkdir(cwd);
  await writeFile(join(cwd, 'new.key'), newKey, { mode: 0o600 });
  await writeFile(join(cwd, 'app.key'), oldKey, { mode: 0o600 });
  await writeFile(
    join(cwd, 'targets.yaml'),
    ['version: 1', 'key: { source: file:new.key, verify: false }', 'schedule: { cron: "0 9 1 * *" }', 'environments:', '  prod:', '    targets:',
      '      - { type: file, path: app.key }', `      - { type: heroku, app: ${sub}, endpoint: "${heroku.url}", token: env:HEROKU_TOKEN }`, ''].join('\n'),
  );
  return { cwd, env: { HEROKU_TOKEN: token } };
}

async function promtool(args: string[], input?: string): Promise<string> {
  if (!existsSync('/usr/bin/promtool')) {
    if (process.env.CI === 'true') throw new Error('promtool is missing: apt-get install -y prometheus');
    return 'promtool not installed: skipped';
  }
  const child = execFile('promtool', args);
  child.stdin?.end(input ?? '');
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  expect(code, out).toBe(0);
  return out;
}

const value = (scrape: string, series: string) => {
  const line = scrape.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('keyrot schedule --listen', () => {
  it('serves the rotation it ran as Prometheus metrics, and /healthz; no key material in any of it', async () => {
    const oldKey = testKey();
    const newKey = testKey();
    const { cwd, env } = await inventory('metrics', oldKey, newKey);
    heroku.failNextWithRateLimit(1);
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'schedule', '--listen', String(port)], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    while (!/"msg":"rotation finished"/.test(out) && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain(`"metrics":"http://127.0.0.1:${port}/metrics"`);

    const scrape = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    await promtool(['check', 'metrics'], scrape);
    for (const name of METRIC_NAMES) expect(scrape, name).toContain(`# TYPE ${name} `);
    expect(value(scrape, 'keyrot_revocation_pending{env="prod"}')).toBe(1);
    expect(value(scrape, 'keyrot_last_rotation_outcome{env="prod",outcome="awaiting-revocation"}')).toBe(1);
    expect(value(scrape, 'keyrot_rotations_total{env="prod",outcome="awaiting-revocation",mode="rotate"}')).toBe(1);
    expect(value(scrape, 'keyrot_targets{env="prod",type="heroku"}')).toBe(1);
    expect(value(scrape, 'keyrot_target_verified{env="prod",target="heroku:metrics",type="heroku"}')).toBe(1);
    expect(value(scrape, 'keyrot_provider_errors_total{provider="heroku",class="throttled"}')).toBeGreaterThanOrEqual(1);
    expect(value(scrape, 'keyrot_audit_intact')).toBe(1);
    const status = JSON.parse((await runCli(['status', '--json'], { cwd, env })).stdout).environments[0];
    for (const secret of [oldKey, newKey, status.key.fingerprint, status.key.hint, status.pendingRevocation.fingerprint]) expect(scrape).not.toContain(secret);

    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, stateReachable: true, lastTick: expect.any(String) });
    // The state store becomes unreadable (its journal directory replaced by a file): 503.
    await rm(join(cwd, '.keyrot', 'journal'), { recursive: true, force: true });
    await writeFile(join(cwd, '.keyrot', 'journal'), 'not a directory');
    const down = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(down.status).toBe(503);
    expect(((await down.json()) as { stateReachable: boolean }).stateReachable).toBe(false);
    expect(value(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), 'keyrot_state_reachable')).toBe(0);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 120_000);

  it('--listen takes PORT (loopback), HOST:PORT or [IPv6]:PORT; anything else is a usage error (exit 2)', async () => {
    expect(parseListen('9464')).toEqual({ host: '127.0.0.1', port: 9464, loopback: true });
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464, loopback: true });
    expect(parseListen('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464, loopback: false });
    for (const bad of ['nine', '70000', 'example.com:9464', ':9464']) expect(() => parseListen(bad), bad).toThrow(/--listen/);
    const { cwd, env } = await inventory('listen-usage', testKey(), testKey());
    const r = await runCli(['schedule', '--listen', 'example.com:80'], { cwd, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/IP address or localhost/);
  });
});

describe('keyrot schedule --once --pushgateway', () => {
  /** A loopback stand-in for the Pushgateway: records each request; `redirect` answers 307. */
  async function gateway(redirect = false) {
    const seen: Array<{ method: string; url: string; type: string; body: string }> = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, type: String(req.headers['content-type'] ?? ''), body });
        if (redirect) res.writeHead(307, { location: 'https://elsewhere.invalid/metrics/job/keyrot' }).end();
        else res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return { seen, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((r) => server.close(r)) };
  }

  it('PUTs the run\'s metrics to /metrics/job/keyrot when done', async () => {
    const gw = await gateway();
    const { cwd, env } = await inventory('push', testKey(), testKey());
    const r = await runCli(['schedule', '--once', '--pushgateway', gw.url], { cwd, env });
    await gw.close();
    expect(r.code, r.stderr).toBe(0);
    expect(gw.seen).toHaveLength(1);
    expect(gw.seen[0]).toMatchObject({ method: 'PUT', url: '/metrics/job/keyrot' });
    expect(gw.seen[0]!.type).toMatch(/^text\/plain/);
    expect(value(gw.seen[0]!.body, 'keyrot_revocation_pending{env="prod"}')).toBe(1);
  }, 60_000);

  it('a redirect is reported (nothing was stored), the run still succeeds; a bad URL or a daemon is a usage error', async () => {
    const gw = await gateway(true);
    const { cwd, env } = await inventory('push-redirect', testKey(), testKey());
    const r = await runCli(['schedule', '--once', '--pushgateway', gw.url], { cwd, env });
    await gw.close();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/could not push metrics .*HTTP 307 \(redirect to https:\/\/elsewhere\.invalid/);
    expect((await runCli(['schedule', '--once', '--pushgateway', 'https://user:secret@gateway.invalid'], { cwd, env })).code).toBe(2);
    expect((await runCli(['schedule', '--once', '--pushgateway', 'ftp://gateway.invalid'], { cwd, env })).code).toBe(2);
    expect((await runCli(['schedule', '--pushgateway', gw.url], { cwd, env })).stderr).toMatch(/goes with --once/);
  }, 60_000);
});

describe('deploy/prometheus and deploy/grafana', () => {
  const served = new Set<string>(METRIC_NAMES);
  const named = (text: string) => [...text.matchAll(/\bkeyrot_[a-z_]+/g)].map((m) => m[0]);

  it('the alert rules pass promtool check rules and name only metrics keyrot serves', async () => {
    await promtool(['check', 'rules', join(repo, 'deploy/prometheus/alerts.yml')]);
    const rules = parse(await readFile(join(repo, 'deploy/prometheus/alerts.yml'), 'utf8')).groups.flatMap((g: { rules: unknown[] }) => g.rules);
    for (const rule of rules as Array<{ alert: string; expr: string }>) {
      expect(named(rule.expr).length, rule.alert).toBeGreaterThan(0);
      for (const m of named(rule.expr)) expect(served, `${rule.alert}: ${m}`).toContain(m);
    }
  });

  it("the dashboard's queries name only metrics keyrot serves, and each parses as PromQL", async () => {
    const dashboard = JSON.parse(await readFile(join(repo, 'deploy/grafana/keyrot-dashboard.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets: Array<{ expr: string }> }) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(5);
    for (const expr of exprs) for (const m of named(expr)) expect(served, `${expr}: ${m}`).toContain(m);
    // promtool parses PromQL in rule files: the queries, as recording rules ($__rate_interval as 5m).
    const rules = { groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `keyrot:dashboard_${i}`, expr: e.replaceAll('$__rate_interval', '5m') })) }] };
    const file = join(dir, 'dashboard-rules.yml');
    await writeFile(file, JSON.stringify(rules));
    await promtool(['check', 'rules', file]);
  });
});

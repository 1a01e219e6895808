import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { commandContext, type CommandContext } from '../../src/cli/context.ts';
import { createScheduler, createUsageWatch } from '../../src/cli/commands/schedule.ts';
import type { WatchResult } from '../../src/scheduler/usage-watch.ts';
import { fingerprint, hint } from '../../src/core/secret.ts';
import { parseInventory } from '../../src/inventory/load.ts';
import { DaemonMetrics } from '../../src/ops/metrics.ts';
import { observe } from '../../src/ops/observe.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { Journal } from '../../src/state/journal.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * The daemon's usage watch (`watch:` in targets.yaml) as `keyrot schedule` wires it, under a fake
 * clock: the OpenAI emulator serves the Admin API's usage and key records over HTTP on the same
 * clock, the journal holds a rotation, alerts go to a loopback webhook, and the metrics are scraped
 * through the daemon's own registry (checked by promtool when installed).
 */
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const PROJECT = 'proj_watch_test';
const START = Date.parse('2026-03-10T12:00:00Z');
let clock = fakeClock(START);
const emu = new OpenAIEmulator({ now: () => clock.now() });
let dir: string;
let adminKey: string;
/** A loopback webhook: records what it accepts; answers 500 to the next `fail` requests. */
const hook = { bodies: [] as Array<Record<string, any>>, fail: 0, url: '', close: async () => {} };

beforeAll(async () => {
  await emu.start();
  adminKey = emu.addAdminKey();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (hook.fail > 0) return void (hook.fail--, res.writeHead(500).end('down'));
      hook.bodies.push(JSON.parse(body));
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  hook.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks/secret-path`;
  hook.close = () => new Promise((r) => server.close(() => r()));
});
afterAll(async () => {
  await emu.stop();
  await hook.close();
});
beforeEach(async () => {
  clock = fakeClock(START);
  hook.bodies.length = 0;
  hook.fail = 0;
  dir = await mkdtemp(join(tmpdir(), 'keyrot-watch-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const WATCH = 'watch:\n  interval: 1h\n  factor: 3\n  baselineDays: 7\n  minRequests: 20\n  webhook: env:WATCH_WEBHOOK\n';

function inventoryText(opts: { admin?: boolean; watch?: string } = {}): string {
  const admin = opts.admin === false ? '' : `  admin:\n    project: ${PROJECT}\n    token: env:OPENAI_ADMIN_KEY\n    endpoint: ${emu.endpoint}\n`;
  return `version: 1\nkey:\n  source: env:NEW_KEY\n  verify: false\n${admin}${opts.watch ?? WATCH}environments:\n  prod:\n    targets:\n      - type: file\n        path: app.key\n`;
}

/** The command context `keyrot schedule -c targets.yaml` builds, on the fake clock. */
async function context(text = inventoryText()): Promise<CommandContext> {
  const config = join(dir, 'targets.yaml');
  await writeFile(config, text);
  const ctx = await commandContext({ config });
  return { ...ctx, clock, processEnv: { ...ctx.processEnv, OPENAI_ADMIN_KEY: adminKey, WATCH_WEBHOOK: hook.url } };
}

async function journal(ctx: CommandContext, oldKey: string, newKey: string, at: number, outcome: 'awaiting-revocation' | 'completed', also: string[] = []) {
  const j = new Journal(ctx.state, 'prod', `rot_${at}`, () => at);
  await j.append({
    step: 'start', outcome: 'ok', mode: 'rotate', source: 'env:NEW_KEY', oldFingerprint: fingerprint(oldKey), oldHint: hint(oldKey), targets: [],
    newFingerprint: fingerprint(newKey), newHint: hint(newKey), alsoRevoke: also.map((k) => ({ hint: hint(k), fingerprint: fingerprint(k), why: 'held by target file:other.key (drift)' })),
  });
  await j.append({ step: 'verified-all', outcome: 'ok' });
  await j.append({ step: 'end', outcome });
}

/** Two project keys: `old` used 10 requests a day until 3 days ago, then `current` 10 a day. */
function fleet(): { old: string; current: string } {
  const old = testKey();
  const current = testKey();
  emu.addUserKey(PROJECT, old);
  emu.addUserKey(PROJECT, current);
  for (let d = 7; d >= 1; d--) emu.useKey(d > 3 ? old : current, START - d * DAY, { requests: 10 });
  return { old, current };
}

function watchOf(ctx: CommandContext) {
  const metrics = new DaemonMetrics();
  const lines: string[] = [];
  const logger = createLogger({ json: true, level: 'info', write: (l) => lines.push(l) });
  return { watch: createUsageWatch(ctx, ctx.inventory, logger, metrics), metrics, lines, scrape: async () => (await (await observe(ctx, ctx.inventory, metrics).collect()).metrics()) };
}

const value = (scrape: string, series: string) => {
  const line = scrape.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

async function promtool(scrape: string): Promise<void> {
  if (!existsSync('/usr/bin/promtool')) {
    if (process.env.CI === 'true') throw new Error('promtool is missing: apt-get install -y prometheus');
    return;
  }
  const child = execFile('promtool', ['check', 'metrics']);
  child.stdin?.end(scrape);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  expect(await new Promise((r) => child.on('close', r)), out).toBe(0);
}

describe('the usage watch of keyrot schedule', () => {
  it('a spike alerts once a day, not at every interval: webhook JSON, log line, metric; the alert says to run keyrot emergency', async () => {
    const { old, current } = fleet();
    const ctx = await context();
    await journal(ctx, old, current, START - 3 * DAY - HOUR, 'awaiting-revocation');
    emu.useKey(current, START, { requests: 200 });
    const { watch, metrics, lines, scrape } = watchOf(ctx);
    // The daemon's loop: 4 polls an hour apart on the fake clock, then stop.
    const stop = new AbortController();
    let polls = 0;
    const poll = watch.poll.bind(watch);
    watch.poll = async (env) => {
      const r = await poll(env);
      if (++polls === 4) stop.abort();
      return r;
    };
    await watch.run(stop.signal);
    expect(clock.now() - START).toBe(4 * HOUR);

    expect(hook.bodies).toHaveLength(1);
    const body = hook.bodies[0]!;
    expect(body).toMatchObject({ event: 'usage-alert', reason: 'spike', env: 'prod', today: 200, factor: 3, day: '2026-03-10' });
    expect(body.key).toMatchObject({ role: 'current', hint: hint(current), fingerprint: fingerprint(current), keyId: emu.keyIdOf(current) });
    expect(body.baselineDaily).toBeCloseTo(70 / 7);
    const config = join(dir, 'targets.yaml');
    expect(body.action).toBe(`keyrot emergency -e prod -c ${config}`);
    expect(body.text).toContain(`run \`keyrot emergency -e prod -c ${config}\``);
    for (const k of [old, current, adminKey]) expect(JSON.stringify(body) + lines.join('\n')).not.toContain(k);
    expect(lines.filter((l) => /"event":"usage-alert"/.test(l))).toHaveLength(1);

    const text = await scrape();
    await promtool(text);
    expect(value(text, 'keyrot_usage_alerts_total{env="prod",reason="spike"}')).toBe(1);
    expect(value(text, 'keyrot_usage_alerts_total{env="prod",reason="retired-key-used"}')).toBe(0);
    expect(value(text, 'keyrot_usage_watch_up{env="prod"}')).toBe(1);
    expect(metrics.watchUp.get('prod')).toBe(true);
    // A restarted daemon (a new watch, same state) does not page again the same day.
    expect((await watchOf(ctx).watch.pollAll())[0]!.alerts).toHaveLength(0);
    expect(hook.bodies).toHaveLength(1);
  });

  it('a retired key used after the switch alerts retired-key-used; an old key awaiting revocation, pending-key-used', async () => {
    const { old, current } = fleet();
    const drifted = testKey();
    emu.addUserKey(PROJECT, drifted);
    const ctx = await context();
    await journal(ctx, old, current, START - 3 * DAY, 'completed');
    const next = testKey();
    emu.addUserKey(PROJECT, next);
    await journal(ctx, current, next, START - DAY, 'awaiting-revocation', [drifted]);
    // Use within revoke.disuse.margin (10 min) of the switch is requests in flight: no alert.
    emu.useKey(current, START - DAY + 5 * 60_000, { requests: 1 });
    const { watch } = watchOf(ctx);
    expect((await watch.pollAll())[0]!.alerts).toHaveLength(0);
    emu.useKey(old, START, { requests: 2 });
    emu.useKey(drifted, START, { requests: 1 });
    const [r] = await watch.pollAll();
    expect(r!.alerts.map((a) => [a.reason, a.key.fingerprint]).sort()).toEqual(
      [['retired-key-used', fingerprint(old)], ['pending-key-used', fingerprint(drifted)]].sort(),
    );
    const retired = hook.bodies.find((b) => b.reason === 'retired-key-used')!;
    expect(retired).toMatchObject({ lastUsedAt: new Date(Math.floor(START / 1000) * 1000).toISOString(), retiredAt: new Date(START - 3 * DAY).toISOString() });
    expect(retired.text).toMatch(/the retired key sk-proj-\.\.\.\S{4} \([0-9a-f]{12}\) of prod was used at .* still lists it: it was not revoked.* run `keyrot emergency -e prod -c \S+`/);
    // A revoked key (gone from the project) is not used, whatever its last use was.
    emu.revokeKey(old);
    await clock.sleep(DAY);
    emu.useKey(drifted, clock.now(), { requests: 1 });
    expect((await watch.pollAll())[0]!.alerts.map((a) => a.reason)).toEqual(['pending-key-used']);
  });

  it('an alert the webhook did not take (500 after its retries) is sent again at the next poll, then not again', async () => {
    const { old, current } = fleet();
    const ctx = await context();
    await journal(ctx, old, current, START - 2 * DAY, 'awaiting-revocation');
    emu.useKey(old, START, { requests: 3 });
    const { watch, lines } = watchOf(ctx);
    hook.fail = 3;
    expect((await watch.pollAll())[0]!.alerts.map((a) => a.reason)).toEqual(['pending-key-used']);
    expect(hook.bodies).toHaveLength(0);
    expect(lines.join('\n')).toMatch(/the notification webhook at 127\.0\.0\.1:\d+ failed/);
    expect(lines.join('\n')).not.toContain('secret-path');
    await clock.sleep(HOUR);
    expect((await watch.pollAll())[0]!.alerts).toHaveLength(1);
    await clock.sleep(HOUR);
    expect((await watch.pollAll())[0]!.alerts).toHaveLength(0);
    expect(hook.bodies.map((b) => b.reason)).toEqual(['pending-key-used']);
    // The metric counts the alert once, however many polls it took to deliver.
    expect(value(await watchOf(ctx).scrape(), 'keyrot_usage_alerts_total{env="prod",reason="pending-key-used"}')).toBe(1);
  });

  it('a quiet key: 1 request a day then 4 today is above 3× the baseline but below minRequests: no alert', async () => {
    const quiet = testKey();
    const before = testKey();
    emu.addUserKey(PROJECT, quiet);
    const ctx = await context();
    await journal(ctx, before, quiet, START - 8 * DAY, 'completed');
    for (let d = 7; d >= 1; d--) emu.useKey(quiet, START - d * DAY, { requests: 1 });
    emu.useKey(quiet, START, { requests: 4 });
    const [r] = await watchOf(ctx).watch.pollAll();
    expect(r).toMatchObject({ up: true, alerts: [] });
    expect(hook.bodies).toHaveLength(0);
    // The same key at 25 requests (above minRequests 20): alerted.
    emu.useKey(quiet, START, { requests: 21 });
    expect((await watchOf(ctx).watch.pollAll())[0]!.alerts.map((a) => a.reason)).toEqual(['spike']);
  });

  it('without key.admin, or with the Admin API unreachable, the watch is down (log, metric 0) and nothing crashes', async () => {
    const ctx = await context(inventoryText({ admin: false }));
    const { watch, lines, scrape } = watchOf(ctx);
    const [r] = await watch.pollAll();
    expect(r).toMatchObject({ env: 'prod', up: false });
    expect(lines.join('\n')).toMatch(/usage watch of prod not running: key.admin is not configured/);
    const text = await scrape();
    await promtool(text);
    expect(value(text, 'keyrot_usage_watch_up{env="prod"}')).toBe(0);

    const unreachable = await context(inventoryText().replace(emu.endpoint, 'http://127.0.0.1:9/v1'));
    const { old, current } = fleet();
    await journal(unreachable, old, current, START - DAY, 'awaiting-revocation');
    const down = watchOf(unreachable);
    expect((await down.watch.pollAll())[0]).toMatchObject({ up: false, detail: expect.stringMatching(/^not running: the OpenAI Admin API failed/) });
    expect(value(await down.scrape(), 'keyrot_usage_watch_up{env="prod"}')).toBe(0);
  });

  it('each Admin API failure (500, 401, 429) counts in keyrot_provider_errors_total{provider="openai-admin"} by class; a poll that works adds nothing', async () => {
    const { old, current } = fleet();
    const ctx = await context();
    await journal(ctx, old, current, START - DAY, 'awaiting-revocation');
    // The first request of each of the first three polls fails; the fourth poll works.
    emu.server.failNext({ status: 500, body: { error: { message: 'The server had an error' } } });
    emu.server.failNext({ status: 401, body: { error: { message: 'Incorrect API key provided' } } });
    emu.server.failNext({ status: 429, headers: { 'retry-after': '2' }, body: { error: { message: 'Rate limit reached' } } });
    const { watch, scrape } = watchOf(ctx);
    // The daemon's loop on the fake clock: 4 polls an hour apart, then stop.
    const stop = new AbortController();
    const results: WatchResult[] = [];
    const poll = watch.poll.bind(watch);
    watch.poll = async (env) => {
      const r = await poll(env);
      if (results.push(r) === 4) stop.abort();
      return r;
    };
    await watch.run(stop.signal);
    expect(clock.now() - START).toBe(4 * HOUR);
    expect(results.map((r) => r.up)).toEqual([false, false, false, true]);

    const text = await scrape();
    await promtool(text);
    const errors = (cls: string) => value(text, `keyrot_provider_errors_total{provider="openai-admin",class="${cls}"}`);
    expect([errors('5xx'), errors('auth'), errors('throttled')], text).toEqual([1, 1, 1]);
    expect(errors('timeout')).toBeUndefined();
    expect(value(text, 'keyrot_usage_watch_up{env="prod"}')).toBe(1);
  });

  it('a scheduled rotation minting through the Admin API counts the Admin API failure in keyrot_provider_errors_total too', async () => {
    const text = `version: 1\nkey:\n  source: openai-admin\n  verify: false\n  admin:\n    project: ${PROJECT}\n    token: env:OPENAI_ADMIN_KEY\n    endpoint: ${emu.endpoint}\nschedule:\n  cron: "0 9 1 * *"\nenvironments:\n  prod:\n    targets:\n      - type: file\n        path: app.key\n`;
    const ctx = await context(text);
    await writeFile(join(dir, 'app.key'), testKey(), { mode: 0o600 });
    // Creating the service account that would hold the new key fails: the rotation writes nothing.
    emu.server.failNext({ status: 500, body: { error: { message: 'The server had an error' } } });
    const metrics = new DaemonMetrics();
    const logger = createLogger({ json: true, level: 'info', write: () => {} });
    const [run] = await createScheduler(ctx, ctx.inventory, logger, metrics).runDue();
    expect(run?.action, JSON.stringify(run)).not.toBe('rotated');
    const scrape = await (await observe(ctx, ctx.inventory, metrics).collect()).metrics();
    expect(value(scrape, 'keyrot_provider_errors_total{provider="openai-admin",class="5xx"}'), scrape).toBe(1);
  });

  it('keyrot schedule --once polls once: a new alert is exit 1 with its text in the summary; the next run finds it sent (exit 0)', async () => {
    clock = fakeClock(Date.now()); // the emulator's clock: the CLI runs on the real one
    const { old, current } = fleet();
    const ctx = await context();
    await journal(ctx, old, current, clock.now() - 2 * DAY, 'awaiting-revocation');
    emu.useKey(old, clock.now(), { requests: 1 });
    const env = { OPENAI_ADMIN_KEY: adminKey, WATCH_WEBHOOK: hook.url };
    const r = await runCli(['schedule', '--once', '--wide'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/prod\s+watched\s+keyrot: the old key sk-proj-\.\.\.\S{4} \([0-9a-f]{12}\) of prod, awaiting revocation, was used at/);
    expect(r.stdout).toContain('Run `keyrot emergency -e prod` (a new key everywhere now');
    const again = await runCli(['schedule', '--once', '--json'], { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).watch).toEqual([{ env: 'prod', up: true, detail: '0 new alert(s)', alerts: [] }]);
    expect(hook.bodies).toHaveLength(1);
  });

  it('keyrot schedule --once with a watch but no key.admin runs, says the watch is down, exit 0', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventoryText({ admin: false }));
    const r = await runCli(['schedule', '--once'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/prod\s+watch down\s+not running: key\.admin is not configured/);
  });
});

describe('keyrot schedule --listen with a watch and no schedule (the daemon, a real process)', () => {
  it('polls at start: the alert is a JSON log line, the webhook gets it, /metrics counts it; SIGTERM stops it', async () => {
    clock = fakeClock(Date.now()); // the emulator's clock: the daemon runs on the real one
    const { old, current } = fleet();
    const ctx = await context(inventoryText());
    await journal(ctx, old, current, clock.now() - 2 * DAY, 'awaiting-revocation');
    emu.useKey(old, clock.now(), { requests: 2 });
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as { port: number };
        srv.close(() => resolve(port));
      });
    });
    const child = spawn(process.execPath, [BIN, 'schedule', '--listen', String(port)], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...(process.env.XDG_CONFIG_HOME && { XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME }), OPENAI_ADMIN_KEY: adminKey, WATCH_WEBHOOK: hook.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    while (!/"msg":"usage watched"/.test(out) && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const alert = out.split('\n').filter((l) => l.includes('"event":"usage-alert"')).map((l) => JSON.parse(l));
    expect(alert, out).toHaveLength(1);
    expect(alert[0]).toMatchObject({ level: 'warn', env: 'prod', reason: 'pending-key-used', delivered: true });
    expect(hook.bodies.map((b) => [b.reason, b.key.fingerprint])).toEqual([['pending-key-used', fingerprint(old)]]);
    const scrape = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    await promtool(scrape);
    expect(value(scrape, 'keyrot_usage_alerts_total{env="prod",reason="pending-key-used"}')).toBe(1);
    expect(value(scrape, 'keyrot_usage_watch_up{env="prod"}')).toBe(1);
    for (const k of [old, current, adminKey]) expect(out + scrape).not.toContain(k);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);
});

describe('watch: in targets.yaml', () => {
  it('defaults, the per-environment override and `false`', async () => {
    const inv = await parseInventory(
      'version: 1\nwatch: {}\nenvironments:\n  a:\n    targets: [{ type: file, path: k }]\n  b:\n    watch: { interval: 15m, factor: 5 }\n    targets: [{ type: file, path: k }]\n  c:\n    watch: false\n    targets: [{ type: file, path: k }]\n',
      join(tmpdir(), 'targets.yaml'),
    );
    expect(inv.environments.get('a')!.watch).toEqual({ interval: HOUR, factor: 3, baselineDays: 7, minRequests: 50 });
    expect(inv.environments.get('b')!.watch).toMatchObject({ interval: 15 * 60_000, factor: 5 });
    expect(inv.environments.get('c')!.watch).toBeUndefined();
  });

  it('every mistake is reported at its file:line:column', async () => {
    const file = join(tmpdir(), 'targets.yaml');
    const text = 'version: 1\nwatch:\n  interval: 1m\n  factor: 0.5\n  baselineDays: 90\n  webhook: https://example.com/hook\n  minRequest: 3\nenvironments:\n  a:\n    targets: [{ type: file, path: k }]\n';
    let message = '';
    try {
      await parseInventory(text, file);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`${file}:3:13`);
    expect(message).toMatch(/watch\.interval.*at least 5m/);
    expect(message).toContain(`${file}:4:11`);
    expect(message).toMatch(/watch\.factor.*above 1/);
    expect(message).toContain(`${file}:5:17`);
    expect(message).toContain(`${file}:6:12`);
    expect(message).toMatch(/watch\.webhook.*env:VAR/);
    expect(message).toMatch(new RegExp(`${file}:7:3.*unknown field "minRequest" in watch \\(did you mean "minRequests"\\?\\)`));
 
    // Per environment (a mapping or false): the mapping's own mistakes, not the union's "Invalid input".
    let perEnv = '';
    try {
      await parseInventory('version: 1\nenvironments:\n  a:\n    watch:\n      intervall: 1h\n    targets: [{ type: file, path: k }]\n  b:\n    watch: true\n    targets: [{ type: file, path: k }]\n', file);
    } catch (err) {
      perEnv = (err as Error).message;
    }
    expect(perEnv).toContain(`${file}:5:7: environments.a.watch.intervall: unknown field "intervall" in environments.a.watch (did you mean "interval"?)`);
    expect(perEnv).toContain(`${file}:8:12: environments.b.watch: expected a mapping or false`);
    expect(perEnv).not.toContain('Invalid input');
  });
});

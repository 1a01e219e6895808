/**
 * `npm run bench` (fleet part; `node bench/fleet.ts` alone): `keyrot rotate` as a user runs it,
 * over a fleet of N targets — a quarter each Heroku apps, Vercel projects, AWS secrets and `.env`
 * files — against the loopback emulators with `BENCH_LATENCY_MS` (default 25 ms) added to every
 * answer. Prints wall time, requests per target per provider, the sequential bound (Σ requests ×
 * latency), the chain bound (the longest per-target chain × latency), wall ÷ chain and peak RSS;
 * then one run under a tight Heroku rate limit. Asserts nothing about time: a slow machine is not
 * a failure; a target that fails is (the bench exits 1).
 * Looking into a run: BENCH_NODE_ARGS (Node flags for keyrot, e.g. `--cpu-prof`), BENCH_TIMELINE=1
 * (each provider's requests per second: phases, gaps, a paced provider's tail), BENCH_STDERR=path
 * (keyrot's progress lines with the milliseconds since start, to path.N), BENCH_NO_RATE_LIMIT=1.
 */
import { fork, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FleetEndpoints, FleetSetup, ProviderCounts } from './fleet-emulators.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin/keyrot.js');
const hook = join(root, 'bench/rss-hook.mjs');
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 25);
const SIZES = (process.env.BENCH_FLEET_N ?? '10,100,1000').split(',').map(Number);
const VAR = 'OPENAI_API_KEY';
const key = () => 'sk-proj-' + randomBytes(36).toString('base64url');
const fingerprint = (v: string) => createHash('sha256').update(v).digest('hex').slice(0, 12);

type Emulators = ReturnType<typeof fork>;

function ask<T>(child: Emulators, msg: object): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(msg);
  });
}

function inventory(e: FleetEndpoints, dotenv: string[]): string {
  const t: string[] = [];
  for (const app of e.heroku.apps) t.push(`      - { type: heroku, app: ${app}, endpoint: "${e.heroku.url}", token: "env:BENCH_HEROKU_TOKEN" }`);
  for (const p of e.vercel.projects) t.push(`      - { type: vercel, project: ${p}, endpoint: "${e.vercel.url}", token: "env:BENCH_VERCEL_TOKEN" }`);
  for (const s of e.aws.secrets) t.push(`      - { type: aws-secrets-manager, secret: "${s}", region: ${e.aws.region}, endpoint: "${e.aws.url}" }`);
  for (const p of dotenv) t.push(`      - { type: dotenv, path: ${p} }`);
  return `version: 1\nkey:\n  verify: false\n  source: env:BENCH_NEW_KEY\nenvironments:\n  fleet:\n    targets:\n${t.join('\n')}\n`;
}

interface RunResult {
  wallMs: number;
  rssKb: number;
  /** CPU time of the keyrot process (user + system). */
  cpuMs: number;
  exitCode: number | null;
  outcome: string;
  failed: string[];
  counts: Record<string, ProviderCounts>;
  notHolding: string[];
  /** Lines of the rotation's plain progress output that mention pacing (rate-limit waits). */
  pacingLines: string[];
}

/** One rotation of a fresh fleet of `n` targets. */
async function fleetRun(n: number, heroku?: FleetSetup['heroku']): Promise<RunResult> {
  const per = Math.max(1, Math.round(n / 4));
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-fleet-'));
  const emu = fork(join(root, 'bench/fleet-emulators.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const oldKey = key();
    const newKey = key();
    const { endpoints } = await ask<{ endpoints: FleetEndpoints }>(emu, { cmd: 'setup', setup: { perProvider: per, latencyMs: LATENCY_MS, oldKey, varName: VAR, heroku } });
    await mkdir(join(dir, 'env'));
    const dotenv: string[] = [];
    for (let i = 0; i < per; i++) {
      const p = `env/app${String(i).padStart(4, '0')}.env`;
      await writeFile(join(dir, p), `PORT=${3000 + i}\n${VAR}=${oldKey}\n`, { mode: 0o600 });
      dotenv.push(p);
    }
    await writeFile(join(dir, 'targets.yaml'), inventory(endpoints, dotenv));
    const env = {
      ...process.env,
      NO_COLOR: '1',
      XDG_CONFIG_HOME: join(dir, 'config'),
      BENCH_NEW_KEY: newKey,
      BENCH_HEROKU_TOKEN: endpoints.heroku.token,
      BENCH_VERCEL_TOKEN: endpoints.vercel.token,
      AWS_ACCESS_KEY_ID: endpoints.aws.accessKeyId,
      AWS_SECRET_ACCESS_KEY: endpoints.aws.secretAccessKey,
      AWS_SESSION_TOKEN: '',
      AWS_PROFILE: '',
    };
    const t0 = process.hrtime.bigint();
    // BENCH_NODE_ARGS: extra Node flags for the keyrot process (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, '--import', hook, bin, 'rotate', '-e', 'fleet', '--yes', '--json'], { cwd: dir, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    let stamped = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (process.env.BENCH_STDERR) stamped += d.toString().replace(/^(?=.)/gm, `${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0).padStart(6)} `);
    });
    const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (process.env.BENCH_STDERR) await writeFile(`${process.env.BENCH_STDERR}.${n}`, stamped);
    const report = JSON.parse(stdout || '{}') as { outcome?: string; targets?: Array<{ name: string; holds: string }>; error?: { message: string } };
    const { counts } = await ask<{ counts: Record<string, ProviderCounts> }>(emu, { cmd: 'counts' });
    if (process.env.BENCH_TIMELINE) {
      const { timeline, operations } = await ask<{ timeline: Record<string, number[]>; operations: Record<string, Record<string, number>> }>(emu, { cmd: 'timeline' });
      for (const [p, per] of Object.entries(timeline)) console.log(`        ${p.padEnd(6)} requests per second from the first request: ${per.join(' ')}`);
      for (const [p, ops] of Object.entries(operations)) console.log(`        ${p.padEnd(6)} requests by kind: ${Object.entries(ops).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
    const { notHolding } = await ask<{ notHolding: string[] }>(emu, { cmd: 'holds', fingerprint: fingerprint(newKey) });
    return {
      wallMs,
      exitCode,
      rssKb: Number(/KEYROT_BENCH_MAXRSS_KB (\d+)/.exec(stderr)?.[1] ?? 0),
      cpuMs: Number(/KEYROT_BENCH_CPU_MS (\d+)/.exec(stderr)?.[1] ?? 0),
      outcome: report.outcome ?? `error: ${report.error?.message ?? stderr.slice(-500)}`,
      failed: (report.targets ?? []).filter((t) => t.holds !== 'new').map((t) => t.name),
      counts,
      notHolding,
      pacingLines: stderr.split('\n').filter((l) => /pac|rate limit|429/i.test(l)),
    };
  } finally {
    const exited = new Promise((resolve) => emu.once('exit', resolve));
    emu.send({ cmd: 'stop' });
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
}

const ms = (x: number) => `${x >= 10_000 ? (x / 1000).toFixed(1) + ' s' : Math.round(x) + ' ms'}`;

function printRun(n: number, r: RunResult): boolean {
  const per = Math.max(1, Math.round(n / 4));
  const total = Object.values(r.counts).reduce((a, c) => a + c.requests, 0);
  const chain = Math.max(...Object.values(r.counts).map((c) => c.longestChain));
  const chainMs = chain * LATENCY_MS;
  const perTarget = Object.entries(r.counts)
    .map(([p, c]) => `${p} ${(c.requests / per).toFixed(1)}`)
    .join(', ');
  console.log(
    `N=${String(n).padEnd(5)} wall ${ms(r.wallMs).padStart(7)}  sequential ${ms(total * LATENCY_MS).padStart(7)}  chain ${ms(chainMs).padStart(6)} (${chain} req)  wall÷chain ${(r.wallMs / chainMs).toFixed(1).padStart(5)}  RSS ${(r.rssKb / 1024).toFixed(0).padStart(4)} MiB  CPU ${ms(r.cpuMs).padStart(7)}  ${r.outcome}`,
  );
  console.log(`        requests per target: ${perTarget}; 429s: ${Object.entries(r.counts).map(([p, c]) => `${p} ${c.throttled}`).join(', ')}`);
  const ok = r.failed.length === 0 && r.notHolding.length === 0 && r.exitCode === 0;
  if (!ok) console.log(`        FAILED: exit ${r.exitCode}; targets not on the new key: ${[...r.failed, ...r.notHolding].slice(0, 10).join(', ')}`);
  return ok;
}

async function main(): Promise<void> {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`\nfleet: keyrot rotate over N targets (¼ each Heroku, Vercel, AWS Secrets Manager, .env), ${LATENCY_MS} ms added to every answer`);
  console.log(`machine: ${cpus().length} cores (${cpu}), Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)}\n`);
  let ok = true;
  for (const n of SIZES) ok = printRun(n, await fleetRun(n)) && ok;
  if (process.env.BENCH_NO_RATE_LIMIT) return;
  // A rate limit the fleet must pace under: Heroku's bucket far below what its N/4 apps need (6
  // requests each, 1.5 N in all), refilling at N/20 a second, so the budget runs out after ~0.4 N
  // requests and the rest must be paced at the refill rate (~22 s at any N): slower than keyrot's
  // pace even on a starved machine (a refill of 12 N a minute never ran the bucket dry there).
  const n = Math.max(...SIZES);
  const bucket = { capacity: Math.max(20, Math.round(n * 0.4)), refillPerMinute: n * 3 };
  console.log(`\nrate-limited: Heroku bucket of ${bucket.capacity} requests refilling ${bucket.refillPerMinute}/min (RateLimit-Remaining on every answer, 429 when empty)`);
  const r = await fleetRun(n, bucket);
  ok = printRun(n, r) && ok;
  console.log(`        pacing lines in the output: ${r.pacingLines.length}${r.pacingLines[0] ? `, e.g. "${r.pacingLines[0].trim().slice(0, 140)}"` : ''}`);
  if (!ok) process.exitCode = 1;
}

await main();

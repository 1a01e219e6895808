/**
 * `npm run bench`: start-up time and memory of the CLI against a bare `node -e 0`, and the
 * engine's cost per target. Prints figures and ratios; asserts nothing (a slow machine is not a
 * failure). Targets of issue #2: `keyrot --help` within 0.15 s and `keyrot plan -e local` within
 * 0.4 s of wall time on Node 24. Both as the clone runs them (TypeScript sources, type stripping)
 * and as an installed package runs them (`npm pack`, then `npm install -g` of the tarball into a
 * temp prefix: the compiled dist/); BENCH_INSTALLED=0 skips the installed package (pack + install
 * take a minute or two).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { envWithNode, run } from '../test/helpers/npm.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin/keyrot.js');
const hook = join(root, 'bench/rss-hook.mjs');
const RUNS = Number(process.env.BENCH_RUNS ?? 15);

function measure(args: string[], cwd: string, extraEnv: Record<string, string> = {}): { medianMs: number; minMs: number; rssKb: number; cpuMs: number } {
  const times: number[] = [];
  // CPU time (user + system) of each run: on a shared, loaded machine wall time says little.
  const cpu: number[] = [];
  let rss = 0;
  // One warm-up run (file system cache), then RUNS measured runs.
  for (let i = 0; i <= RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ['--import', hook, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...extraEnv } });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0 && r.status !== 1) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    const m = /KEYROT_BENCH_MAXRSS_KB (\d+)/.exec(r.stderr);
    if (m) rss = Math.max(rss, Number(m[1]));
    if (i > 0) times.push(ms);
    if (i > 0) cpu.push(Number(/KEYROT_BENCH_CPU_MS (\d+)/.exec(r.stderr)?.[1] ?? 0));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { medianMs: median(times), minMs: times[0]!, rssKb: rss, cpuMs: median(cpu) };
}

const key = () => 'sk-proj-' + randomBytes(36).toString('base64url');

async function main(): Promise<void> {
  console.log(`keyrot bench on Node ${process.version}, ${RUNS} runs each (median wall time)\n`);
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-bench-'));
  try {
    // The shipped inventory's sandbox environment, as a user runs it.
    await mkdir(join(dir, 'sandbox'));
    const k = key();
    await writeFile(join(dir, 'sandbox/.env'), `OPENAI_API_KEY=${k}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'sandbox/openai_api_key'), k, { mode: 0o600 });
    const inventory = (await import('node:fs')).readFileSync(join(root, 'targets.yaml'), 'utf8');
    await writeFile(join(dir, 'targets.yaml'), inventory);

    const base = measure(['-e', '0'], dir);
    // Warm: Node's compile cache (enabled by bin/keyrot.js) holds the compiled modules, as on every
    // run after the first. Cold: the cache is off, as on the very first run after `npm install`.
    const cold = { KEYROT_NO_COMPILE_CACHE: '1' };
    const rows: Array<[string, ReturnType<typeof measure>, number | null]> = [['node -e 0', base, null]];
    const installed = process.env.BENCH_INSTALLED === '0' ? [] : [['installed', await installPackage(dir)] as const];
    for (const [label, entry] of [['', bin] as const, ...installed]) {
      const name = (s: string) => (label ? `${s} [${label}]` : s);
      rows.push(
        [name('keyrot --help'), measure([entry, '--help'], dir), 150],
        [name('keyrot --help (cold)'), measure([entry, '--help'], dir, cold), null],
        [name('keyrot plan -e local'), measure([entry, 'plan', '-e', 'local'], dir), 400],
        [name('keyrot plan (cold)'), measure([entry, 'plan', '-e', 'local'], dir, cold), null],
        [name('keyrot status'), measure([entry, 'status'], dir), null],
      );
    }
    console.log('command                              median    min     ×node   peak RSS  ×node    CPU   ×node   budget');
    for (const [name, m, budget] of rows) {
      const ratio = (m.medianMs / base.medianMs).toFixed(2);
      const rssRatio = base.rssKb ? (m.rssKb / base.rssKb).toFixed(2) : '—';
      const cpuRatio = base.cpuMs ? (m.cpuMs / base.cpuMs).toFixed(2) : '—';
      const verdict = budget === null ? '' : m.medianMs <= budget ? `≤ ${budget} ms ok` : `> ${budget} ms OVER`;
      console.log(
        `${name.padEnd(35)} ${m.medianMs.toFixed(0).padStart(5)} ms ${m.minMs.toFixed(0).padStart(5)} ms  ${ratio.padStart(6)}  ${(m.rssKb / 1024).toFixed(1).padStart(6)} MB  ${rssRatio.padStart(5)}  ${String(m.cpuMs).padStart(4)} ms ${cpuRatio.padStart(5)}   ${verdict}`,
      );
    }

    // Engine throughput: a rotation of N local targets, in process.
    console.log('\nengine: rotate N dotenv targets (write + verify, fsynced journal)');
    const { bench } = await import('./engine.ts');
    const small = await bench(5);
    const large = await bench(100);
    console.log(`  N=5    ${small.ms.toFixed(0).padStart(5)} ms  (${(small.ms / 5).toFixed(1)} ms/target)`);
    console.log(`  N=100  ${large.ms.toFixed(0).padStart(5)} ms  (${(large.ms / 100).toFixed(1)} ms/target)`);
    console.log(`  per-target cost ratio N=100 / N=5: ${(large.ms / 100 / (small.ms / 5)).toFixed(2)} (≤ 1 means it scales linearly or better)`);
    console.log(`  heap after N=100: ${(large.heapMb).toFixed(1)} MB`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `npm pack`, then the tarball installed globally into a temp prefix; returns the installed bin. */
async function installPackage(dir: string): Promise<string> {
  const env = envWithNode(dirname(process.execPath));
  const pack = await run('npm', ['pack', '--pack-destination', dir], { cwd: root, env });
  if (pack.code !== 0) throw new Error(`npm pack failed: ${pack.stderr}`);
  const tarball = join(dir, pack.stdout.trim().split('\n').pop()!);
  const install = await run('npm', ['install', '-g', '--prefix', join(dir, 'global'), '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: dir, env });
  if (install.code !== 0) throw new Error(`npm install -g failed: ${install.stderr}`);
  const size = (await stat(tarball)).size;
  console.log(`installed package: ${tarball} (${(size / 1e6).toFixed(1)} MB packed)\n`);
  return join(dir, 'global', 'lib', 'node_modules', 'keyrot', 'bin', 'keyrot.js');
}

await main();

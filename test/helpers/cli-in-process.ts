import type { CliResult } from './cli.ts';

/**
 * The CLI's own `main()` in the test's process, as `keyrot demo` runs its steps: the same parsing,
 * engine and rendering as `bin/keyrot.js`, without paying a new process and its provider SDK
 * imports (the Kubernetes client alone costs ~1 s of CPU per process). For the tests that run the
 * CLI hundreds of times. One at a time: a command owns the process's stdout, stderr, environment
 * and signal handlers while it runs.
 */
let queue: Promise<unknown> = Promise.resolve();

/** Time the commands ran (not queued) and the CPU this process used meanwhile (CLI and whatever else runs in it). */
export const inProcessSpent = { ms: 0, cpuMs: 0 };

export function runMainInProcess(args: string[], env: Record<string, string>): Promise<CliResult> {
  const run = async (): Promise<CliResult> => {
    const { main } = await import('../../src/cli/main.ts');
    const saved = { out: process.stdout.write, err: process.stderr.write, env: { ...process.env } };
    let stdout = '';
    let stderr = '';
    process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof process.stderr.write;
    Object.assign(process.env, { NO_COLOR: '1', ...env });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    try {
      const code = await main(args);
      return { code, signal: null, stdout, stderr };
    } finally {
      const cpu = process.cpuUsage(cpu0);
      inProcessSpent.ms += performance.now() - t0;
      inProcessSpent.cpuMs += (cpu.user + cpu.system) / 1000;
      process.stdout.write = saved.out;
      process.stderr.write = saved.err;
      for (const k of Object.keys(process.env)) if (!(k in saved.env)) delete process.env[k];
      Object.assign(process.env, saved.env);
    }
  };
  const p = queue.then(run, run);
  queue = p.catch(() => {});
  return p;
}

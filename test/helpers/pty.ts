import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BIN } from './cli.ts';

const RELAY = fileURLToPath(new URL('./pty-relay.py', import.meta.url));

export interface PtyExit {
  code: number | null;
  /** The signal number that ended the command, if one did. */
  signal: number | null;
  /** The terminal's mode after the command: echo, line editing, Ctrl-C as SIGINT. */
  echo: boolean;
  icanon: boolean;
  isig: boolean;
}

export interface PtySession {
  /** Everything the command wrote to its terminal so far (echoed keystrokes included). */
  readonly output: () => string;
  /** Resolves once the output (from `from` on) matches; rejects after `timeoutMs` with what was seen. */
  waitFor(pattern: string | RegExp, opts?: { timeoutMs?: number; from?: number }): Promise<void>;
  /** Types bytes on the terminal ("\x03" is Ctrl-C, "\x04" Ctrl-D). */
  type(bytes: string): void;
  /** Sends a signal to the command's process (not through the terminal). */
  kill(signal: NodeJS.Signals): void;
  readonly exited: Promise<PtyExit>;
}

/**
 * Runs the real CLI on a pseudo-terminal (test/helpers/pty-relay.py, python3's pty module), with
 * the environment reduced to what the test passes, like runCli; 160 columns unless `columns`.
 */
export function runCliOnPty(args: string[], opts: { cwd: string; env?: Record<string, string>; columns?: number }): PtySession {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    // keyrot's state key and anchors: the tests' own (global-setup.ts), never the real home's.
    ...(process.env.XDG_CONFIG_HOME ? { XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME } : {}),
    NO_COLOR: '1',
    TERM: 'xterm',
    ...opts.env,
  };
  const size = opts.columns ? [`--columns=${opts.columns}`] : [];
  const relay = spawn('python3', [RELAY, ...size, process.execPath, BIN, ...args], { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let pid = 0;
  let closed = false;
  const waiters = new Set<() => void>();
  relay.stdout.setEncoding('utf8');
  relay.stdout.on('data', (d: string) => {
    out += d;
    for (const w of waiters) w();
  });
  relay.stderr.setEncoding('utf8');
  relay.stderr.on('data', (d: string) => {
    err += d;
    const m = /\{"pid": (\d+)\}/.exec(err);
    if (m) pid = Number(m[1]);
  });
  const exited = new Promise<PtyExit>((resolve, reject) => {
    relay.on('error', reject);
    relay.on('close', (code) => {
      closed = true;
      for (const w of waiters) w();
      const last = err.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{"code"')) return reject(new Error(`pty relay failed (exit ${code}): ${err}`));
      resolve(JSON.parse(last) as PtyExit);
    });
  });
  return {
    output: () => out,
    waitFor(pattern, { timeoutMs = 60_000, from = 0 } = {}) {
      const matches = () => (typeof pattern === 'string' ? out.indexOf(pattern, from) >= 0 : pattern.test(out.slice(from)));
      return new Promise((resolve, reject) => {
        const check = () => {
          if (matches()) return done(resolve);
          if (closed) done(() => reject(new Error(`the command ended before ${String(pattern)} appeared; it wrote:\n${out}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`${String(pattern)} did not appear in ${timeoutMs}ms; the terminal shows:\n${out}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    type: (bytes) => relay.stdin.write(bytes),
    kill: (signal) => process.kill(pid, signal),
    exited,
  };
}

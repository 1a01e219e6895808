import { createHash } from 'node:crypto';
import { TargetError } from '../core/errors.ts';
import { redact } from '../core/redact.ts';
import type { Clock } from '../runtime/clock.ts';
import { formatDuration } from '../inventory/duration.ts';
import { DockerApiError, type DockerEngine } from './docker-engine.ts';

/*
 * `verify: exec` of the Docker targets: the running container itself computes the SHA-256 of
 * what it sees (the mounted file, or the variable in its environment) and keyrot compares it
 * with the hash of the value it expects. Only a hash leaves the container; nothing of the value
 * is in any command line (the file's path or the variable's name is).
 *
 * Engine API (https://docs.docker.com/reference/api/engine/, "Exec"): POST /containers/{id}/exec
 * creates the exec, POST /exec/{id}/start with Detach false answers with the process's output
 * until it ends (without a TTY, stdout and stderr multiplexed in frames with an 8-byte header:
 * stream type, three zero bytes, big-endian length), GET /exec/{id}/json gives the exit code.
 * Engine 20.10 answers 409 for a paused or stopped container, and runs a missing command as exit
 * code 126 with "executable file not found in $PATH" on the output.
 */

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Output beyond this is not kept (a hash line is 70 bytes). */
const MAX_OUTPUT = 16 * 1024;

export interface ExecOptions {
  /** Deadline of the whole exec, from create to exit code. */
  deadlineMs: number;
  clock: Clock;
  signal?: AbortSignal;
}

/** Runs `cmd` in the container and waits for it to end, within the deadline. */
export async function execIn(engine: DockerEngine, containerId: string, cmd: string[], o: ExecOptions): Promise<ExecResult> {
  const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.deadlineMs)]) : AbortSignal.timeout(o.deadlineMs);
  try {
    const created = await engine.call<{ Id: string }>(
      'POST',
      `/containers/${encodeURIComponent(containerId)}/exec`,
      { Cmd: cmd, AttachStdout: true, AttachStderr: true, Tty: false },
      signal,
    );
    const raw = await engine.callRaw('POST', `/exec/${created.Id}/start`, { Detach: false, Tty: false }, signal, { timeoutMs: o.deadlineMs });
    const { stdout, stderr } = demux(raw);
    return { exitCode: await exitCodeOf(engine, created.Id, o.clock, signal), stdout, stderr };
  } catch (err) {
    if (err instanceof DockerApiError && err.status === 409) {
      throw new TargetError(`cannot run a check in container ${short(containerId)}: ${err.dockerMessage}`, { kind: 'unavailable', retryable: false, cause: err });
    }
    if (signal.aborted && !o.signal?.aborted) {
      throw new TargetError(
        `the check in container ${short(containerId)} did not finish within ${formatDuration(o.deadlineMs)} (\`${cmd[0]}\`): is the container overloaded, or is the file a pipe?`,
        { kind: 'timeout', retryable: true, cause: err },
      );
    }
    throw err;
  }
}

/** The stream ends when the process does; its exit code is recorded right after. */
async function exitCodeOf(engine: DockerEngine, execId: string, clock: Clock, signal: AbortSignal): Promise<number | null> {
  for (let look = 0; look < 20; look++) {
    const info = await engine.call<{ ExitCode?: number | null; Running?: boolean }>('GET', `/exec/${execId}/json`, undefined, signal);
    if (!info.Running) return info.ExitCode ?? null;
    await clock.sleep(100, signal);
  }
  return null;
}

/** Splits the multiplexed stream (type 1 stdout, 2 stderr); anything else is taken as a raw stream. */
export function demux(buf: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const type = buf[i]!;
    const size = buf.readUInt32BE(i + 4);
    if (type > 2 || buf[i + 1] !== 0 || buf[i + 2] !== 0 || buf[i + 3] !== 0) return { stdout: cap(buf), stderr: '' };
    (type === 2 ? err : out).push(buf.subarray(i + 8, Math.min(buf.length, i + 8 + size)));
    i += 8 + size;
  }
  return { stdout: cap(Buffer.concat(out)), stderr: cap(Buffer.concat(err)) };
}

function cap(b: Buffer): string {
  return b.subarray(0, MAX_OUTPUT).toString('utf8');
}

function short(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? id.slice(0, 12) : id;
}

/** The hex SHA-256 of `data`, as sha256sum prints it. */
export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** What a check looks at in the container: a file's bytes, or a variable of its environment. */
export type Seen = { file: string } | { env: string };

/** A variable name the check's shell can expand (`$NAME`); other names cannot be checked with sh. */
export const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The command that prints the SHA-256 of what the container sees. A file: `sha256sum PATH`. A
 * variable: sh's own `printf` (a builtin: the value is in no process's arguments) piped into
 * sha256sum; exit 3 when the variable is not set.
 */
function checkCommand(seen: Seen): string[] {
  if ('file' in seen) return ['sha256sum', seen.file];
  if (!SHELL_NAME.test(seen.env)) throw new TargetError(`verify: exec cannot check ${seen.env}: sh cannot name it`, { kind: 'invalid', retryable: false });
  return ['sh', '-c', `[ "\${${seen.env}+set}" = set ] || exit 3; printf '%s' "$${seen.env}" | sha256sum`];
}

/** The SHA-256 of what the container sees, or null when the variable is not set / the file does not exist there. */
export async function sha256Seen(engine: DockerEngine, containerId: string, name: string, seen: Seen, o: ExecOptions): Promise<string | null> {
  const r = await execIn(engine, containerId, checkCommand(seen), o);
  const hash = /^([0-9a-f]{64})\s/.exec(r.stdout)?.[1];
  if (r.exitCode === 0 && hash) return hash;
  const said = redact((r.stderr || r.stdout).trim()).slice(0, 300);
  if ('env' in seen && r.exitCode === 3) return null;
  if ('file' in seen && /no such file/i.test(said)) return null;
  if (r.exitCode === 126 || r.exitCode === 127 || /not found|applet/i.test(said)) {
    throw new TargetError(
      `verify: exec runs ${'file' in seen ? '`sha256sum`' : '`sh` and `sha256sum`'} in container ${name}, and its image has none (${said || `exit ${r.exitCode}`}): add busybox or coreutils to the image, or remove \`verify: exec\` from this target`,
      { kind: 'unsupported', retryable: false },
    );
  }
  throw new TargetError(`the check in container ${name} failed (exit ${r.exitCode ?? 'unknown'}${said ? `: ${said}` : ''})`, { kind: 'unavailable', retryable: false });
}

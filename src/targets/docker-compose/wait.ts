import { TargetError } from '../../core/errors.ts';
import { redact } from '../../core/redact.ts';
import { formatDuration } from '../../inventory/duration.ts';
import type { Clock } from '../../runtime/clock.ts';
import { poll } from '../../runtime/poll.ts';
import type { DockerEngine } from '../docker-engine.ts';
import { inspectOrNull, nameOf, type ContainerInspect } from './containers.ts';

export interface WaitOptions {
  engine: DockerEngine;
  clock: Clock;
  deadlineMs: number;
  signal?: AbortSignal;
  target: string;
}

/** First look a second after the start, then the default backoff: "still running" spans at least that second. */
const FIRST_LOOK_MS = 1_000;

/**
 * Waits until the container runs again after keyrot (re)started it, and is `healthy` when its
 * image or service defines a healthcheck (State.Health). Ends early, with what the Engine says,
 * when it exits, turns unhealthy, or is restarted by its restart policy (a crash loop): a
 * container that refuses the new key must stop the rotation, not time it out. Running counts
 * once two looks in a row (a second apart at least) see the same start: an app that exits on a
 * bad key a moment after it starts is not taken for one that runs. One that fails later needs a
 * healthcheck to be caught. `restartsBefore`: its RestartCount right after keyrot started it.
 */
export async function waitUntilRunning(id: string, restartsBefore: number, o: WaitOptions): Promise<string> {
  let last: ContainerInspect | null = null;
  let runningSince: string | undefined;
  const look = async (): Promise<string | undefined> => {
    last = await inspectOrNull(o.engine, id, o.signal);
    if (!last) throw fail(`container ${id.slice(0, 12)} was removed while keyrot waited for it to start`, 'not-found');
    const state = settled(last, restartsBefore);
    const seenBefore = runningSince !== undefined && runningSince === last.State.StartedAt;
    runningSince = state === undefined ? undefined : last.State.StartedAt;
    return seenBefore ? state : undefined;
  };
  const done = await poll({
    check: look,
    until: (s) => s !== undefined,
    deadlineMs: o.deadlineMs,
    intervalMs: FIRST_LOOK_MS,
    clock: o.clock,
    signal: o.signal,
    target: o.target,
    op: 'redeploy',
    describe: () => {
      const c = last as ContainerInspect | null;
      const state = c ? `${c.State.Status}${c.State.Health ? `, ${c.State.Health.Status}` : ''}` : 'not seen';
      return `container ${c ? nameOf(c) : id.slice(0, 12)} is not running and healthy after ${formatDuration(o.deadlineMs)} (${state}): check docker logs; raise timeout: of this target if it starts slowly`;
    },
  });
  return done!;
}

/** Done (a description), not yet (undefined), or a failure (thrown). */
export function settled(c: ContainerInspect, restartsBefore: number): string | undefined {
  const name = nameOf(c);
  const s = c.State;
  if ((c.RestartCount ?? 0) > restartsBefore) {
    throw fail(
      `container ${name} was restarted ${(c.RestartCount ?? 0) - restartsBefore} time(s) by its restart policy since keyrot started it (last exit code ${s.ExitCode ?? 'unknown'}): its app may refuse the key; see docker logs ${name}`,
      'unavailable',
    );
  }
  if (!s.Running && !s.Restarting && (s.Status === 'exited' || s.Status === 'dead')) {
    throw fail(`container ${name} exited with code ${s.ExitCode ?? 'unknown'} after keyrot started it: its app may refuse the key; see docker logs ${name}`, 'unavailable');
  }
  if (!s.Running || s.Restarting || s.Paused) return undefined;
  const health = s.Health?.Status;
  if (health === 'unhealthy') {
    const out = redact(s.Health?.Log?.at(-1)?.Output?.trim() ?? '').slice(0, 200);
    throw fail(`container ${name} is unhealthy after keyrot started it${out ? ` (last check: ${out})` : ''}: see docker inspect ${name}`, 'unavailable');
  }
  if (health && health !== 'healthy') return undefined;
  return health ? 'running, healthy' : 'running';
}

function fail(message: string, kind: TargetError['kind']): TargetError {
  return new TargetError(message, { kind, retryable: false });
}

import { TargetError } from '../../core/errors.ts';
import type { Clock } from '../../runtime/clock.ts';
import { poll } from '../../runtime/poll.ts';
import { formatDuration } from '../../inventory/duration.ts';
import type { FlyClient, FlyMachine } from './client.ts';

/**
 * Puts every machine of an app onto a secrets version, one machine at a time (a rolling restart,
 * as flyctl's restart-only deploy after `fly secrets set` does): each machine is updated with its
 * own config and `min_secrets_version`, so the host boots it with secrets at least that recent;
 * a running one is waited for until its new instance is `started`, a stopped one stays stopped
 * and picks the secrets up when it next starts (Machines API docs: "Existing Machines must be
 * updated to pick up secrets set after the Machine was created").
 */

/** States of a machine that runs (or is on its way to): it must come back `started`. */
const RUNNING = new Set(['started', 'starting', 'replacing', 'updating', 'restarting']);
const GONE = new Set(['destroyed', 'destroying']);

export interface RollOptions {
  api: FlyClient;
  app: string;
  version: number;
  clock: Clock;
  timeoutMs: number;
  target: string;
  op: string;
  signal?: AbortSignal;
  /** Machines already updated by this rotation step (the instance each got, and whether it runs): a retry does not update them again. */
  done: Map<string, { instance: string; running: boolean }>;
}

export interface RollResult {
  restarted: number;
  stopped: number;
}

export async function rollMachines(o: RollOptions): Promise<RollResult> {
  const deadline = o.clock.now() + o.timeoutMs;
  const machines = (await o.api.machines(o.app, o.op, o.signal)).filter((m) => !GONE.has(m.state ?? ''));
  const result: RollResult = { restarted: 0, stopped: 0 };
  for (const m of machines) {
    let step = o.done.get(m.id);
    if (!step || step.instance !== m.instance_id) {
      const running = RUNNING.has(m.state ?? '');
      const updated = await o.api.updateMachine(o.app, m.id, { config: m.config ?? {}, region: m.region, min_secrets_version: o.version, skip_launch: !running }, o.op, o.signal);
      step = { instance: updated.instance_id ?? '', running };
      o.done.set(m.id, step);
    }
    if (!step.running) {
      result.stopped++;
      continue;
    }
    await waitStarted(o, m, step.instance, deadline);
    result.restarted++;
  }
  return result;
}

async function waitStarted(o: RollOptions, m: FlyMachine, instance: string, deadline: number): Promise<void> {
  const fail = (message: string, kind: TargetError['kind']) => new TargetError(message, { target: o.target, op: o.op, kind, retryable: false });
  await poll({
    check: () => o.api.machine(o.app, m.id, o.op, o.signal),
    until: (now) => {
      if (now.instance_id !== instance) return false;
      if (now.state === 'failed' || now.state === 'stopped') {
        o.done.delete(m.id);
        throw fail(
          `machine ${m.id} of Fly app ${o.app} did not start after keyrot updated it onto secrets version ${o.version} (it is ${now.state}): see \`fly logs -a ${o.app} -i ${m.id}\``,
          'unavailable',
        );
      }
      return now.state === 'started';
    },
    deadlineMs: Math.max(0, deadline - o.clock.now()),
    clock: o.clock,
    signal: o.signal,
    target: o.target,
    op: o.op,
    describe: (last) =>
      `machine ${m.id} of Fly app ${o.app} is still ${last?.state ?? 'starting'} after ${formatDuration(o.timeoutMs)}: check \`fly machine status ${m.id} -a ${o.app}\` (raise \`timeout:\` for slow starts)`,
  });
}

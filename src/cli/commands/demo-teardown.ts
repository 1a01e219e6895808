import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { currentInterruption } from '../interrupt.ts';

/**
 * The demo's teardown, run once whichever way the demo ends: its normal end or a thrown error (the
 * caller's `finally`), SIGINT or SIGTERM (then the process exits 130 or 143 once it is done), and,
 * as a last resort, a synchronous removal of the work directory when the process exits any other
 * way (an uncaught exception). A second signal during the teardown stops waiting for the
 * emulators. SIGKILL leaves the directory behind: nothing can run then.
 */
export function demoTeardown(workDir: string, keep: boolean, stop: () => Promise<void>): () => Promise<void> {
  let started: Promise<void> | undefined;
  const removeNow = () => {
    if (!keep) rmSync(workDir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    // During a step that changes things (rotate, revoke) that step handles the signal itself
    // (cli/interrupt.ts): it stops after the write in flight and returns 130/143, which ends the
    // demo through its `finally`. Between such steps the signal ends the demo here.
    if (currentInterruption() && !started) return;
    const code = 128 + (constants.signals[signal] ?? 0);
    if (started) {
      removeNow();
      process.exit(code);
    }
    // The rotation the signal interrupted is still running and may write its journal into the
    // directory after the teardown removed it: remove it once more, synchronously, on the way out.
    void teardown().finally(() => {
      removeNow();
      process.exit(code);
    });
  };
  const detach = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', removeNow);
  };
  const teardown = () =>
    (started ??= (async () => {
      try {
        await stop().catch(() => {});
        if (!keep) await rm(workDir, { recursive: true, force: true });
      } finally {
        detach();
      }
    })());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', removeNow);
  return teardown;
}

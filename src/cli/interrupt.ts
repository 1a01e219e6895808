import { withUserFlags } from '../render/command.ts';
import { EXIT, ExitError } from '../core/errors.ts';
import { releaseKeystrokes } from './keystrokes.ts';
import { printable } from '../core/printable.ts';
import { errorJson } from './error-json.ts';

export type StopCause = 'SIGINT' | 'SIGTERM' | 'prompt';

/** How long a forced quit waits to read where things stand before it gives up and says so. */
const FORCE_LOOKUP_MS = 1000;

/**
 * Ctrl-C (SIGINT) and SIGTERM while a command runs.
 *
 * A command that only reads (plan, discover, verify, status...: `onlyReads`) has nothing to finish:
 * the first one ends it at once with one line saying nothing was changed, exit 130 (143), the live
 * display cleared first. A write of its own (verify's audit entry) runs `uninterrupted`: the quit
 * waits for it, so it is never left half-written.
 *
 * A command that changes things (rotate, emergency, resume, revoke):
 *
 * The first one stops the command where that is safe: an open prompt is cancelled, and the engine
 * lets the step in flight finish and be journaled, then stops (`signal`). The command then ends
 * with one line saying where things stand and exit 130 (143 for SIGTERM). Leaving a prompt with
 * Ctrl-C or Ctrl-D counts as the first one.
 *
 * A second one quits at once, without waiting for the step in flight: every completed step is
 * already in the journal, so `keyrot resume` picks up after a forced quit as after a crash (a write
 * that was in flight is found by reading the target back).
 */
export class Interruption {
  readonly #controller = new AbortController();
  #count = 0;
  #code: typeof EXIT.interrupted | typeof EXIT.terminated = EXIT.interrupted;
  #quitting = false;
  /** Read-only: the first request quits at once (`onlyReads`). */
  #readOnly = false;
  /** Writes that must not be cut short (`uninterrupted`) in flight, and what a quit waits on. */
  #held = 0;
  #released: () => void = () => {};
  /** Where things stand now, in one line; the command sets it once it knows how to tell. */
  whereThingsStand: () => Promise<string> = async () => 'nothing was written';
  /** Shows a notice (the live display sets it so the two do not draw over each other). */
  say: (line: string) => void = (line) => process.stderr.write(printable(line) + '\n');
  /** A prompt is open: the stop cancels it at once, so no "stopping" notice is due. */
  prompting = false;
  /** Clears the live display before a quit's last line (the command that draws one sets it). */
  clearDisplay: () => void = () => {};
  /** --json: a quit also writes its line as the JSON error document on stdout, as any failure does. */
  json = false;

  /** The command only reads: a stop quits at once, saying so (the same line for every such command). */
  onlyReads(command: string): this {
    this.#readOnly = true;
    this.whereThingsStand = async () => `nothing was changed (keyrot ${command} only reads)`;
    return this;
  }

  /** Runs a write a quit must not cut in half (an audit entry, a report file); a quit waits for it. */
  async uninterrupted<T>(write: () => Promise<T>): Promise<T> {
    this.#held++;
    try {
      return await write();
    } finally {
      if (--this.#held === 0) this.#released();
    }
  }

  /** Aborted on the first stop request: the engine's and every prompt's signal. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get requested(): boolean {
    return this.#count > 0;
  }

  request(cause: StopCause): void {
    // A prompt cancelled by the stop itself reports back: that is the same request.
    if (cause === 'prompt' && this.requested) return;
    this.#count++;
    if (this.#count === 1 && cause === 'SIGTERM') this.#code = EXIT.terminated;
    if (this.#readOnly) {
      void this.#quit('interrupted');
      return;
    }
    if (this.#count > 1) {
      void this.#quit('forced quit');
      return;
    }
    this.#controller.abort(new Error(`stop requested (${cause})`));
    if (cause !== 'prompt' && !this.prompting) {
      this.say(`keyrot: stopping after the current step (${cause === 'SIGINT' ? 'press Ctrl-C' : 'send SIGTERM'} again to force)`);
    }
  }

  /** What ends the command once it stopped: exit 130 (143) and where things stand. */
  async exitError(): Promise<ExitError> {
    return new ExitError(this.#code, `interrupted: ${await this.whereThingsStand()}`);
  }

  /** Ends the process now: a forced quit of a command that changes things, or any stop of one that only reads. */
  async #quit(how: 'forced quit' | 'interrupted'): Promise<void> {
    if (this.#quitting) return;
    this.#quitting = true;
    if (this.#held > 0) await new Promise<void>((resolve) => (this.#released = resolve));
    const line = await Promise.race([
      this.whereThingsStand().catch(() => undefined),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), FORCE_LOOKUP_MS).unref()),
    ]);
    this.clearDisplay();
    releaseKeystrokes();
    // A forced quit interrupts the "stopping" notice's line of work: its own line starts below it.
    const lead = how === 'forced quit' ? '\n' : '';
    const said = withUserFlags(printable(`keyrot: ${how}: ${line ?? 'run `keyrot status` to see where the rotation stands'}`));
    process.stderr.write(`${lead}${said}\n`);
    if (this.json) process.stdout.write(errorJson(this.#code, said));
    process.exit(this.#code);
  }
}

let current: Interruption | undefined;
const onSigint = () => current?.request('SIGINT');
const onSigterm = () => current?.request('SIGTERM');

/** Starts handling Ctrl-C and SIGTERM for this command (idempotent); `endInterrupts` stops. */
export function watchInterrupts(): Interruption {
  if (current) return current;
  current = new Interruption();
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  return current;
}

/** The command's interruption handling, when it has one (prompts use its signal). */
export function currentInterruption(): Interruption | undefined {
  return current;
}

/** Back to Node's default: a signal ends the process (after the command returned). */
export function endInterrupts(): void {
  if (!current) return;
  current = undefined;
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigterm);
}

import type { ReadStream } from 'node:tty';

/**
 * Keeps keystrokes off the screen while a key prompt is due.
 *
 * With `source: prompt` the key prompt comes after preflight, seconds after the command started,
 * and a key pasted before it would be echoed by the terminal in clear. So from the moment a command
 * knows it will ask for a key, the terminal is in raw mode (no echo) and whatever is typed is read
 * and thrown away, never kept: an early paste is often incomplete or ends with Enter, which would
 * answer the prompt by itself, and a copy held in memory is one more copy of a key. The next prompt
 * says "input typed before the prompt was discarded". Raw mode also turns Ctrl-C into a byte
 * instead of SIGINT: it is handed to `onCtrlC` (cli/interrupt.ts).
 *
 * The terminal goes back to the mode it was in on every way out: `releaseKeystrokes()` at the end
 * of the command (cli/main.ts), and a process 'exit' hook for errors, uncaught exceptions and
 * `process.exit()` (Ctrl-C twice, SIGTERM).
 */
interface Held {
  stdin: ReadStream;
  onData: (chunk: Buffer) => void;
  discarded: boolean;
}

let held: Held | undefined;
let exitHook = false;

const CTRL_C = 0x03;

/** Turns echo off and starts discarding input, when stdin is a terminal. Idempotent. */
export function holdKeystrokes(onCtrlC: () => void, stdin: NodeJS.ReadStream = process.stdin): void {
  if (held || !stdin.isTTY) return;
  const tty = stdin as ReadStream;
  const h: Held = {
    stdin: tty,
    discarded: false,
    onData: (chunk) => {
      const interrupt = chunk.includes(CTRL_C);
      if (chunk.some((b) => b !== CTRL_C)) h.discarded = true;
      chunk.fill(0); // what was typed may be a key: no copy lingers in this buffer
      if (interrupt) onCtrlC();
    },
  };
  held = h;
  if (!exitHook) {
    exitHook = true;
    process.on('exit', releaseKeystrokes);
  }
  listen(h);
}

/** Echo back on, input no longer read: the terminal as the command found it. */
export function releaseKeystrokes(): void {
  const h = held;
  if (!h) return;
  held = undefined;
  h.stdin.off('data', h.onData);
  h.stdin.setRawMode(false);
  h.stdin.pause();
}

/**
 * Runs a prompt while keystrokes are held: the prompt gets the terminal (still in raw mode, so
 * nothing is echoed in the hand-over) and holding starts again once it is answered.
 */
export async function promptWhileHeld<T>(ask: () => Promise<T>): Promise<T> {
  const h = held;
  if (!h) return ask();
  h.stdin.off('data', h.onData);
  h.stdin.pause();
  if (h.discarded) {
    h.discarded = false;
    process.stderr.write('keyrot: input typed before the prompt was discarded\n');
  }
  try {
    return await ask();
  } finally {
    if (held === h) listen(h);
  }
}

function listen(h: Held): void {
  h.stdin.setRawMode(true);
  h.stdin.on('data', h.onData);
  h.stdin.resume();
}

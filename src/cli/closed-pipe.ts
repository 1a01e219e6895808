/**
 * `keyrot history | head`: once the reader of stdout (or stderr) has gone, every write to it fails
 * with EPIPE, which Node reports as an 'error' event on the stream (Node ignores SIGPIPE); with no
 * listener that event ends the process with a stack trace. Here the stream is given up instead and
 * the command carries on to its own end and exit code: the output is lost, nothing else is (a
 * rotation cut short by `| head` would be worse than the lost lines). Any other stream error (a
 * full disk under `keyrot report > report.md`, an I/O error) loses the output too, but nobody chose
 * that: it is said once on stderr, the command still carries on, and it exits 1.
 */
const watched = new WeakSet<NodeJS.WriteStream>();
let lost = false;

/** Whether some output could not be written for another reason than a reader that left. */
export function outputWasLost(): boolean {
  return lost;
}

export function ignoreClosedPipes(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    if (watched.has(stream)) continue;
    watched.add(stream);
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // ERR_STREAM_DESTROYED: a write after the EPIPE, to the stream Node has since destroyed.
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
      if (lost) return;
      lost = true;
      // The error can arrive after main() returned (Node emits it on a later tick): exit 1 either way.
      if (!process.exitCode) process.exitCode = 1;
      // Said on stderr only: stdout may be a --json document a script parses.
      if (stream === process.stdout) {
        process.stderr.write(`keyrot: could not write to standard output (${err.code ?? err.message}): the output is incomplete; free space or write it elsewhere, then run the command again\n`);
      }
    });
  }
}

/**
 * `keyrot history | head`: once the reader of stdout (or stderr) has gone, every write to it fails
 * with EPIPE, which Node reports as an 'error' event on the stream (Node ignores SIGPIPE); with no
 * listener that event ends the process with a stack trace. Here the stream is given up instead and
 * the command carries on to its own end and exit code: the output is lost, nothing else is (a
 * rotation cut short by `| head` would be worse than the lost lines). Any other stream error is
 * still thrown.
 */
const watched = new WeakSet<NodeJS.WriteStream>();

export function ignoreClosedPipes(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    if (watched.has(stream)) continue;
    watched.add(stream);
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // ERR_STREAM_DESTROYED: a write after the EPIPE, to the stream Node has since destroyed.
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
      throw err;
    });
  }
}

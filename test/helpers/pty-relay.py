"""Runs a command on a fresh pseudo-terminal, as if typed at a shell.

Used by test/helpers/pty.ts: Node has no pseudo-terminal of its own and keyrot's prompts, raw
mode and Ctrl-C only behave for real on a terminal. Bytes on this script's stdin are typed into
the terminal (b"\\x03" is Ctrl-C: the terminal driver turns it into SIGINT when ISIG is on);
everything the command writes to the terminal comes out on stdout, byte for byte.

On stderr, one JSON line each: {"pid": N} once the command runs, and at the end
{"code": N | null, "signal": N | null, "echo": bool, "icanon": bool, "isig": bool}: how it ended
and the terminal's mode after it (a command must leave echo and line editing on as it found them).
"""

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios


def main() -> int:
    master, slave = os.openpty()
    # A terminal of 40 rows and 160 columns unless --columns=N comes first (a new pty is 0 x 0,
    # where nothing fits on screen).
    columns = 160
    if sys.argv[1].startswith("--columns="):
        columns = int(sys.argv.pop(1).split("=", 1)[1])
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))

    def controlling_terminal() -> None:
        # A new session whose controlling terminal is the pty: Ctrl-C there signals the command.
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    child = subprocess.Popen(
        sys.argv[1:],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    # The slave stays open here so the terminal (and its mode) outlives the command.
    print(json.dumps({"pid": child.pid}), file=sys.stderr, flush=True)
    stdin_open = True
    status = None
    while True:
        watch = [master] + ([0] if stdin_open else [])
        ready, _, _ = select.select(watch, [], [], 0.05)
        if master in ready:
            os.write(1, os.read(master, 65536))
        if 0 in ready:
            data = os.read(0, 65536)
            if data:
                os.write(master, data)
            else:
                stdin_open = False
        if status is None:
            status = child.poll()
        if status is not None and master not in ready:
            break
    lflag = termios.tcgetattr(slave)[3]
    print(
        json.dumps(
            {
                "code": status if status >= 0 else None,
                "signal": -status if status < 0 else None,
                "echo": bool(lflag & termios.ECHO),
                "icanon": bool(lflag & termios.ICANON),
                "isig": bool(lflag & termios.ISIG),
            }
        ),
        file=sys.stderr,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reading from the terminal for the interactive commands: a line that Ctrl-C always
interrupts (read_line), and for `attn demo` also the arrow keys (read_command)."""

import os
import select
import signal
import sys

ARROWS = {b"\x1b[A": "up", b"\x1b[B": "down", b"\x1b[C": "right", b"\x1b[D": "left"}


def read_line(prompt):
    """input(prompt), but Ctrl-C interrupts it even after Numba's worker threads exist.

    The terminal's SIGINT goes to any thread of the process that does not block it; when a
    TBB worker got it, the main thread's blocking read never returned, and the process then
    often could not exit (measured in a pty: about half the time). So an interactive command
    blocks SIGINT in the main thread before any kernel runs (the worker threads, created
    later, inherit the blocked mask) and this unblocks it only while waiting for a line,
    in short select() slices so the main thread handles it at once. Raises EOFError at the
    end of input and KeyboardInterrupt on Ctrl-C, as input() does."""
    if not sys.stdin.isatty():
        return input(prompt)
    sys.stdout.write(prompt)
    sys.stdout.flush()
    old = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        while not select.select([sys.stdin], [], [], 0.1)[0]:
            pass  # between slices Python runs its signal handlers: Ctrl-C raises here
        line = sys.stdin.readline()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    if not line:
        raise EOFError
    return line.rstrip("\n")


def read_command(prompt):
    """On a terminal: an arrow key at once ("up", "down", "left", "right") when nothing has
    been typed yet, else the typed line (Enter ends it, Backspace edits it). Elsewhere a
    plain read_line. SIGINT is handled as in read_line."""
    if not sys.stdin.isatty():
        return read_line(prompt)
    import termios
    import tty
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    # keys one at a time, no echo; Ctrl-C still sends SIGINT. Set before the prompt shows,
    # and TCSANOW: the default TCSAFLUSH discarded what was typed before the switch (a
    # command typed as soon as the prompt appeared was lost, measured in a pty).
    old = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        sys.stdout.write(prompt)
        sys.stdout.flush()
        return _keys(fd)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _keys(fd):
    typed = b""
    while True:
        key = _byte(fd)
        if key == b"\x1b":  # an escape sequence: an arrow is ESC [ A..D
            key += _byte(fd, wait=0.05) + _byte(fd, wait=0.05)
            if key in ARROWS and not typed:
                _echo(b"\n")
                return ARROWS[key]
        elif key in (b"\r", b"\n"):
            _echo(b"\n")
            return typed.decode(errors="replace")
        elif key in (b"\x7f", b"\x08"):
            if typed:
                typed = typed[:-1]
                _echo(b"\x08 \x08")
        elif key == b"\x04" and not typed:  # Ctrl-D on an empty line
            raise EOFError
        elif key and (key >= b" " or key == b"\t"):
            typed += key
            _echo(key)


def _byte(fd, wait=None):
    """One byte of input (b"" if `wait` seconds pass first), waiting in 0.1 s slices so
    Python can run its SIGINT handler in between."""
    waited = 0.0
    while not select.select([fd], [], [], 0.1)[0]:
        waited += 0.1
        if wait is not None and waited >= wait:
            return b""
    return os.read(fd, 1)


def _echo(data):
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), data)

"""The bodies of the `attn` subcommands beyond train/sample/bench, one module each; cli.py
holds the table that names them."""


class CliError(Exception):
    """A problem with what the user asked for: printed as one line, exit status 2."""


def read_line(prompt):
    """input(prompt), but Ctrl-C interrupts it even after Numba's worker threads exist.

    The terminal's SIGINT goes to any thread of the process that does not block it; when a
    TBB worker got it, the main thread's blocking read never returned, and the process then
    often could not exit (measured in a pty: about half the time). So an interactive command
    blocks SIGINT in the main thread before any kernel runs (the worker threads, created
    later, inherit the blocked mask) and this unblocks it only while waiting for a line,
    in short select() slices so the main thread handles it at once. Raises EOFError at the
    end of input and KeyboardInterrupt on Ctrl-C, as input() does."""
    import select
    import signal
    import sys
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

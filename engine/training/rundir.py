"""Run directories: proved writable before the first step, locked for the life of a run,
fresh names for runs that give no directory, and the newest run of a name.

The lock is an advisory fcntl.flock on `<dir>/.lock`, taken without waiting: a second run
into the same directory fails at once with one line, and the OS drops the lock when the
holder exits or crashes. Readers (sampling) take no lock; checkpoint.load retries a read
that meets a save in progress. The lock file itself is left in place (removing it would
let two runs lock two different files).
"""

import contextlib
import fcntl
import os
import re

from engine.training.checkpoint import CONFIG_FILE, LOCK_FILE, CheckpointError, writer_active


class RunDirError(CheckpointError):
    """A run directory that cannot be used: not writable, or in use by another run."""


def prepare(path):
    """Create directory `path` if needed and prove it writable (a probe file is written,
    fsynced and removed), so a bad --out fails before training, not at the first save."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirError(f"cannot save checkpoints in '{path}': it exists and is not a "
                          f"directory")
    probe = os.path.join(path, f".probe-{os.getpid()}.tmp")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"probe\n")
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)
    except OSError as e:
        raise RunDirError(f"cannot save checkpoints in '{path}': {e.strerror or e}") from None


@contextlib.contextmanager
def locked(path):
    """Prepare `path` and hold its run lock for the block; RunDirError when another run
    holds it (naming that run's process id)."""
    prepare(path)
    lock_path = os.path.join(path, LOCK_FILE)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RunDirError(f"cannot lock '{path}': {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f" (process {holder})" if holder.isdigit() else ""
            raise RunDirError(f"'{path}' is in use by another training run{who}; wait for "
                              f"it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def holds_checkpoint(path):
    return os.path.isfile(os.path.join(path, CONFIG_FILE))


def fresh(base):
    """`base` if it holds no checkpoint and no run is writing it, else the first of
    `base-2`, `base-3`, ... that is free: the directory of a new run given no --out."""
    n = 1
    while True:
        path = base if n == 1 else f"{base}-{n}"
        if not holds_checkpoint(path) and not writer_active(path):
            return path
        n += 1


def newest(base):
    """Of `base` and `base-N` (the directories `fresh` hands out), the one whose checkpoint
    was saved last; None when none holds a checkpoint. `attn sample` (and a future demo)
    use it to find the latest run of a task."""
    root, name = os.path.split(base)
    pattern = re.compile(re.escape(name) + r"(-(\d+))?")
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(root or "."):
            match = pattern.fullmatch(entry.name)
            if match and entry.is_dir():
                try:
                    saved = os.stat(os.path.join(entry.path, CONFIG_FILE)).st_mtime_ns
                except OSError:
                    continue
                found.append((saved, int(match.group(2) or 1), os.path.join(root, entry.name)))
    return max(found)[2] if found else None

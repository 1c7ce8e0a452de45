"""Run directories: proved writable before the first step, locked for the life of a run,
fresh names for runs that give no directory, and the newest run of a name.

The lock is an advisory fcntl.flock on `<dir>/.lock`, taken without waiting: a second run
into the same directory fails at once with one line, and the OS drops the lock when the
holder exits or crashes. Readers (sampling) take no lock; checkpoint.load retries a read
that meets a save in progress. The lock file of a run that saved a checkpoint is left in
place; a run that saved nothing removes the lock (and the directory, when it made it), and
a run that takes the lock checks it still holds the file named `.lock` (so a lock removed
meanwhile cannot let two runs in).

A run directory is ours alone: nothing in it is followed through a symbolic link (such a
directory is refused), and a new run writes only into an empty directory (or one holding
nothing but our lock and temporary files), never over another tool's files.
"""

import contextlib
import fcntl
import os
import re
import stat

from engine.training.checkpoint import (
    _TEMP,
    CONFIG_FILE,
    LOCK_FILE,
    MODEL_FILE,
    OPTIM_FILE,
    CheckpointError,
    writer_active,
)
from engine.training.metrics import METRICS_FILE

OWN_FILES = (CONFIG_FILE, MODEL_FILE, OPTIM_FILE, METRICS_FILE, LOCK_FILE)


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
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with open(fd, "wb") as f:
            f.write(b"probe\n")
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)
    except OSError as e:
        raise RunDirError(f"cannot save checkpoints in '{path}': {e.strerror or e}") from None


def refuse_links(path):
    """RunDirError when `path` holds a symbolic link under a name a run writes or reads:
    writing through it would overwrite (or truncate) whatever it points at."""
    for name in OWN_FILES:
        if os.path.islink(os.path.join(path, name)):
            raise RunDirError(f"'{path}' holds a symbolic link '{name}': a run directory must "
                              f"hold its own files, not links; remove it or choose another "
                              f"--out")


def check_new(path):
    """RunDirError unless `path` can take a new run: empty but for our lock and temporary
    files (a checkpoint of ours asks for resume; anything else is another tool's file)."""
    if holds_checkpoint(path):
        raise RunDirError(f"'{path}' already holds a checkpoint: resume it, or choose another "
                          f"directory")
    foreign = sorted(name for name in _listdir(path)
                     if name != LOCK_FILE and not _TEMP.match(name))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise RunDirError(f"'{path}' is not empty ({shown}) and holds no checkpoint to "
                          f"resume: a new run writes only into an empty directory; choose "
                          f"another --out")


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


@contextlib.contextmanager
def locked(path):
    """Prepare `path` and hold its run lock for the block; RunDirError when another run
    holds it (naming that run's process id) or the directory holds symbolic links. When the
    block leaves no checkpoint, what it created (the lock, the directory) is removed."""
    path = str(path)
    made_dir = not os.path.lexists(path)
    prepare(path)
    refuse_links(path)
    lock_path = os.path.join(path, LOCK_FILE)
    made_lock = not os.path.lexists(lock_path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        _remove_made(path, made_dir, None)
        raise RunDirError(f"cannot lock '{path}': {e.strerror or e}") from None
    try:
        _take_lock(path, fd, lock_path)  # (when another run holds it, nothing is removed)
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        _remove_made(path, made_dir, lock_path if made_lock else None, fd)
        os.close(fd)  # releases the lock


def _take_lock(path, fd, lock_path):
    """flock `fd` without waiting, and check it is still the file named `.lock` (a run that
    saved nothing removes its lock file; a run that opened it just before must not go on)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        now = os.stat(lock_path, follow_symlinks=False)
        if not os.path.samestat(now, os.fstat(fd)):
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        who = f" (process {holder})" if holder.isdigit() else ""
        raise RunDirError(f"'{path}' is in use by another training run{who}; wait for "
                          f"it to finish or choose another --out") from None


def _remove_made(path, made_dir, lock_path, fd=None):
    """After a run that left no checkpoint in `path`: remove the lock file it created (still
    holding the lock, `fd`) and the directory it created, when nothing else is in it."""
    if holds_checkpoint(path):
        return
    if lock_path is not None and fd is not None:
        with contextlib.suppress(OSError):
            if os.path.samestat(os.stat(lock_path, follow_symlinks=False), os.fstat(fd)):
                os.unlink(lock_path)
    if made_dir:
        with contextlib.suppress(OSError):
            os.rmdir(path)  # only when empty


def holds_checkpoint(path):
    try:
        return stat.S_ISREG(os.stat(os.path.join(path, CONFIG_FILE),
                                    follow_symlinks=False).st_mode)
    except OSError:
        return False


def takes_new_run(path):
    """Whether `path` is missing or empty but for our lock and temporary files."""
    return all(name == LOCK_FILE or _TEMP.match(name) for name in _listdir(path))


def fresh(base):
    """`base` if it holds no checkpoint and no run is writing it, else the first of
    `base-2`, `base-3`, ... that is free: the directory of a new run given no --out."""
    n = 1
    while True:
        path = base if n == 1 else f"{base}-{n}"
        if takes_new_run(path) and not writer_active(path):
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

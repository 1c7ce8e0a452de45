"""A cold start compiles on two cores: a second process fills the kernel cache from the far end.

Why: on an empty Numba cache a training run compiles every kernel on its first use, one at
a time on one core, while the other cores wait. `start_background()` (called by
engine.training.train) starts `python -m ops.warm`, which compiles the kernels a training step
and its evaluation need, read from ops/warm_manifest.json, from the far end: the optimizer's,
then the backward pass's and the forward pass's in the reverse of the order the step meets
them, and last the greedy decoder (needed only by the final evaluation, seconds of training
later). Numba looks in its disk cache before compiling a new signature, so the training
process loads what the other process has finished and compiles the rest itself; the two meet
in the middle of the forward pass. Both write the same cache (its files are replaced
atomically), and the compiled code is the same whichever process made it, so results do not
depend on the timing (tested: weights bit-identical either way).

The manifest lists, per stage of a tiny GPT float32 training step and in the order of first
use, the jitted kernels called from Python with their argument types, and the by-address
routines (ops/native.py) by name and dtype. scripts/warm_manifest.py writes it; a test
checks it against a fresh run's, so it cannot go stale silently (a stale entry would only
cost time: it is compiled and not used).
It starts only when a core is idle (see _spare_core); ENGINE_PRECOMPILE=0 turns it off,
=1 starts it regardless of the load.
"""

import ast
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from numba.core import types

MANIFEST = Path(__file__).with_name("warm_manifest.json")
# the stages in the order the background process compiles them (each stage's kernels last
# used first)
ORDER = ("optimizer", "backward", "forward", "decode")

_TYPE_NAMES = {n: getattr(types, n) for n in
               ("int8", "int16", "int32", "int64", "uint8", "uint64", "float32", "float64",
                "intp", "none", "Array", "UniTuple", "Tuple")}
_TYPE_NAMES["bool"] = types.boolean


def encode(t):
    """A Numba argument type as text (its repr), for the manifest."""
    return repr(t)


def decode(text):
    """The Numba type `encode` wrote: the repr parsed with `ast`, never evaluated, and only
    the type constructors above are allowed."""
    def build(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name) and node.id in _TYPE_NAMES:
            return _TYPE_NAMES[node.id]
        if isinstance(node, ast.Tuple):
            return tuple(build(e) for e in node.elts)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("Array", "UniTuple", "Tuple")):
            args = [build(a) for a in node.args]
            kwargs = {k.arg: build(k.value) for k in node.keywords}
            if node.func.id == "Tuple":
                return types.Tuple(args[0])
            return _TYPE_NAMES[node.func.id](*args, **kwargs)
        raise ValueError(f"ops.warm: not a kernel argument type: {ast.unparse(node)!r}")
    return build(ast.parse(text, mode="eval").body)


def _target(module, name):
    """The dispatcher or Entry `name` of ops module `module`."""
    if not module.startswith("ops."):
        raise ValueError(f"ops.warm: {module}.{name} is not an ops kernel")
    return getattr(importlib.import_module(module), name)


def _manifest():
    """The manifest: {stage: [[module, name, argument types or dtype], ...]}."""
    return json.loads(MANIFEST.read_text())


def compile_stage(entries):
    """Compile (or load) the kernels of one stage's manifest entries, last-used first;
    returns their count."""
    import numpy as np
    for module, name, signature in reversed(entries):
        target = _target(module, name)
        if isinstance(signature, str):  # a by-address routine: its dtype
            target.compiled(np.dtype(signature).type)
        else:
            target.compile(tuple(decode(t) for t in signature))
    return len(entries)


def _cold():
    """True when the first jitted kernel the background process would compile is not cached
    (it is then loaded, which the training process would do anyway). Numba has no public
    way to ask its disk cache, so this uses the dispatcher's own cache object. A manifest
    that cannot be read counts as not cold: the background compile is an optimisation,
    never a reason for training to fail."""
    try:
        manifest = _manifest()
        module, name, signature = next(e for s in ORDER for e in reversed(manifest[s])
                                      if isinstance(e[2], list))
        dispatcher = _target(module, name)
        signature = tuple(decode(t) for t in signature)
    except (OSError, ValueError, KeyError, StopIteration, AttributeError, TypeError):
        return False
    return dispatcher._cache.load_overload(signature, dispatcher.targetctx) is None


def _idle_cores(window_s=0.1):
    """How many cores' worth of CPU time went idle over the next `window_s` seconds (Linux:
    /proc/stat sampled twice), or None where that cannot be read."""
    def sample():
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all
    try:
        idle0, total0 = sample()
        time.sleep(window_s)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    cores = os.cpu_count() or 1
    return cores * (idle1 - idle0) / max(total1 - total0, 1)


def _spare_core():
    """Whether a core is idle enough for a second compiling process: two or more cores this
    process may use, and most of one idle right now (Linux: /proc/stat over 0.1 s; elsewhere
    the 1-minute load average, which lags). Without a spare core the two processes share one
    and the first step gets slower (measured: 13.5 s alone against 18.1 s with the
    background process, on 2 cores with one kept busy)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2:
        return False
    idle = _idle_cores()
    return idle >= 0.75 if idle is not None else os.getloadavg()[0] < cores - 1


def start_background():
    """Start the background compile when the kernel cache is cold, a core is spare, and
    ENGINE_PRECOMPILE is not 0 (=1 starts it whatever the load); returns the process, or None.
    It runs on its own and ends when done."""
    asked = os.environ.get("ENGINE_PRECOMPILE", "").strip()
    if asked == "0" or not _cold() or (asked != "1" and not _spare_core()):
        return None
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    return subprocess.Popen([sys.executable, "-m", "ops.warm"], env=env, cwd=root,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main():
    import ops.runtime
    ops.runtime.configure()  # the same threading layer as the training process
    manifest, failed = _manifest(), 0
    for stage in ORDER:
        try:
            compile_stage(manifest[stage])
        except Exception as e:  # noqa: BLE001  (the training process meets it and reports it)
            failed += 1
            print(f"ops.warm: {stage}: {type(e).__name__}: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

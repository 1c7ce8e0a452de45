"""Process-wide tuning for running the engine's kernels: one explicit call, `configure()`.

Importing `engine` or `ops` changes nothing in the host process. A program that runs the
kernels for real (the `attn` command line, `engine.training.train`, the benchmarks, the test
suite) calls `configure()` once, before its first kernel; a library user may call it too
(`import ops.runtime; ops.runtime.configure()`), or leave their process as it is and get the
same results, sometimes slower. It does three things, each measured on these 2-core machines
and each with its own switch:

- Numba's threading layer (NUMBA_THREADING_LAYER overrides): "tbb" when Intel TBB is
  installed (the `tbb` wheel, a Linux dependency), else "workqueue"; never "omp":

  | layer     | empty parallel region | numpy/OpenBLAS interleaved | child after fork() |
  |-----------|-----------------------|----------------------------|--------------------|
  | tbb       | 3.5-8 us              | 1.6x the separate times    | survives           |
  | workqueue | 150-350 us            | 1.1x                       | survives           |
  | omp       | 2 us                  | 13x (it spin-waits)        | killed             |

  (benchmarks/threading_layers.py). pip puts libtbb.so.12 in <prefix>/lib, which is not on
  the loader's path, so it is preloaded (RTLD_GLOBAL) before Numba looks for it. The layer
  can only be chosen before the first parallel kernel runs; later it is left as it is.
- numpy's BLAS threads (ENGINE_BLAS_THREADS): one under the numba backend, so OpenBLAS's
  spinning workers never fight our kernels (ops/blas.py has the measurements).
- glibc's malloc thresholds (ENGINE_MALLOC_TUNING=0 turns it off), so large kernel outputs
  reuse freed memory instead of fresh zero-filled pages (ops/memory.py).
"""

import ctypes
import glob
import os
import sys

_applied = None  # what configure() did, once it has run


def configure():
    """Apply the process-wide tuning once (later calls return the first call's result).

    Returns {"threading_layer": the layer asked of Numba (None: one was already running),
    "blas_threads": BLAS threads set (None: left alone), "malloc_tuned": bool}.
    """
    global _applied
    if _applied is None:
        from ops.blas import apply_policy
        from ops.memory import tune_malloc
        _applied = {"threading_layer": choose_threading_layer(),
                    "blas_threads": apply_policy(), "malloc_tuned": tune_malloc()}
    return dict(_applied)


def configured():
    """What configure() did in this process, or None when it has not run."""
    return None if _applied is None else dict(_applied)


def choose_threading_layer():
    """Set numba.config.THREADING_LAYER as the module docstring says and return it; None
    when a parallel region has already run (its layer can no longer change)."""
    import numba
    try:
        numba.threading_layer()
        return None  # already running: too late to choose
    except ValueError:
        pass
    tbb = sys.platform.startswith("linux") and _preload_tbb()  # also for an asked-for "tbb"
    layer = os.environ.get("NUMBA_THREADING_LAYER") or _available_layer(tbb)
    numba.config.THREADING_LAYER = layer
    return layer


def _available_layer(tbb):
    if tbb:
        try:
            from numba.np.ufunc import tbbpool  # noqa: F401  (links against libtbb)
            return "tbb"
        except ImportError:
            pass
    return "workqueue"


def _preload_tbb():
    """Load pip's libtbb.so.12 globally so Numba's tbb layer can link; True on success."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        for path in sorted(glob.glob(os.path.join(prefix, "lib", "libtbb.so.12*"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return True
            except OSError:
                continue
    return False

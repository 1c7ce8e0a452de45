"""Numba set-up shared by every CPU kernel: threading layer, thread count, jit flags.

Threading layer, chosen by measurement on these 2-core machines
(benchmarks/threading_layers.py; ../shared/NUMBA.md):

| layer     | empty parallel region | numpy/OpenBLAS interleaved | child after fork() |
|-----------|-----------------------|----------------------------|--------------------|
| tbb       | 3.5-8 us              | 1.6x the separate times    | survives           |
| workqueue | 150-350 us            | 1.1x                       | survives           |
| omp       | 2 us                  | 13x (it spin-waits)        | killed             |

So: "tbb" when Intel TBB is installed (the `tbb` wheel, a dependency on Linux), else
"workqueue"; never "omp". pip puts libtbb.so.12 in <prefix>/lib, which is not on the loader's
path, so it is preloaded here (RTLD_GLOBAL) before Numba looks for it. Set
NUMBA_THREADING_LAYER yourself to override, before the first kernel runs.
"""

import ctypes
import glob
import os
import sys

import numba


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


def _choose_threading_layer():
    if "NUMBA_THREADING_LAYER" in os.environ:
        return os.environ["NUMBA_THREADING_LAYER"]
    if sys.platform.startswith("linux") and _preload_tbb():
        try:
            from numba.np.ufunc import tbbpool  # noqa: F401  (links against libtbb)
            return "tbb"
        except ImportError:
            pass
    return "workqueue"


numba.config.THREADING_LAYER = THREADING_LAYER = _choose_threading_layer()

# fastmath without 'nnan'/'ninf': with those flags np.isnan(NaN) is False and masking with
# -inf breaks. These four still let LLVM reassociate and vectorise reductions.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def jit(*args, parallel=False, **kwargs):
    """numba.njit with the project's defaults: cache=True, the safe fastmath flags, and
    error_model="numpy". Numba's default "python" error model puts a ZeroDivisionError check on
    every float division, which both stops loops from vectorising (GELU and AdamW ran about 4x
    and 9x slower) and turns a numpy reference's inf/NaN into an exception; "numpy" gives
    IEEE results, the same as the reference forms."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("fastmath", FASTMATH)
    kwargs.setdefault("error_model", "numpy")
    return numba.njit(*args, parallel=parallel, **kwargs)


def num_threads():
    """Threads the parallel kernels use (NUMBA_NUM_THREADS, default: all cores)."""
    return numba.get_num_threads()

"""Numba set-up shared by every CPU kernel: threading layer, thread count, jit flags.

Threading layer: "workqueue" by default. Measured on these 2-core machines (see
../shared/NUMBA.md): the "omp" layer spin-waits after a parallel region, so interleaving
numpy/OpenBLAS calls with `prange` kernels ran about 8x slower, and a process that forks
after using "omp" gets its child killed. "workqueue" has neither problem; its one limit is
that two Python threads must not enter parallel kernels at once (the engine does not).
Override with NUMBA_THREADING_LAYER before the first kernel runs.
"""

import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

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

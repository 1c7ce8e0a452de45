"""Numba set-up shared by every CPU kernel: the jit flags and the thread count.

The threading layer and the other process-wide settings are not chosen here: importing
changes nothing in the host process. `ops.runtime.configure()` chooses them, once, for the
programs that ask (the CLI, the trainer, the benchmarks, the tests).
"""

import numba

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

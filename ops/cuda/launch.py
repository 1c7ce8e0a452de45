"""Launch settings shared by every cuda kernel: threads per block and grid limits, read
from module constants at launch (and at kernel build time for shared-array shapes), so tests
can shrink them to push several blocks through the boundary code.

Under the simulator (NUMBA_ENABLE_CUDASIM=1) every CUDA thread is a Python thread (about
0.2 ms each per launch; ../shared/NUMBA.md), so the defaults there are a few threads doing
more work each; the kernels are grid-stride loops, correct for any count.
"""

import functools

import numba
from numba import config, cuda  # noqa: F401  (cuda: the simulator swaps this module object)

SIMULATOR = bool(config.ENABLE_CUDASIM)

# Elementwise and row kernels: threads per block (a power of two: tree reductions halve it)
# and the most blocks one launch uses (grid-stride loops cover the rest).
THREADS = 2 if SIMULATOR else 256
MAX_BLOCKS = 1 if SIMULATOR else 65535
# Row kernels (softmax, layer norm, cross-entropy, attention): threads per row.
ROW_THREADS = 2 if SIMULATOR else 128
# Warp shuffles in row reductions: real GPUs only (the simulator has no shfl_*_sync).
WARP_SHUFFLE = not SIMULATOR
# Elementwise index arithmetic handles arrays of up to MAXDIM dimensions.
MAXDIM = 8

NUMBA_TYPES = {"float32": numba.float32, "float64": numba.float64, "int64": numba.int64,
               "int32": numba.int32, "int16": numba.int16, "int8": numba.int8,
               "uint8": numba.uint8, "uint64": numba.uint64, "bool": numba.boolean}


def _lock_simulator_shared_arrays():
    """numba-cuda 0.30's simulator makes a block's shared array on first request without a
    lock (FakeCUDAShared.array: get, then set), so two of its Python threads can each get
    their own "shared" array; reductions then read garbage, now and then (seen here: a
    gradient check off by 1e9 one run in three). The same method, with the lock."""
    import sys
    import threading

    import numpy as np
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support

    original = kernelapi.FakeCUDAShared.array
    if getattr(original, "locked", False):
        return
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if alignment is not None or shape == 0:  # refused / dynamic: no per-line allocation
            return original(self, shape, dtype, alignment)
        if isinstance(dtype, numba.types.Type):
            dtype = numpy_support.as_dtype(dtype)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)  # one array per source line
        with lock:
            found = self._allocations.get(key)
            if found is None:
                found = self._allocations[key] = np.empty(shape, dtype)
        return found
    array.locked = True
    kernelapi.FakeCUDAShared.array = array


if SIMULATOR:
    _lock_simulator_shared_arrays()


def blocks(n, threads=None):
    """Blocks for a grid-stride loop over n items."""
    threads = threads or THREADS
    return max(1, min(MAX_BLOCKS, (n + threads - 1) // threads))


def settings():
    """The constants a kernel factory bakes in; part of every factory's cache key."""
    return (THREADS, ROW_THREADS, WARP_SHUFFLE)


def factory(fn):
    """Cache a kernel factory on its arguments plus the current launch settings, so a test
    that shrinks THREADS gets kernels built for the new shared-array shapes."""
    cached = functools.lru_cache(maxsize=None)(lambda *key: fn(*key[:-1]))

    @functools.wraps(fn)
    def build(*args):
        return cached(*args, settings())
    build.cache_clear = cached.cache_clear
    return build

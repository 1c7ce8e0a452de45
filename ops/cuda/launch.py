"""Launch settings shared by every cuda kernel: threads per block and grid limits, read
from module constants at launch (and at kernel build time for shared-array shapes), so tests
can shrink them to push several blocks through the boundary code.

Under the simulator (NUMBA_ENABLE_CUDASIM=1) every CUDA thread is a Python thread, started
for every launch (about 0.2 ms each), so the defaults there are a few threads doing more
work each; the kernels are grid-stride loops, correct for any count.
"""

import functools

import numba
from numba import config, cuda  # (cuda: the simulator swaps this module object)

SIMULATOR = bool(config.ENABLE_CUDASIM)

# Elementwise and row kernels: threads per block (a power of two: tree reductions halve it)
# and the most blocks one launch uses (grid-stride loops cover the rest).
THREADS = 2 if SIMULATOR else 256
MAX_BLOCKS = 1 if SIMULATOR else 65535
# Blocks one launch uses along a grid dimension whose kernel strides over more work (the
# hardware allows 2**31 - 1 along x, 65535 along y and z); tests shrink it to 1 or 2 to run
# the striding code.
MAX_GRID = 65535
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


def jit(fn):
    """A kernel: cuda.jit(cache=True), so a compiled kernel is kept on disk (numba-cuda's
    cache, beside the source or in NUMBA_CACHE_DIR) and a new process loads it instead of
    compiling again. The key holds the signature, the GPU's compute capability, the
    bytecode and a hash of the closure's values (dtype, op, tile shape, ...), so the
    kernels one factory builds do not share entries. The simulator ignores it."""
    return cuda.jit(cache=True)(fn)


_LAUNCHES = {"launches": 0}
_ALL = []  # every Kernel built in this process


def compile_stats():
    """{"kernels": built, "cache_hits", "cache_misses": signatures numba-cuda loaded from
    its disk cache / compiled (and saved) in this process}; None under the simulator."""
    if SIMULATOR:
        return None
    hits = sum(sum(k.kernel._cache_hits.values()) for k in _ALL)
    misses = sum(sum(k.kernel._cache_misses.values()) for k in _ALL)
    return {"kernels": len(_ALL), "cache_hits": hits, "cache_misses": misses}
_BY_KERNEL = {}


class Kernel:
    """A compiled kernel that counts its launches: `kernel[grid, block](*args)` as Numba's,
    plus one to launch_stats(). `py_func` is the Python source (for the PTX check)."""
    __slots__ = ("kernel", "name")

    def __init__(self, kernel, name):
        self.kernel, self.name = kernel, name
        _ALL.append(self)

    def __getitem__(self, config):
        _LAUNCHES["launches"] += 1
        _BY_KERNEL[self.name] = _BY_KERNEL.get(self.name, 0) + 1
        return self.kernel[config]

    @property
    def py_func(self):
        return self.kernel.py_func


def is_device_function(fn):
    options = getattr(fn, "targetoptions", None)  # (the simulator's kernels: _device)
    return options.get("device", False) if options is not None else fn._device


def launch_stats():
    """{"launches": kernel launches since the last reset, "by_kernel": {factory name: n}}."""
    return {"launches": _LAUNCHES["launches"], "by_kernel": dict(_BY_KERNEL)}


def reset_launch_stats():
    _LAUNCHES["launches"] = 0
    _BY_KERNEL.clear()


def factory(fn):
    """Cache a kernel factory on its arguments plus the current launch settings, so a test
    that shrinks THREADS gets kernels built for the new shared-array shapes. A factory that
    returns a kernel (not a device function) gets it wrapped in Kernel, to count launches."""
    def make(*key):
        built = fn(*key[:-1])
        if not hasattr(built, "py_func") or is_device_function(built):
            return built
        return Kernel(built, fn.__name__)
    cached = functools.lru_cache(maxsize=None)(make)

    @functools.wraps(fn)
    def build(*args):
        return cached(*args, settings())
    build.cache_clear = cached.cache_clear
    return build


def row_grid(rows):
    """(blocks, threads) of a kernel with one block per row (grid-stride past MAX_BLOCKS)."""
    return max(1, min(rows, MAX_BLOCKS)), ROW_THREADS

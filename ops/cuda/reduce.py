"""Reductions of the cuda namespace over any axes, built from one table.

Layout: the input view is permuted so the reduced axes come last, giving O outputs of R
elements each in C order (element (o, r) is linear index o * R + r). One block per output
(grid-stride over outputs): its threads stride over the R elements, then a shared-memory
tree combines the THREADS partial results; thread 0 writes the output. Adding a reduction is
one table line: name -> (combine(acc, x) factory, identity factory).
"""

import math

import numpy as np
from numba import cuda

from ops.cuda import launch
from ops.cuda.elementwise import _at, _max, _min
from ops.cuda.launch import NUMBA_TYPES, factory


def _lowest(dtype):
    return -math.inf if np.dtype(dtype).kind == "f" else np.iinfo(np.dtype(dtype)).min


def _highest(dtype):
    return math.inf if np.dtype(dtype).kind == "f" else np.iinfo(np.dtype(dtype)).max


# name -> (combine factory (T -> f(acc, x)), identity (dtype name -> value))
REDUCTIONS = {
    "sum": (lambda T: lambda a, x: a + x, lambda dt: 0),
    "prod": (lambda T: lambda a, x: a * x, lambda dt: 1),
    "max": (_max, _lowest),
    "min": (_min, _highest),
    # any / all: over a bool array accumulated as uint8 (the namespace converts first)
    "any": (lambda T: lambda a, x: a | x, lambda dt: 0),
    "all": (lambda T: lambda a, x: a & x, lambda dt: 1),
}


@factory
def reduce_kernel(op, dtype):
    """Reduction `op` accumulating in `dtype`; THREADS threads per block (a power of two)."""
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(REDUCTIONS[op][0](T))
    nt = launch.THREADS

    @launch.jit
    def kernel(out, a, ao, ast, shape, nd, R, O, identity):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, O, cuda.gridDim.x):
            acc = identity
            for r in range(t, R, nt):
                acc = f(acc, T(a[_at(o * R + r, ao, shape, ast, nd)]))
            part[t] = acc
            cuda.syncthreads()
            s = nt // 2
            while s > 0:
                if t < s:
                    part[t] = f(part[t], part[t + s])
                cuda.syncthreads()
                s //= 2
            if t == 0:
                out[o] = part[0]
            cuda.syncthreads()
    return kernel


@factory
def thread_reduce_kernel(op, dtype):
    """Reduction `op` with one thread per output (grid-stride over outputs), looping over its
    R elements: for many short rows (no shared memory, no synchronisation)."""
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(REDUCTIONS[op][0](T))

    @launch.jit
    def kernel(out, a, ao, ast, shape, nd, R, O, identity):
        for o in range(cuda.grid(1), O, cuda.gridsize(1)):
            acc = identity
            for r in range(R):
                acc = f(acc, T(a[_at(o * R + r, ao, shape, ast, nd)]))
            out[o] = acc
    return kernel


# A block per output when rows are long and few (R >= BLOCK_MIN_R and R >= 32 * O), else a
# thread per output. Tests set BLOCK_MIN_R to 1 to send every reduction through the blocks.
BLOCK_MIN_R = 64 if launch.SIMULATOR else 512


def launch_reduce(op, dtype, out, args, R, O):
    """Run reduction `op` into out (O,) over args (a, offset, strides, shape, nd)."""
    identity = dtype.type(REDUCTIONS[op][1](dtype))
    if R >= BLOCK_MIN_R and R >= 32 * O:
        grid = min(O, launch.MAX_BLOCKS)
        reduce_kernel(op, dtype.name)[grid, launch.THREADS](out, *args, R, O, identity)
    else:
        threads = launch.THREADS
        grid = launch.blocks(O, threads)
        thread_reduce_kernel(op, dtype.name)[grid, threads](out, *args, R, O, identity)


@factory
def scan_kernel(op, dtype, include_initial):
    """Inclusive scan (cumulative_sum / cumulative_prod) of each of O rows of R elements into
    out (O, R + include_initial): one thread per row, in order."""
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(REDUCTIONS[op][0](T))
    extra = 1 if include_initial else 0

    @launch.jit
    def kernel(out, a, ao, ast, shape, nd, R, O, identity):
        for o in range(cuda.grid(1), O, cuda.gridsize(1)):
            acc = identity
            if include_initial:
                out[o * (R + 1)] = acc
            for r in range(R):
                acc = f(acc, T(a[_at(o * R + r, ao, shape, ast, nd)]))
                out[o * (R + extra) + r + extra] = acc
    return kernel


@factory
def argmax_kernel(dtype, largest):
    """Index of the first max (min when not largest) of each of O rows of R elements; one
    thread per row (argmax is for evaluation, off the training path)."""
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(out, a, ao, ast, shape, nd, R, O):
        for o in range(cuda.grid(1), O, cuda.gridsize(1)):
            best = T(a[_at(o * R, ao, shape, ast, nd)])
            at = 0
            for r in range(1, R):
                x = T(a[_at(o * R + r, ao, shape, ast, nd)])
                if not math.isnan(best) and (math.isnan(x) or (x > best if largest else x < best)):
                    best, at = x, r
            out[o] = at
    return kernel

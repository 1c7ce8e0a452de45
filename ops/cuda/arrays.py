"""The cuda forms of the array plumbing kernels: contiguous, scatter_add and dropout_mask (a
device-side counter-based generator), registered at the bottom.

scatter_add uses atomic adds: thread e adds value e into its target position, so repeated
positions accumulate; the order of the adds, and so the rounding of a sum of several values,
varies from run to run on a GPU (the one op of the device that is not bit-reproducible).
"""

import math

import numpy as np
from numba import cuda

from ops.cuda import launch
from ops.cuda import namespace as ns
from ops.cuda.cudaarray import empty
from ops.cuda.launch import NUMBA_TYPES, factory
from ops.registry import register


def contiguous_cuda(a):
    return ns.contiguous(a)


@factory
def _scatter_kernel(dtype):
    """out[pos[e]] += vals[e] (atomic)."""
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(out, pos, vals, n):
        for e in range(cuda.grid(1), n, cuda.gridsize(1)):
            cuda.atomic.add(out, pos[e], T(vals[e]))
    return kernel


def scatter_add_cuda(shape, index, values, dtype=None):
    """zeros(shape) with values added at numpy-style index: the flat position of every element
    of `a[index]` (an arange indexed the same way), then one atomic add per value."""
    shape = tuple(shape)
    dtype = values.dtype if dtype is None else np.dtype(dtype)
    size = math.prod(shape)
    picked = ns.reshape(ns.arange(size, dtype=ns.int64), shape)[index]  # (a[index].shape)
    pos = ns.reshape(picked, (-1,))
    vals = ns.reshape(ns.broadcast_to(values, picked.shape), (-1,))
    out = ns.zeros((size,), dtype=dtype)
    n = pos.size
    if n:
        _scatter_kernel(out.dtype.name)[launch.blocks(n), launch.THREADS](out.dev(), pos.dev(),
                                                                          vals.dev(), n)
    return ns.reshape(out, shape)


# ---- dropout: a counter-based generator on the device ----------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@factory
def _dropout_kernel(dtype):
    """out[i] = keep / (1 - p), keep = u_i >= p, u_i in [0, 1) from splitmix64(seed + i *
    golden) (Steele et al.): a pure function of (seed, i), so any thread count gives the
    same mask. 24 random bits per element, all arithmetic in uint64 (no float64)."""
    T = NUMBA_TYPES[dtype]
    U = NUMBA_TYPES["uint64"]

    @launch.jit
    def kernel(out, seed, p, scale, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            z = seed + U(i) * _GOLDEN
            z = (z ^ (z >> U(30))) * _MIX1
            z = (z ^ (z >> U(27))) * _MIX2
            z = z ^ (z >> U(31))
            u = T(z >> U(40)) * T(1.0 / 16777216.0)
            out[i] = scale if u >= p else T(0)
    return kernel


def dropout_mask_cuda(shape, p, dtype, generator):
    """keep / (1 - p) in dtype, made on the device: the host generator gives one 64-bit seed
    (one draw, no transfer), the kernel hashes (seed, element index). Same distribution as
    the CPU's mask, not the same bits (the CPU draws generator.random(shape))."""
    dtype = np.dtype(dtype)
    seed = np.uint64(generator.integers(0, 2**63 - 1, dtype=np.int64))
    out = empty(tuple(shape), dtype)
    n = out.size
    if n:
        _dropout_kernel(dtype.name)[launch.blocks(n), launch.THREADS](
            out.flat(), seed, dtype.type(p), dtype.type(1) / dtype.type(1 - p), n)
    return out


register("contiguous", "cuda", contiguous_cuda)
register("scatter_add", "cuda", scatter_add_cuda)
register("dropout_mask", "cuda", dropout_mask_cuda)

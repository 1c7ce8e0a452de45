"""The cuda forms of the array plumbing kernels: contiguous, embedding forward and backward,
scatter_add, dropout_mask (a device-side counter-based generator) and the AdamW update.

Scatters (embedding backward, scatter_add) use atomic adds: thread e adds value e into its
target position, so repeated positions accumulate; the order of the adds, and so the
rounding of a sum of several values, varies from run to run on a GPU.
"""

import math

import numpy as np
from numba import cuda

from ops.cuda import launch
from ops.cuda import namespace as ns
from ops.cuda.array import CudaArray, empty
from ops.cuda.indexing import take
from ops.cuda.launch import NUMBA_TYPES, factory
from ops.registry import register


def contiguous_cuda(a):
    return ns.contiguous(a)


def embedding_cuda(weight, idx):
    """weight[idx]: a take along rows (ops/cuda/indexing.py)."""
    if not isinstance(weight, CudaArray) or not isinstance(idx, CudaArray):
        raise TypeError("embedding: expects cuda arrays")
    return ns.reshape(take(weight, ns.reshape(idx, (-1,)), axis=0), idx.shape + weight.shape[1:])


@factory
def _scatter_kernel(dtype):
    """out[pos[e]] += vals[e] (atomic)."""
    T = NUMBA_TYPES[dtype]

    @cuda.jit
    def kernel(out, pos, vals, n):
        for e in range(cuda.grid(1), n, cuda.gridsize(1)):
            cuda.atomic.add(out, pos[e], T(vals[e]))
    return kernel


@factory
def _embedding_backward_kernel(dtype):
    """dw[idx[r], c] += dout[r, c] (atomic): thread e owns element e of dout (N, C)."""
    @cuda.jit
    def kernel(dw, idx, dout, C, n):
        for e in range(cuda.grid(1), n, cuda.gridsize(1)):
            cuda.atomic.add(dw, idx[e // C] * C + e % C, dout[e])
    return kernel


def embedding_backward_cuda(idx, dout, num_embeddings):
    C = dout.shape[-1]
    flat = ns.reshape(ns.contiguous(idx), (-1,))
    rows = ns.reshape(ns.contiguous(dout), (-1,))
    dw = ns.zeros((num_embeddings * C,), dtype=dout.dtype)
    n = rows.size
    if n:
        _embedding_backward_kernel(dout.dtype.name)[launch.blocks(n), launch.THREADS](
            dw.dev(), flat.dev(), rows.dev(), C, n)
    return ns.reshape(dw, (num_embeddings, C))


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

    @cuda.jit
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
            out.base, seed, dtype.type(p), dtype.type(1) / dtype.type(1 - p), n)
    return out


# ---- AdamW ------------------------------------------------------------------------------------

@factory
def _adamw_kernel(dtype):
    """One fused pass over flat p, g, m, v; each thread updates elements i, i + grid, ...;
    h: (b1, 1-b1, b2, 1-b2, 1-lr*wd, lr/(1-b1^t), 1/(1-b2^t), eps) in the arrays' dtype."""
    @cuda.jit
    def kernel(p, g, m, v, b1, c1, b2, c2, decay, step_size, inv_bc2, eps):
        for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
            gi = g[i]
            mi = b1 * m[i] + c1 * gi
            vi = b2 * v[i] + c2 * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] = p[i] * decay - step_size * mi / (math.sqrt(vi * inv_bc2) + eps)
    return kernel


def adamw_update_cuda(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    for a in (param, grad, m, v):
        if not isinstance(a, CudaArray) or not a.is_contiguous() or a.shape != param.shape:
            raise ValueError(f"adamw_update: param {param.shape}, grad, m, v must be "
                             "contiguous cuda arrays of one shape")
    t = param.dtype.type
    h = (beta1, 1 - beta1, beta2, 1 - beta2, 1 - lr * weight_decay,
         lr / (1 - beta1 ** step), 1 / (1 - beta2 ** step), eps)
    n = param.size
    if n:
        flat = [ns.reshape(a, (-1,)).dev() for a in (param, grad, m, v)]
        _adamw_kernel(param.dtype.name)[launch.blocks(n), launch.THREADS](
            *flat, *(t(x) for x in h))


register("contiguous", "cuda", contiguous_cuda)
register("embedding", "cuda", embedding_cuda)
register("embedding_backward", "cuda", embedding_backward_cuda)
register("scatter_add", "cuda", scatter_add_cuda)
register("dropout_mask", "cuda", dropout_mask_cuda)
register("adamw_update", "cuda", adamw_update_cuda)

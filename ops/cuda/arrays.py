"""The cuda forms of the array plumbing kernels: contiguous, embedding forward and backward,
scatter_add, dropout_mask (a device-side counter-based generator) and the AdamW update.

scatter_add uses atomic adds: thread e adds value e into its target position, so repeated
positions accumulate; the order of the adds, and so the rounding of a sum of several values,
varies from run to run on a GPU (the one op of the device that is not bit-reproducible).
The embedding backward is deterministic: each output element has one owner thread.
"""

import math

import numpy as np
from numba import cuda

from ops.cuda import deferred, launch
from ops.cuda import namespace as ns
from ops.cuda import rows as rows_mod
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

    @launch.jit
    def kernel(out, pos, vals, n):
        for e in range(cuda.grid(1), n, cuda.gridsize(1)):
            cuda.atomic.add(out, pos[e], T(vals[e]))
    return kernel


# Embedding backward, deterministic (no atomics): positions are cut into P chunks of about
# EMB_ROWS rows; block (column group, chunk p) zeroes its columns of partial sum p and adds
# the chunk's rows in order, thread c owning column c (so no two threads write one element);
# the P partial sums are then added in order by a queued column sum (ops/cuda/deferred.py).
EMB_ROWS = 4 if launch.SIMULATOR else 64


@factory
def _embedding_backward_kernel(dtype):
    """part[p, idx[n] * C + c] = sum of dout[n, c] over the rows n of chunk p."""
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(part, idx, dout, V, chunk):
        N, C = dout.shape
        c = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        if c < C:
            for p in range(cuda.blockIdx.y, part.shape[0], cuda.gridDim.y):  # grid-stride
                for v in range(V):
                    part[p, v * C + c] = T(0)
                for n in range(p * chunk, min(N, (p + 1) * chunk)):
                    part[p, idx[n] * C + c] += dout[n, c]
    return kernel


def embedding_backward_cuda(idx, dout, num_embeddings):
    C = dout.shape[-1]
    V = num_embeddings
    flat = ns.reshape(ns.contiguous(idx), (-1,))
    rows = ns.reshape(ns.contiguous(dout), (-1, C))
    N = rows.shape[0]
    if not N or not V * C:
        return ns.zeros((V, C), dtype=dout.dtype)
    P = max(1, min(N // EMB_ROWS, 4 * N // V))
    chunk = -(-N // P)
    part = empty((P, V * C), dout.dtype)
    grid = (-(-C // launch.THREADS), min(P, launch.MAX_GRID))
    _embedding_backward_kernel(dout.dtype.name)[grid, launch.THREADS](
        part.dev(), flat.dev(), rows.dev(), V, chunk)
    dw = part if P == 1 else deferred.colsum(part, empty((V * C,), dout.dtype))
    return ns.reshape(dw, (V, C))


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


# ---- AdamW ------------------------------------------------------------------------------------

def adamw_update_cuda(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """Queued (ops/cuda/deferred.py): the optimizer's updates of all its parameters then
    run as one multi-tensor launch, before anything reads param, m or v."""
    for a in (param, grad, m, v):
        if not isinstance(a, CudaArray) or not a.is_contiguous() or a.shape != param.shape \
                or a.dtype != param.dtype:
            raise ValueError(f"adamw_update: param {param.shape} {param.dtype}, grad, m, v "
                             "must be contiguous cuda arrays of one shape and dtype")
    if param.size:
        deferred.adamw(param, grad, m, v, deferred.adamw_constants(
            lr, beta1, beta2, eps, weight_decay, step))


# ---- sum of squares of many arrays (gradient clipping) ----------------------------------------

@factory
def _sum_squares_kernel(dtype, width):
    """parts[o] = sum of x[x0 + i]^2 (float64) for i < n, (x0, n, o) = row blockIdx.y of tab:
    one block per array, its threads striding the array, then a tree in shared memory."""
    T = NUMBA_TYPES["float64"]
    nt = launch.ROW_THREADS
    rsum = rows_mod.block_reduce("sum", "float64")

    @launch.jit
    def kernel(parts, x, tab):
        part = cuda.shared.array(nt, T)
        r = 3 * cuda.blockIdx.y
        x0, n, o = tab[r], tab[r + 1], tab[r + 2]
        t = cuda.threadIdx.x
        acc = T(0)
        for i in range(t, n, nt):
            acc += T(x[x0 + i]) * T(x[x0 + i])
        acc = rsum(part, t, acc)
        if t == 0 and n > 0:
            parts[o] = acc
    return kernel


def sum_squares_cuda(arrays):
    """One launch per dtype and allocator segment (usually one) writes each array's sum of
    squares, in float64; one reduction adds them: two launches for any number of arrays."""
    arrays = [ns.contiguous(a) for a in arrays]
    if not arrays:
        return ns.zeros((), dtype=np.float64)
    deferred.flush()  # (gradients are often the targets of queued copies)
    parts = empty((len(arrays),), np.float64)
    groups = {}
    for k, a in enumerate(arrays):
        if a.size:
            groups.setdefault((a.dtype.name, a.owner.segment.index), []).append((k, a))
    if len(groups) != 1 or sum(len(g) for g in groups.values()) != len(arrays):
        parts = ns.zeros((len(arrays),), dtype=np.float64)  # (some rows stay unwritten)
    for (dtype, _), members in groups.items():
        for at in range(0, len(members), deferred.MAX_ROWS):
            chunk = members[at:at + deferred.MAX_ROWS]
            tab = [v for k, a in chunk for v in (a.offset, a.size, k)]
            tab += [0, 0, 0] * (deferred.padded(len(chunk)) - len(chunk))
            _sum_squares_kernel(dtype, len(tab))[(1, len(tab) // 3), launch.ROW_THREADS](
                parts.flat(), chunk[0][1].base, tuple(tab))
    return ns.sum(parts)


register("contiguous", "cuda", contiguous_cuda)
register("sum_squares", "cuda", sum_squares_cuda)
register("embedding", "cuda", embedding_cuda)
register("embedding_backward", "cuda", embedding_backward_cuda)
register("scatter_add", "cuda", scatter_add_cuda)
register("dropout_mask", "cuda", dropout_mask_cuda)
register("adamw_update", "cuda", adamw_update_cuda)

"""Layer norm on the cuda device, forward and backward, over the last axis of x viewed as
(R, N) C-contiguous: the kernels, their launchers and register(...) at the bottom.

Forward and dx: one block per row (grid-stride over rows), its ROW_THREADS threads striding
over the row, the row's sums being the block reduction of ops/cuda/reduce.py (a fixed
order: deterministic). dw and db: column sums, per block of rows, then one queued reduction.
"""

import math

from numba import cuda

from ops.cuda import deferred, launch
from ops.cuda import namespace as ns
from ops.cuda.cudaarray import check_arrays, empty, scalar
from ops.cuda.launch import NUMBA_TYPES, factory, row_grid
from ops.cuda.reduce import block_reduce
from ops.cuda.softmax import rows_of
from ops.registry import register


@factory
def layer_norm_kernel(dtype):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rsum = block_reduce("sum", dtype, nt)

    @launch.jit
    def kernel(y, mean, rstd, x, w, b, eps):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        R, N = x.shape
        inv_n = T(1) / T(N)
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            s = T(0)
            for j in range(t, N, nt):
                s += x[r, j]
            mu = rsum(part, t, s) * inv_n
            s = T(0)
            for j in range(t, N, nt):
                s += (x[r, j] - mu) * (x[r, j] - mu)
            rs = T(1) / math.sqrt(rsum(part, t, s) * inv_n + eps)
            for j in range(t, N, nt):
                y[r, j] = (x[r, j] - mu) * rs * w[j] + b[j]
            if t == 0:
                mean[r] = mu
                rstd[r] = rs
    return kernel


@factory
def layer_norm_dx_kernel(dtype):
    """dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w, per row."""
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rsum = block_reduce("sum", dtype, nt)

    @launch.jit
    def kernel(dx, dy, x, w, mean, rstd):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        R, N = x.shape
        inv_n = T(1) / T(N)
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            mu, rs = mean[r], rstd[r]
            sg, sgx = T(0), T(0)
            for j in range(t, N, nt):
                g = dy[r, j] * w[j]
                sg += g
                sgx += g * (x[r, j] - mu) * rs
            mg = rsum(part, t, sg) * inv_n
            mgx = rsum(part, t, sgx) * inv_n
            for j in range(t, N, nt):
                xhat = (x[r, j] - mu) * rs
                dx[r, j] = rs * (dy[r, j] * w[j] - mg - xhat * mgx)
    return kernel


# Column sums of layer norm's backward: block (cb, rb) sums rows [rb * ROWS_PER_BLOCK, ...)
# of THREADS columns (thread t owns column cb * THREADS + t: coalesced); the partial sums
# (row blocks, C) are then reduced by the namespace's sum.
ROWS_PER_BLOCK = 4 if launch.SIMULATOR else 64


@factory
def layer_norm_dwdb_kernel(dtype, rows_per_block):
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(pw, pb, dy, x, mean, rstd):
        R, N = x.shape
        j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        if j < N:
            for rb in range(cuda.blockIdx.y, pw.shape[0], cuda.gridDim.y):  # grid-stride
                sw, sb = T(0), T(0)
                for r in range(rb * rows_per_block, min(R, (rb + 1) * rows_per_block)):
                    sw += dy[r, j] * (x[r, j] - mean[r]) * rstd[r]
                    sb += dy[r, j]
                pw[rb, j] = sw
                pb[rb, j] = sb
    return kernel


def layer_norm_cuda(x, weight, bias, eps):
    check_arrays("layer_norm", x, weight, bias)
    if weight.shape != x.shape[-1:] or bias.shape != x.shape[-1:]:
        raise ValueError(f"layer_norm: weight {weight.shape} and bias {bias.shape} do not fit "
                         f"x {x.shape}")
    x2 = rows_of(x)
    R = x2.shape[0]
    y, mean, rstd = empty(x2.shape, x.dtype), empty((R,), x.dtype), empty((R,), x.dtype)
    if x2.size:
        layer_norm_kernel(x.dtype.name)[row_grid(R)](
            y.dev(), mean.dev(), rstd.dev(), x2.dev(), ns.contiguous(weight).dev(),
            ns.contiguous(bias).dev(), scalar(x.dtype, eps))
    lead = x.shape[:-1]
    return ns.reshape(y, x.shape), ns.reshape(mean, lead), ns.reshape(rstd, lead)


def layer_norm_backward_cuda(dy, x, weight, mean, rstd):
    check_arrays("layer_norm_backward", dy, x, weight, mean, rstd)
    x2, dy2 = rows_of(x), rows_of(dy)
    R, C = x2.shape
    mean, rstd = ns.reshape(ns.contiguous(mean), (R,)), ns.reshape(ns.contiguous(rstd), (R,))
    dx = empty(x2.shape, x.dtype)
    rb = max(1, -(-R // ROWS_PER_BLOCK))
    if not x2.size:
        zero = ns.zeros((C,), dtype=x.dtype)
        return ns.reshape(dx, x.shape), zero, ns.zeros((C,), dtype=x.dtype)
    layer_norm_dx_kernel(x.dtype.name)[row_grid(R)](
        dx.dev(), dy2.dev(), x2.dev(), ns.contiguous(weight).dev(), mean.dev(), rstd.dev())
    # per row block, the partial column sums of dw (parts[0]) and db (parts[1]); every
    # entry is written, then one reduction sums the row blocks of both
    parts = empty((2, rb, C), x.dtype)
    grid = (-(-C // launch.THREADS), min(rb, launch.MAX_GRID))
    layer_norm_dwdb_kernel(x.dtype.name, ROWS_PER_BLOCK)[grid, launch.THREADS](
        parts[0].dev(), parts[1].dev(), dy2.dev(), x2.dev(), mean.dev(), rstd.dev())
    dw, db = (deferred.colsum(parts[i], empty((C,), x.dtype)) for i in (0, 1))
    return ns.reshape(dx, x.shape), dw, db


register("layer_norm", "cuda", layer_norm_cuda)
register("layer_norm_backward", "cuda", layer_norm_backward_cuda)

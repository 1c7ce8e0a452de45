"""Row kernels on the cuda device: softmax and log-softmax (forward and backward) and layer
norm (forward and backward) over the last axis of x viewed as (R, N) C-contiguous.

One block per row (grid-stride over rows when there are more rows than MAX_BLOCKS); its
ROW_THREADS threads stride over the row's N elements (thread t reads t, t + ROW_THREADS, ...:
coalesced), so rows of any length work. Row maxima and sums are block reductions: with
WARP_SHUFFLE (real GPUs) each warp reduces in registers with shfl_down_sync and one value
per warp goes through shared memory; otherwise (the simulator has no shuffles) a
shared-memory tree. Each row's sums run in a fixed order: deterministic.
"""

import math

from numba import cuda

from ops.cuda import launch
from ops.cuda.array import empty
from ops.cuda.launch import NUMBA_TYPES, factory

WARP = 32
_FULL_MASK = 0xFFFFFFFF


def _combine(kind, T):
    if kind == "max":
        return lambda a, b: a if (a > b or math.isnan(a)) else b
    return lambda a, b: a + b


@factory
def block_reduce(kind, dtype):
    """A device function reduce(part, t, value) -> the block's reduction of `value` (every
    thread gets it); part: a shared array of ROW_THREADS values of `dtype`."""
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(_combine(kind, T))
    nt, shuffle = launch.ROW_THREADS, launch.WARP_SHUFFLE and launch.ROW_THREADS >= WARP
    identity = T(-math.inf) if kind == "max" else T(0)

    @cuda.jit(device=True, inline=True)
    def reduce(part, t, v):
        if shuffle:  # registers within each warp, then one value per warp in shared memory
            off = WARP // 2
            while off > 0:
                v = f(v, cuda.shfl_down_sync(_FULL_MASK, v, off))
                off //= 2
            if t % WARP == 0:
                part[t // WARP] = v
            cuda.syncthreads()
            if t < WARP:
                v = part[t] if t < nt // WARP else identity
                off = WARP // 2
                while off > 0:
                    v = f(v, cuda.shfl_down_sync(_FULL_MASK, v, off))
                    off //= 2
                if t == 0:
                    part[0] = v
        else:  # shared-memory tree
            part[t] = v
            cuda.syncthreads()
            s = nt // 2
            while s > 0:
                if t < s:
                    part[t] = f(part[t], part[t + s])
                cuda.syncthreads()
                s //= 2
        cuda.syncthreads()
        r = part[0]
        cuda.syncthreads()
        return r
    return reduce


@factory
def softmax_kernel(dtype, log):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rmax, rsum = block_reduce("max", dtype), block_reduce("sum", dtype)

    @launch.jit
    def kernel(y, x):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        R, N = x.shape
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            m = T(-math.inf)
            for j in range(t, N, nt):
                m = x[r, j] if (x[r, j] > m or math.isnan(x[r, j])) else m
            m = rmax(part, t, m)
            s = T(0)
            for j in range(t, N, nt):
                s += math.exp(x[r, j] - m)
            s = rsum(part, t, s)
            if log:
                shift = m + math.log(s)
                for j in range(t, N, nt):
                    y[r, j] = x[r, j] - shift
            else:
                inv = T(1) / s
                for j in range(t, N, nt):
                    y[r, j] = math.exp(x[r, j] - m) * inv
    return kernel


@factory
def softmax_backward_kernel(dtype, log):
    """softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy)."""
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rsum = block_reduce("sum", dtype)

    @launch.jit
    def kernel(dx, y, dy):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        R, N = y.shape
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            s = T(0)
            for j in range(t, N, nt):
                s += dy[r, j] if log else dy[r, j] * y[r, j]
            s = rsum(part, t, s)
            for j in range(t, N, nt):
                if log:
                    dx[r, j] = dy[r, j] - math.exp(y[r, j]) * s
                else:
                    dx[r, j] = y[r, j] * (dy[r, j] - s)
    return kernel


@factory
def layer_norm_kernel(dtype):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rsum = block_reduce("sum", dtype)

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
    rsum = block_reduce("sum", dtype)

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


def row_grid(rows):
    return max(1, min(rows, launch.MAX_BLOCKS)), launch.ROW_THREADS


def rows_of(ns, x):
    """x as a contiguous (R, N) array (N: the last axis)."""
    n = x.shape[-1] if x.ndim else 1
    return ns.reshape(ns.contiguous(x), (-1, n))


def new_rows(shape, dtype):
    return empty(shape, dtype)

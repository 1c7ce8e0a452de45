"""Softmax and log-softmax on the cuda device, forward and backward, over the last axis of x
viewed as (R, N) C-contiguous: the kernels, their launchers and register(...) at the bottom.

One block per row (grid-stride over rows when there are more rows than MAX_BLOCKS); its
ROW_THREADS threads stride over the row's N elements (thread t reads t, t + ROW_THREADS, ...:
coalesced), so rows of any length work. Row maxima and sums are the block reduction of
ops/cuda/reduce.py. `row_max_sumexp` (a row's max and sum of exp(x - max)) is shared with
cross-entropy (ops/cuda/loss.py). Each row's sums run in a fixed order: deterministic.
"""

import math

from numba import cuda

from ops.cuda import launch
from ops.cuda import namespace as ns
from ops.cuda.cudaarray import check_arrays, empty
from ops.cuda.launch import NUMBA_TYPES, factory, row_grid
from ops.cuda.reduce import block_reduce
from ops.registry import register


@factory
def row_max_sumexp(dtype):
    """A device function stats(part, t, x, r) -> (m, s): the max m of row r of x (R, N) and
    the sum of exp(x - m) over it, every thread of the block getting both; part: a shared
    array of ROW_THREADS values of `dtype`, t the thread's index."""
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rmax, rsum = block_reduce("max", dtype, nt), block_reduce("sum", dtype, nt)

    @cuda.jit(device=True, inline=True)
    def stats(part, t, x, r):
        N = x.shape[1]
        m = T(-math.inf)
        for j in range(t, N, nt):
            m = x[r, j] if (x[r, j] > m or math.isnan(x[r, j])) else m
        m = rmax(part, t, m)
        s = T(0)
        for j in range(t, N, nt):
            s += math.exp(x[r, j] - m)
        return m, rsum(part, t, s)
    return stats


@factory
def softmax_kernel(dtype, log):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    stats = row_max_sumexp(dtype)

    @launch.jit
    def kernel(y, x):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        R, N = x.shape
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            m, s = stats(part, t, x, r)
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
    rsum = block_reduce("sum", dtype, nt)

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


def rows_of(x):
    """x as a contiguous (R, N) array (N: the last axis)."""
    n = x.shape[-1] if x.ndim else 1
    return ns.reshape(ns.contiguous(x), (-1, n))


def _softmax(op, log):
    def forward(x):
        check_arrays(op, x)
        x2 = rows_of(x)
        y = empty(x2.shape, x.dtype)
        if x2.size:
            softmax_kernel(x.dtype.name, log)[row_grid(x2.shape[0])](y.dev(), x2.dev())
        return ns.reshape(y, x.shape)
    return forward


def _softmax_backward(op, log):
    def backward(y, dy):
        check_arrays(op, y, dy)
        if y.shape != dy.shape or y.dtype != dy.dtype:
            raise ValueError(f"{op}: y {y.shape} {y.dtype} and dy {dy.shape} {dy.dtype} differ")
        y2, dy2 = rows_of(y), rows_of(dy)
        dx = empty(y2.shape, y.dtype)
        if y2.size:
            softmax_backward_kernel(y.dtype.name, log)[row_grid(y2.shape[0])](
                dx.dev(), y2.dev(), dy2.dev())
        return ns.reshape(dx, y.shape)
    return backward


register("softmax", "cuda", _softmax("softmax", False))
register("softmax_backward", "cuda", _softmax_backward("softmax_backward", False))
register("log_softmax", "cuda", _softmax("log_softmax", True))
register("log_softmax_backward", "cuda", _softmax_backward("log_softmax_backward", True))

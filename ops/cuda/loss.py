"""Cross-entropy on the cuda device, forward and backward, two launches each.

Forward: one block per row computes the row's log-sum-exp (the max and sum-of-exp passes of
the softmax kernels, ops/cuda/softmax.py) and NLL (0 on ignored rows);
then one block sums the NLLs and counts the counted rows, in a fixed order (deterministic),
and writes the mean. Backward: one block counts the counted rows and writes grad / count
(divided in float64, rounded once to the dtype, as the contract says); then a thread per
logit writes (softmax - onehot) * that scale.
"""

import math

import numpy as np
from numba import cuda

from ops.cuda import launch
from ops.cuda import namespace as ns
from ops.cuda.cudaarray import CudaArray, empty
from ops.cuda.launch import NUMBA_TYPES, factory, row_grid
from ops.cuda.reduce import block_reduce
from ops.cuda.softmax import row_max_sumexp
from ops.registry import register


@factory
def _ce_forward_kernel(dtype):
    """One block per row: lse and the row's NLL (0 on ignored rows)."""
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    stats = row_max_sumexp(dtype)  # the softmax kernels' row passes

    @launch.jit
    def kernel(lse, nll, x, targets, ignore_index):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        R = x.shape[0]
        for r in range(cuda.blockIdx.x, R, cuda.gridDim.x):
            m, s = stats(part, t, x, r)
            lz = m + math.log(s)
            if t == 0:
                lse[r] = lz
                tg = targets[r]
                nll[r] = lz - x[r, tg] if tg != ignore_index else T(0)
    return kernel


@factory
def _ce_mean_kernel(dtype):
    """One block: loss[0] = sum(nll) / max(count, 1), count = rows whose target counts."""
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rsum = block_reduce("sum", dtype, nt)

    @launch.jit
    def kernel(loss, nll, targets, ignore_index):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        s, c = T(0), T(0)
        for r in range(t, nll.size, nt):
            s += nll[r]
            c += T(1) if targets[r] != ignore_index else T(0)
        s = rsum(part, t, s)
        c = rsum(part, t, c)
        if t == 0:
            loss[0] = s / (max(T(1), c))
    return kernel


@factory
def _ce_scale_kernel(dtype):
    """One block: scale[0] = grad[0] / max(count, 1) in float64, rounded once to dtype."""
    T = NUMBA_TYPES[dtype]
    F = NUMBA_TYPES["float64"]
    nt = launch.ROW_THREADS
    rsum = block_reduce("sum", "float64", nt)

    @launch.jit
    def kernel(scale, grad, targets, ignore_index):
        part = cuda.shared.array(nt, F)
        t = cuda.threadIdx.x
        c = F(0)
        for r in range(t, targets.size, nt):
            c += F(1) if targets[r] != ignore_index else F(0)
        c = rsum(part, t, c)
        if t == 0:
            scale[0] = T(F(grad[0]) / (max(F(1), c)))
    return kernel


@factory
def _ce_backward_kernel(dtype):
    """dlogits[r, j] = (exp(x - lse) - [j == target]) * scale on counted rows, else 0."""
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(dx, x, targets, lse, scale, ignore_index):
        R, V = x.shape
        for e in range(cuda.grid(1), R * V, cuda.gridsize(1)):
            r, j = e // V, e % V
            tg = targets[r]
            if tg == ignore_index:
                dx[r, j] = T(0)
            else:
                g = math.exp(x[r, j] - lse[r])
                dx[r, j] = (g - T(1) if j == tg else g) * scale[0]
    return kernel


def _check(op, logits, targets):
    for a in (logits, targets):
        if not isinstance(a, CudaArray):
            raise TypeError(f"{op}: expects cuda arrays, got {type(a).__name__}")
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"{op}: logits {logits.shape} and targets {targets.shape} "
                         "do not fit (want (N, V) and (N,))")


def cross_entropy_cuda(logits, targets, ignore_index):
    _check("cross_entropy", logits, targets)
    x, tg = ns.contiguous(logits), ns.contiguous(targets)
    R = x.shape[0]
    lse, nll, loss = empty((R,), x.dtype), empty((R,), x.dtype), empty((), x.dtype)
    if R:
        _ce_forward_kernel(x.dtype.name)[row_grid(R)](lse.dev(), nll.dev(), x.dev(),
                                                           tg.dev(), int(ignore_index))
    _ce_mean_kernel(x.dtype.name)[1, launch.ROW_THREADS](loss.flat(), nll.flat(), tg.flat(),
                                                         int(ignore_index))
    return loss, lse


def cross_entropy_backward_cuda(logits, targets, lse, ignore_index, grad):
    _check("cross_entropy_backward", logits, targets)
    x, tg, lse = ns.contiguous(logits), ns.contiguous(targets), ns.contiguous(lse)
    if not isinstance(grad, CudaArray):
        grad = ns.full((), float(grad), dtype=np.float64)
    scale, dx = empty((), x.dtype), empty(x.shape, x.dtype)
    _ce_scale_kernel(x.dtype.name)[1, launch.ROW_THREADS](scale.flat(), grad.flat(),
                                                          tg.flat(), int(ignore_index))
    if x.size:
        _ce_backward_kernel(x.dtype.name)[launch.blocks(x.size), launch.THREADS](
            dx.dev(), x.dev(), tg.dev(), lse.dev(), scale.flat(), int(ignore_index))
    return dx


register("cross_entropy", "cuda", cross_entropy_cuda)
register("cross_entropy_backward", "cuda", cross_entropy_backward_cuda)

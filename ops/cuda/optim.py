"""The optimizer's kernels on the cuda device: the AdamW update (queued, run as one
multi-tensor launch) and the sum of squares of many arrays (gradient clipping), registered
at the bottom."""

import numpy as np
from numba import cuda

from ops.cuda import deferred, launch
from ops.cuda import namespace as ns
from ops.cuda.cudaarray import CudaArray, empty
from ops.cuda.launch import NUMBA_TYPES, factory
from ops.cuda.reduce import block_reduce
from ops.registry import register

# ---- AdamW ------------------------------------------------------------------------------

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


# ---- sum of squares of many arrays (gradient clipping) ----------------------------------

@factory
def _sum_squares_kernel(dtype, width):
    """parts[o] = sum of x[x0 + i]^2 (float64) for i < n, (x0, n, o) = row blockIdx.y of tab:
    one block per array, its threads striding the array, then a tree in shared memory."""
    T = NUMBA_TYPES["float64"]
    nt = launch.ROW_THREADS
    rsum = block_reduce("sum", "float64", nt)

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


register("adamw_update", "cuda", adamw_update_cuda)
register("sum_squares", "cuda", sum_squares_cuda)

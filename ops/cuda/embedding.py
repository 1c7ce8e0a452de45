"""Embedding on the cuda device, forward (a take along rows) and backward (deterministic: each
output element has one owner thread, no atomics), registered at the bottom."""

from numba import cuda

from ops.cuda import deferred, launch
from ops.cuda import namespace as ns
from ops.cuda.cudaarray import CudaArray, empty
from ops.cuda.indexing import take
from ops.cuda.launch import NUMBA_TYPES, factory
from ops.registry import register


def embedding_cuda(weight, idx):
    """weight[idx]: a take along rows (ops/cuda/indexing.py)."""
    if not isinstance(weight, CudaArray) or not isinstance(idx, CudaArray):
        raise TypeError("embedding: expects cuda arrays")
    return ns.reshape(take(weight, ns.reshape(idx, (-1,)), axis=0), idx.shape + weight.shape[1:])


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


register("embedding", "cuda", embedding_cuda)
register("embedding_backward", "cuda", embedding_backward_cuda)

"""matmul on the cuda device: a shared-memory tiled kernel with register tiling, 2-D and
batched, with the transposed-operand forms (nt: a @ b^T, tn: a^T @ b) read in place.

Each block computes TILE_M x TILE_N tiles of C[s] (a 1-D grid striding over every batch,
row tile and column tile: no grid dimension can overflow).
Its (TILE_M / REG_M) x (TILE_N / REG_N) threads each own REG_M x REG_N outputs, rows
ty + i * (TILE_M / REG_M) and columns tx + j * (TILE_N / REG_N) (strided, so neighbouring
threads read neighbouring shared-memory words and write neighbouring columns). Per step of
TILE_K along K, the threads stage A's tile (as As[k, m]) and B's (as Bs[k, n]) in shared
memory, reading global memory along its contiguous axis whatever the transposition; then each
thread accumulates its outputs from REG_M + REG_N register values per k (accumulators in
registers: the loops have constant bounds and unroll). Out-of-range rows, columns and k are
loaded as 0 and not stored, so any size works. The sums run in k order: deterministic.
"""

import math

from numba import cuda

from ops.cuda import launch
from ops.cuda.array import CudaArray, empty, namespace
from ops.cuda.launch import NUMBA_TYPES

# Tile shape: module constants that tests shrink (the simulator runs a Python thread per
# CUDA thread). Threads per block: (TILE_M // REG_M) * (TILE_N // REG_N).
if launch.SIMULATOR:
    TILE_M, TILE_N, TILE_K, REG_M, REG_N = 8, 8, 8, 4, 4
else:
    TILE_M, TILE_N, TILE_K, REG_M, REG_N = 64, 64, 16, 4, 4

_BUILT = {}


def tiles():
    return (TILE_M, TILE_N, TILE_K, REG_M, REG_N)


def matmul_kernel(dtype, ta, tb, shape=None):
    """The kernel for one dtype and transposition, built for tile shape `shape` (default:
    the module constants now)."""
    key = (dtype, ta, tb, shape or tiles())
    if key not in _BUILT:
        _BUILT[key] = launch.Kernel(_build(*key), "matmul")
    return _BUILT[key]


def _build(dtype, ta, tb, shape):
    T = NUMBA_TYPES[dtype]
    tm, tn, tk, rm, rn = shape
    bx, by = tn // rn, tm // rm
    nt = bx * by
    tm_pad, tn_pad = tm + 1, tn + 1  # (shared-array shapes must be constants)

    @launch.jit
    def kernel(c, a, b, M, N, K):
        # one padding column: the staging stores walk down a column (stride tk + 1 words,
        # not tm), so the 32 threads of a warp hit 32 different banks
        As = cuda.shared.array((tk, tm_pad), T)
        Bs = cuda.shared.array((tk, tn_pad), T)
        acc = cuda.local.array((rm, rn), T)
        ar = cuda.local.array(rm, T)
        br = cuda.local.array(rn, T)
        t = cuda.threadIdx.x
        tx, ty = t % bx, t // bx
        col_tiles = (N + tn - 1) // tn
        tiles = col_tiles * ((M + tm - 1) // tm)
        # grid-stride over every (batch, row tile, column tile): no grid dimension limit
        for tile in range(cuda.blockIdx.x, c.shape[0] * tiles, cuda.gridDim.x):
            s, rest = tile // tiles, tile % tiles
            m0, n0 = (rest // col_tiles) * tm, (rest % col_tiles) * tn
            for i in range(rm):
                for j in range(rn):
                    acc[i, j] = T(0)
            for k0 in range(0, K, tk):
                for e in range(t, tm * tk, nt):  # stage A's tile
                    if ta:  # a (K, M): read along m
                        m, kk = e % tm, e // tm
                    else:   # a (M, K): read along k
                        m, kk = e // tk, e % tk
                    ok = m0 + m < M and k0 + kk < K
                    if ta:
                        As[kk, m] = a[s, k0 + kk, m0 + m] if ok else T(0)
                    else:
                        As[kk, m] = a[s, m0 + m, k0 + kk] if ok else T(0)
                for e in range(t, tn * tk, nt):  # stage B's tile
                    if tb:  # b (N, K): read along k
                        n, kk = e // tk, e % tk
                    else:   # b (K, N): read along n
                        n, kk = e % tn, e // tn
                    ok = n0 + n < N and k0 + kk < K
                    if tb:
                        Bs[kk, n] = b[s, n0 + n, k0 + kk] if ok else T(0)
                    else:
                        Bs[kk, n] = b[s, k0 + kk, n0 + n] if ok else T(0)
                cuda.syncthreads()
                for kk in range(tk):
                    for i in range(rm):
                        ar[i] = As[kk, ty + i * by]
                    for j in range(rn):
                        br[j] = Bs[kk, tx + j * bx]
                    for i in range(rm):
                        for j in range(rn):
                            acc[i, j] += ar[i] * br[j]
                cuda.syncthreads()
            for i in range(rm):
                m = m0 + ty + i * by
                for j in range(rn):
                    n = n0 + tx + j * bx
                    if m < M and n < N:
                        c[s, m, n] = acc[i, j]
    return kernel


def matmul_batched(a, b, ta, tb):
    """C (S, M, N) from 3-D a and b of equal S: a (S, M, K) or (S, K, M) when ta; b (S, K, N)
    or (S, N, K) when tb."""
    ns = namespace()
    a, b = ns.contiguous(a), ns.contiguous(b)
    S = a.shape[0]
    M, K = (a.shape[2], a.shape[1]) if ta else (a.shape[1], a.shape[2])
    N = b.shape[1] if tb else b.shape[2]
    if K == 0 or S * M * N == 0:
        return ns.zeros((S, M, N), dtype=a.dtype)
    c = empty((S, M, N), a.dtype)
    tm, tn, _, rm, rn = tiles()
    grid = min(S * math.ceil(N / tn) * math.ceil(M / tm), launch.MAX_GRID)
    matmul_kernel(a.dtype.name, ta, tb)[grid, (tm // rm) * (tn // rn)](
        c.dev(), a.dev(), b.dev(), M, N, K)
    return c


def _check(op, a, b, ka, kb, lead):
    if not (isinstance(a, CudaArray) and isinstance(b, CudaArray)):
        raise TypeError(f"{op}: expects cuda arrays, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    if a.ndim < 2 or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2] or ka != kb \
            or (lead and a.ndim > 3) or a.dtype != b.dtype:
        raise ValueError(f"{op}: shapes {a.shape} {a.dtype} and {b.shape} {b.dtype} do not fit")


def _run(a, b, ta, tb, out_rows, out_cols):
    reshape = namespace().reshape
    batch = a.shape[:-2]
    a3, b3 = reshape(a, (-1,) + a.shape[-2:]), reshape(b, (-1,) + b.shape[-2:])
    return reshape(matmul_batched(a3, b3, ta, tb), batch + (out_rows, out_cols))


def matmul_cuda(a, b):
    """a @ b: a (M, K), b (K, N); or 3-D (S, M, K), (S, K, N)."""
    _check("matmul", a, b, a.shape[-1], b.shape[-2], True)
    return _run(a, b, False, False, a.shape[-2], b.shape[-1])


def matmul_nt_cuda(a, b):
    """a @ b^T: a (.., M, K), b (.., N, K) -> (.., M, N)."""
    _check("matmul_nt", a, b, a.shape[-1], b.shape[-1], False)
    return _run(a, b, False, True, a.shape[-2], b.shape[-2])


def matmul_tn_cuda(a, b):
    """a^T @ b: a (.., K, M), b (.., K, N) -> (.., M, N)."""
    _check("matmul_tn", a, b, a.shape[-2], b.shape[-2], False)
    return _run(a, b, True, False, a.shape[-1], b.shape[-1])

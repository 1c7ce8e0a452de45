"""matmul on the cuda device: a shared-memory tiled kernel with register tiling, 2-D and
batched, with the transposed-operand forms (nt: a @ b^T, tn: a^T @ b) read in place; the
launchers of matmul, matmul_nt, matmul_tn, linear and sum_rows, registered at the bottom.

Each block computes TILE_M x TILE_N tiles of C[s] (a 1-D grid striding over every batch,
row tile and column tile: no grid dimension can overflow).
Its (TILE_M / REG_M) x (TILE_N / REG_N) threads each own REG_M x REG_N outputs, rows
ty + i * (TILE_M / REG_M) and columns tx + j * (TILE_N / REG_N) (strided, so neighbouring
threads read neighbouring shared-memory words and write neighbouring columns). Per step of
TILE_K along K, each thread accumulates its outputs from REG_M + REG_N register values per k
(accumulators in registers: the loops have constant bounds and unroll), reading the shared
tiles (A's as As[k, m], B's as Bs[k, n], one padding column each) through unsigned offsets
stepped by a constant: no index multiply or negative-index wraparound in the loop, constant
displacements on every load. Double-buffered: two shared copies of each tile; while one is
read, the threads' loads of the next k-tile from global memory (along its contiguous axis
whatever the transposition) are in flight into registers, stored to the other copy after the
products; one barrier per k-step. Out-of-range rows, columns and k are loaded as 0 and not
stored, so any size works. The sums run in k order: deterministic.
"""

import math

import numba
from numba import cuda

from ops.cuda import launch
from ops.cuda.cudaarray import CudaArray, empty, namespace
from ops.cuda.launch import NUMBA_TYPES
from ops.registry import register

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
    T, U, W = NUMBA_TYPES[dtype], numba.uint32, numba.uint64
    tm, tn, tk, rm, rn = shape
    bx, by = tn // rn, tm // rm
    nt = bx * by
    pa, pb = -(-tm * tk // nt), -(-tn * tk // nt)  # tile elements each thread stages
    # one padding column: the staging stores walk down a column (stride tm + 1 words, not
    # tm), so the 32 threads of a warp hit 32 different banks; two buffers of each tile
    sa, sb = tk * (tm + 1), tk * (tn + 1)
    sa2, sb2 = 2 * sa, 2 * sb
    load_a, store_a = _stager(T, ta, tm, tk, nt, pa, True)
    load_b, store_b = _stager(T, tb, tn, tk, nt, pb, False)

    @launch.jit
    def kernel(c, a, b, M, N, K):
        As = cuda.shared.array(sa2, T)
        Bs = cuda.shared.array(sb2, T)
        acc = cuda.local.array((rm, rn), T)
        ar = cuda.local.array(rm, T)
        br = cuda.local.array(rn, T)
        va = cuda.local.array(pa, T)  # this thread's share of the next tiles
        vb = cuda.local.array(pb, T)
        t = cuda.threadIdx.x
        tx, ty = U(t % bx), U(t // bx)
        col_tiles = (N + tn - 1) // tn
        tiles = col_tiles * ((M + tm - 1) // tm)
        # grid-stride over every (batch, row tile, column tile): no grid dimension limit
        for tile in range(cuda.blockIdx.x, c.shape[0] * tiles, cuda.gridDim.x):
            s, rest = tile // tiles, tile % tiles
            m0, n0 = (rest // col_tiles) * tm, (rest % col_tiles) * tn
            for i in range(rm):
                for j in range(rn):
                    acc[i, j] = T(0)
            load_a(va, a, s, m0, 0, M, K, t)
            load_b(vb, b, s, n0, 0, N, K, t)
            store_a(As, U(0), va, t)
            store_b(Bs, U(0), vb, t)
            cuda.syncthreads()
            cur = U(0)
            for k0 in range(0, K, tk):
                more = k0 + tk < K
                if more:  # the next tiles' global loads are in flight during the products
                    load_a(va, a, s, m0, k0 + tk, M, K, t)
                    load_b(vb, b, s, n0, k0 + tk, N, K, t)
                # unsigned shared offsets stepped by a constant: no multiply and no
                # negative-index wraparound in the loop, constant displacements per load
                oa, ob = W(cur * U(sa) + ty), W(cur * U(sb) + tx)
                for kk in range(tk):
                    for i in range(rm):
                        ar[i] = As[oa + W(i * by)]
                    for j in range(rn):
                        br[j] = Bs[ob + W(j * bx)]
                    for i in range(rm):
                        for j in range(rn):
                            acc[i, j] += ar[i] * br[j]
                    oa += W(tm + 1)
                    ob += W(tn + 1)
                cur = U(1) - cur
                if more:  # into the other buffer: its last readers passed the barrier below
                    store_a(As, cur * U(sa), va, t)
                    store_b(Bs, cur * U(sb), vb, t)
                cuda.syncthreads()
            for i in range(rm):
                m = m0 + ty + i * by
                for j in range(rn):
                    n = n0 + tx + j * bx
                    if m < M and n < N:
                        c[numba.uint64(s), numba.uint64(m), numba.uint64(n)] = acc[i, j]
    return kernel


def _stager(T, trans, tw, tk, nt, per, is_a):
    """(load, store) for this thread's share of one (tw rows x tk) tile of x: load(vals, x,
    s, r0, k0, R, K, t) into registers, reading global memory along its contiguous axis
    (out-of-range entries: 0); store(S, base, vals, t) to shared offsets base + k * (tw + 1)
    + row (32-bit arithmetic)."""
    along_k = trans != is_a  # a (M, K) and b (N, K) (tb) are read along k
    U, W = numba.uint32, numba.uint64

    @cuda.jit(device=True, inline=True)
    def place(e):
        if along_k:
            return e // tk, e % tk
        return e % tw, e // tw

    @cuda.jit(device=True, inline=True)
    def load(vals, x, s, r0, k0, R, K, t):
        for u in range(per):
            e = t + u * nt
            r, kk = place(e)
            v = T(0)
            if e < tw * tk and r0 + r < R and k0 + kk < K:
                # (unsigned indices: no negative-index wraparound code)
                i, j = W(r0 + r), W(k0 + kk)
                v = x[W(s), i, j] if is_a != trans else x[W(s), j, i]
            vals[u] = v

    @cuda.jit(device=True, inline=True)
    def store(S, base, vals, t):
        for u in range(per):
            e = U(t) + U(u * nt)
            r, kk = place(e)
            if e < U(tw * tk):
                S[base + kk * U(tw + 1) + r] = vals[u]
    return load, store


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


# ---- the linear layer: the product, then the bias as before (one launch each) -----------

def linear_cuda(x, w, b):
    y = matmul_nt_cuda(x, w)
    if b is not None:
        y += b
    return y


def sum_rows_cuda(x):
    return namespace().sum(x, axis=0)  # the namespace's column sum (queued: deferred.py)


register("linear", "cuda", linear_cuda)
register("sum_rows", "cuda", sum_rows_cuda)
register("matmul", "cuda", matmul_cuda)
register("matmul_nt", "cuda", matmul_nt_cuda)
register("matmul_tn", "cuda", matmul_tn_cuda)

"""Tiled (flash-style) attention on the cuda device: forward and backward, with or without an
additive mask (broadcast to (B, H, Tq, Tk), read in place), causal or not; q, k, v, o and
their gradients are (B, H, T, D) views of any strides; no (Tq, Tk) matrix is ever stored.

Forward: a block owns TILE query rows of one (b, h). Their q rows and output accumulators
live in shared memory; keys go by in chunks of CHUNK rows (K and V staged in shared memory
once per tile, not once per row). Per chunk: the threads score every (row, key) pair of the
tile from shared memory; one thread per row updates its online softmax (running max m and
sum l, turning the scores into p in place and storing the rescale factor); then the threads,
one per (row, feature) pair, rescale and add p.V. Four barriers per chunk, no block
reductions. At the end o = acc / l and lse = m + log(l) (a row that sees no key: o = 0,
lse = -inf).

Backward, two launches, no atomics, so deterministic (every output element has one owner
that sums in a fixed order), both reusing the forward's lse (p = exp(s - lse), no max or
sum recomputed):
- per query tile: delta_i = do_i . o_i (saved for the second launch), then per key chunk
  ds_ij = p_ij (do_i . v_j - delta_i) into shared memory and dq_i += scale sum_j ds_ij k_j,
  accumulated in shared memory and written once;
- per key tile: per query chunk (q, do, lse and delta staged in shared memory) p_ij and
  ds_ij, then dv_j += sum_i p_ij do_i and dk_j += scale sum_i ds_ij q_i, accumulated in
  shared memory and written once.
Causal: query i sees key j iff j <= i + Tk - Tq; chunks wholly past a tile's diagonal are
never loaded (forward and dq stop early, dk/dv start at the tile's first viewer).

Shared arrays read along a chunk's rows by consecutive threads get one padding column, so
a warp's 32 reads fall in 32 banks.
"""

import math

import numpy as np
from numba import cuda

from ops.cuda import launch
from ops.cuda.launch import NUMBA_TYPES, factory

# Rows a block owns (query rows forward and for dq, key rows for dk/dv) and rows per streamed
# chunk; the simulator's are small so that tests cross tile and chunk boundaries.
TILE = 2 if launch.SIMULATOR else 16
CHUNK = 2 if launch.SIMULATOR else 32
# Static shared memory a block may take (the hardware's limit is 48 KiB): wider heads get
# smaller tiles and chunks (shape()), the widest the per-row kernels (ops/cuda/attention.py).
SHARED_BYTES = 46 * 1024


def shared_bytes(dtype, D, Dv, tile=None, chunk=None):
    """The most shared memory (bytes) one of the three kernels takes for these head sizes."""
    bq, c = tile or TILE, chunk or CHUNK
    fwd = bq * (D + Dv) + c * (D + Dv + 2) + bq * c + 3 * bq
    dq = bq * (2 * D + Dv) + c * (D + Dv + 2) + bq * c + 2 * bq
    dkv = 2 * bq * (D + Dv) + c * (D + Dv + 2) + 2 * bq * c + 2 * c
    return max(fwd, dq, dkv) * np.dtype(dtype).itemsize


def shape(dtype, D, Dv):
    """(tile, chunk) for these head sizes: TILE and CHUNK, halved (the chunk first) until the
    three kernels fit SHARED_BYTES; None when nothing fits (the per-row kernels run)."""
    tile, chunk = TILE, CHUNK
    while D > 0 and Dv > 0 and tile >= 1 and chunk >= 1:
        if shared_bytes(dtype, D, Dv, tile, chunk) <= SHARED_BYTES:
            return tile, chunk
        tile, chunk = (tile, chunk // 2) if chunk > tile else (tile // 2, chunk)
    return None


@cuda.jit(device=True, inline=True)
def visible(i, j, Tq, Tk, causal):
    """Whether query row i sees key j (the contract's causal rule, queries last); the
    block-per-row kernels of ops/cuda/attention.py use it too."""
    return j < Tk and (not causal or j <= i + Tk - Tq)


@cuda.jit(device=True, inline=True)
def _where(tile, H, tiles, bq):
    """(b, h, first row) of tile number `tile`."""
    return tile // (H * tiles), (tile // tiles) % H, (tile % tiles) * bq


@factory
def flash_forward_kernel(dtype, D, Dv, bq, C):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    D1, Dv1 = D + 1, Dv + 1

    @launch.jit
    def kernel(o, lse, q, k, v, causal, scale, mask, mo, ms, has_mask):
        Qs = cuda.shared.array((bq, D), T)
        Os = cuda.shared.array((bq, Dv), T)
        Ks = cuda.shared.array((C, D1), T)
        Vs = cuda.shared.array((C, Dv1), T)
        S = cuda.shared.array((bq, C), T)
        M = cuda.shared.array(bq, T)
        L = cuda.shared.array(bq, T)
        A = cuda.shared.array(bq, T)
        t = cuda.threadIdx.x
        B, H, Tq, _ = o.shape
        Tk = k.shape[2]
        tiles = (Tq + bq - 1) // bq
        for tile in range(cuda.blockIdx.x, B * H * tiles, cuda.gridDim.x):
            b, h, i0 = _where(tile, H, tiles, bq)
            rows = min(bq, Tq - i0)
            for e in range(t, rows * D, nt):
                Qs[e // D, e % D] = q[b, h, i0 + e // D, e % D]
            for e in range(t, rows * Dv, nt):
                Os[e // Dv, e % Dv] = T(0)
            for r in range(t, rows, nt):
                M[r], L[r] = T(-math.inf), T(0)
            # causal: chunks past the diagonal of the tile's last row are never loaded
            hi = Tk if not causal else max(0, min(Tk, i0 + rows + Tk - Tq))
            for j0 in range(0, hi, C):
                n = min(C, Tk - j0)
                cuda.syncthreads()  # the previous chunk's (or tile's) readers are done
                for e in range(t, n * D, nt):
                    Ks[e // D, e % D] = k[b, h, j0 + e // D, e % D]
                for e in range(t, n * Dv, nt):
                    Vs[e // Dv, e % Dv] = v[b, h, j0 + e // Dv, e % Dv]
                cuda.syncthreads()
                for e in range(t, rows * n, nt):  # scores of every (row, key) pair
                    r, c = e // n, e % n
                    i, j = i0 + r, j0 + c
                    s = T(-math.inf)
                    if visible(i, j, Tq, Tk, causal):
                        s = T(0)
                        for d in range(D):
                            s += Qs[r, d] * Ks[c, d]
                        s *= scale
                        if has_mask:
                            s += mask[mo + b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]]
                    S[r, c] = s
                cuda.syncthreads()
                for r in range(t, rows, nt):  # online softmax, a thread per row
                    m = M[r]
                    m_new = m
                    for c in range(n):
                        m_new = max(m_new, S[r, c])
                    alpha, total = T(1), T(0)
                    if m_new != T(-math.inf):  # (else nothing visible yet: p = 0)
                        alpha = math.exp(m - m_new)  # exp(-inf) = 0 on the first visible
                    for c in range(n):
                        s = S[r, c]
                        p = math.exp(s - m_new) if s != T(-math.inf) else T(0)
                        S[r, c] = p
                        total += p
                    L[r] = L[r] * alpha + total
                    M[r] = m_new
                    A[r] = alpha
                cuda.syncthreads()
                for e in range(t, rows * Dv, nt):  # rescale, then add p.V
                    r, d = e // Dv, e % Dv
                    acc = Os[r, d] * A[r]
                    for c in range(n):
                        acc += S[r, c] * Vs[c, d]
                    Os[r, d] = acc
            cuda.syncthreads()
            # l == 0: no key visible; a NaN l (a NaN score) gives NaN, as numpy does
            for e in range(t, rows * Dv, nt):
                r, d = e // Dv, e % Dv
                o[b, h, i0 + r, d] = Os[r, d] / L[r] if L[r] != T(0) else T(0)
            for r in range(t, rows, nt):
                lse[b, h, i0 + r] = M[r] + math.log(L[r]) if L[r] != T(0) else T(-math.inf)
            cuda.syncthreads()  # before the next tile overwrites Qs, Os, M, L
    return kernel


@factory
def flash_dq_kernel(dtype, D, Dv, bq, C):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    D1, Dv1 = D + 1, Dv + 1

    @launch.jit
    def kernel(dq, delta, do, q, k, v, o, lse, causal, scale, mask, mo, ms, has_mask):
        Qs = cuda.shared.array((bq, D), T)
        dOs = cuda.shared.array((bq, Dv), T)
        dQs = cuda.shared.array((bq, D), T)
        Ks = cuda.shared.array((C, D1), T)
        Vs = cuda.shared.array((C, Dv1), T)
        dS = cuda.shared.array((bq, C), T)
        Ls = cuda.shared.array(bq, T)
        Dl = cuda.shared.array(bq, T)
        t = cuda.threadIdx.x
        B, H, Tq, _ = q.shape
        Tk = k.shape[2]
        tiles = (Tq + bq - 1) // bq
        for tile in range(cuda.blockIdx.x, B * H * tiles, cuda.gridDim.x):
            b, h, i0 = _where(tile, H, tiles, bq)
            rows = min(bq, Tq - i0)
            for e in range(t, rows * D, nt):
                Qs[e // D, e % D] = q[b, h, i0 + e // D, e % D]
                dQs[e // D, e % D] = T(0)
            for e in range(t, rows * Dv, nt):
                dOs[e // Dv, e % Dv] = do[b, h, i0 + e // Dv, e % Dv]
            for r in range(t, rows, nt):  # delta_i = do_i . o_i, a thread per row
                s = T(0)
                for d in range(Dv):
                    s += do[b, h, i0 + r, d] * o[b, h, i0 + r, d]
                Dl[r] = s
                delta[b, h, i0 + r] = s
                Ls[r] = lse[b, h, i0 + r]
            hi = Tk if not causal else max(0, min(Tk, i0 + rows + Tk - Tq))
            for j0 in range(0, hi, C):
                n = min(C, Tk - j0)
                cuda.syncthreads()
                for e in range(t, n * D, nt):
                    Ks[e // D, e % D] = k[b, h, j0 + e // D, e % D]
                for e in range(t, n * Dv, nt):
                    Vs[e // Dv, e % Dv] = v[b, h, j0 + e // Dv, e % Dv]
                cuda.syncthreads()
                for e in range(t, rows * n, nt):  # ds of every (row, key) pair
                    r, c = e // n, e % n
                    i, j = i0 + r, j0 + c
                    g = T(0)
                    if visible(i, j, Tq, Tk, causal) and Ls[r] != T(-math.inf):
                        s = T(0)
                        for d in range(D):
                            s += Qs[r, d] * Ks[c, d]
                        s *= scale
                        if has_mask:
                            s += mask[mo + b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]]
                        if s != T(-math.inf):
                            dp = T(0)
                            for d in range(Dv):
                                dp += dOs[r, d] * Vs[c, d]
                            g = math.exp(s - Ls[r]) * (dp - Dl[r])
                    dS[r, c] = g
                cuda.syncthreads()
                for e in range(t, rows * D, nt):
                    r, d = e // D, e % D
                    acc = T(0)
                    for c in range(n):
                        acc += dS[r, c] * Ks[c, d]
                    dQs[r, d] += scale * acc
            cuda.syncthreads()
            for e in range(t, rows * D, nt):
                dq[b, h, i0 + e // D, e % D] = dQs[e // D, e % D]
            cuda.syncthreads()
    return kernel


@factory
def flash_dkv_kernel(dtype, D, Dv, bk, C):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    D1, Dv1 = D + 1, Dv + 1

    @launch.jit
    def kernel(dk, dv, delta, do, q, k, v, lse, causal, scale, mask, mo, ms, has_mask):
        Kt = cuda.shared.array((bk, D), T)
        Vt = cuda.shared.array((bk, Dv), T)
        dKs = cuda.shared.array((bk, D), T)
        dVs = cuda.shared.array((bk, Dv), T)
        Qs = cuda.shared.array((C, D1), T)
        dOs = cuda.shared.array((C, Dv1), T)
        P = cuda.shared.array((bk, C), T)
        dS = cuda.shared.array((bk, C), T)
        Ls = cuda.shared.array(C, T)
        Dl = cuda.shared.array(C, T)
        t = cuda.threadIdx.x
        B, H, Tk, _ = k.shape
        Tq = q.shape[2]
        tiles = (Tk + bk - 1) // bk
        for tile in range(cuda.blockIdx.x, B * H * tiles, cuda.gridDim.x):
            b, h, j0 = _where(tile, H, tiles, bk)
            rows = min(bk, Tk - j0)
            for e in range(t, rows * D, nt):
                Kt[e // D, e % D] = k[b, h, j0 + e // D, e % D]
                dKs[e // D, e % D] = T(0)
            for e in range(t, rows * Dv, nt):
                Vt[e // Dv, e % Dv] = v[b, h, j0 + e // Dv, e % Dv]
                dVs[e // Dv, e % Dv] = T(0)
            # causal: query chunks before the first viewer of the tile's first key are skipped
            first = max(0, j0 - Tk + Tq) if causal else 0
            for i0 in range(first, Tq, C):
                n = min(C, Tq - i0)
                cuda.syncthreads()
                for e in range(t, n * D, nt):
                    Qs[e // D, e % D] = q[b, h, i0 + e // D, e % D]
                for e in range(t, n * Dv, nt):
                    dOs[e // Dv, e % Dv] = do[b, h, i0 + e // Dv, e % Dv]
                for c in range(t, n, nt):
                    Ls[c], Dl[c] = lse[b, h, i0 + c], delta[b, h, i0 + c]
                cuda.syncthreads()
                for e in range(t, rows * n, nt):  # p and ds of every (key, query) pair
                    r, c = e // n, e % n
                    i, j = i0 + c, j0 + r
                    p, g = T(0), T(0)
                    if visible(i, j, Tq, Tk, causal) and Ls[c] != T(-math.inf):
                        s = T(0)
                        for d in range(D):
                            s += Qs[c, d] * Kt[r, d]
                        s *= scale
                        if has_mask:
                            s += mask[mo + b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]]
                        if s != T(-math.inf):
                            p = math.exp(s - Ls[c])
                            dp = T(0)
                            for d in range(Dv):
                                dp += dOs[c, d] * Vt[r, d]
                            g = p * (dp - Dl[c])
                    P[r, c], dS[r, c] = p, g
                cuda.syncthreads()
                for e in range(t, rows * Dv, nt):
                    r, d = e // Dv, e % Dv
                    acc = T(0)
                    for c in range(n):
                        acc += P[r, c] * dOs[c, d]
                    dVs[r, d] += acc
                for e in range(t, rows * D, nt):
                    r, d = e // D, e % D
                    acc = T(0)
                    for c in range(n):
                        acc += dS[r, c] * Qs[c, d]
                    dKs[r, d] += scale * acc
            cuda.syncthreads()
            for e in range(t, rows * D, nt):
                dk[b, h, j0 + e // D, e % D] = dKs[e // D, e % D]
            for e in range(t, rows * Dv, nt):
                dv[b, h, j0 + e // Dv, e % Dv] = dVs[e // Dv, e % Dv]
            cuda.syncthreads()
    return kernel

"""Fused attention on the cuda device, a block per row: the fallback for heads too wide for
the tiled kernels' shared memory (ops/cuda/flash.py). No (Tq, Tk) score matrix is ever
stored; an optional additive mask (broadcastable to (B, H, Tq, Tk)) is read in place.

Every array is a (B, H, T, D) view of any strides, read and written in place: the fused
self-attention passes q, k, v as views of the projection (B, T, 3C) and writes y (B, T, C)
with the heads side by side (ops/cuda/kernels.py), so no head is ever copied. Causal: key
chunks wholly above the diagonal are skipped (not loaded and masked).

Forward: one block per query row (b, h, i). The keys go by in chunks of ROW_THREADS: thread t
scores key j0 + t (a dot product over D), the block takes the chunk's max and sum (shared
memory, online softmax: running max m and sum l, earlier output rescaled by exp(m_old -
m_new)), and the threads, now one per output feature d, add the chunk's p_j v[j, d] to o[d]
(kept in the output array itself: no per-thread arrays, no register spills). Finally o /= l
and lse = m + log(l). A row with no visible key gives o = 0 and lse = -inf.

Backward (two launches, no atomics, deterministic): one block per query row computes
delta_i = do_i . o_i and dq_i = scale * sum_j p_ij (do_i . v_j - delta_i) k_j; then one block
per key row computes dv_j = sum_i p_ij do_i and dk_j = scale * sum_i ds_ij q_i, recomputing
p_ij = exp(s_ij - lse_i) chunk by chunk. Causal: query i sees key j iff j <= i + Tk - Tq.
"""

import math

from numba import cuda

from ops.cuda import launch
from ops.cuda.launch import NUMBA_TYPES, factory
from ops.cuda.rows import block_reduce


@cuda.jit(device=True, inline=True)
def _visible(i, j, Tq, Tk, causal):
    return j < Tk and (not causal or j <= i + Tk - Tq)


@factory
def score_fn(dtype):
    """score(q, k, b, h, i, j, ...) = scale * q[b, h, i] . k[b, h, j] + mask[b, h, i, j]."""
    T = NUMBA_TYPES[dtype]

    @cuda.jit(device=True, inline=True)
    def score(q, k, b, h, i, j, scale, mask, mo, ms, has_mask):
        s = T(0)
        for d in range(q.shape[3]):
            s += q[b, h, i, d] * k[b, h, j, d]
        s *= scale
        if has_mask:
            s += mask[mo + b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]]
        return s
    return score


@factory
def forward_kernel(dtype):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rmax, rsum = block_reduce("max", dtype), block_reduce("sum", dtype)
    score = score_fn(dtype)

    @launch.jit
    def kernel(o, lse, q, k, v, causal, scale, mask, mo, ms, has_mask):
        part = cuda.shared.array(nt, T)
        p = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        B, H, Tq, Dv = o.shape
        Tk = k.shape[2]
        for row in range(cuda.blockIdx.x, B * H * Tq, cuda.gridDim.x):
            b, h, i = row // (H * Tq), (row // Tq) % H, row % Tq
            for d in range(t, Dv, nt):
                o[b, h, i, d] = T(0)
            m, l = T(-math.inf), T(0)
            # causal: key chunks wholly above the diagonal are skipped, not masked
            for j0 in range(0, Tk if not causal else min(Tk, i + Tk - Tq + 1), nt):
                j = j0 + t
                s = T(-math.inf)
                if _visible(i, j, Tq, Tk, causal):
                    s = score(q, k, b, h, i, j, scale, mask, mo, ms, has_mask)
                m_new = rmax(part, t, s if s > m or math.isnan(s) else m)  # (NaN kept)
                if m_new == T(-math.inf):  # nothing visible yet (uniform across the block)
                    continue
                alpha = math.exp(m - m_new)  # exp(-inf) = 0 on the first visible chunk
                p[t] = math.exp(s - m_new) if s != T(-math.inf) else T(0)
                l = l * alpha + rsum(part, t, p[t])  # rsum syncs: p is complete after it
                m = m_new
                n = min(nt, Tk - j0)
                for d in range(t, Dv, nt):
                    acc = o[b, h, i, d] * alpha
                    for c in range(n):
                        acc += p[c] * v[b, h, j0 + c, d]
                    o[b, h, i, d] = acc
                cuda.syncthreads()
            inv = T(1) / l if l != T(0) else T(0)  # (a NaN l: NaN, as numpy)
            for d in range(t, Dv, nt):
                o[b, h, i, d] *= inv
            if t == 0:
                lse[b, h, i] = m + math.log(l) if l != T(0) else T(-math.inf)
    return kernel


@factory
def dq_kernel(dtype):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    rsum = block_reduce("sum", dtype)
    score = score_fn(dtype)

    @launch.jit
    def kernel(dq, delta, do, q, k, v, o, lse, causal, scale, mask, mo, ms, has_mask):
        part = cuda.shared.array(nt, T)
        ds = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        B, H, Tq, D = q.shape
        Tk, Dv = k.shape[2], v.shape[3]
        for row in range(cuda.blockIdx.x, B * H * Tq, cuda.gridDim.x):
            b, h, i = row // (H * Tq), (row // Tq) % H, row % Tq
            s = T(0)
            for d in range(t, Dv, nt):
                s += do[b, h, i, d] * o[b, h, i, d]
            dlt = rsum(part, t, s)
            if t == 0:
                delta[b, h, i] = dlt
            for d in range(t, D, nt):
                dq[b, h, i, d] = T(0)
            m = lse[b, h, i]
            if m == T(-math.inf):
                continue  # fully masked row: zero gradients
            # causal: key chunks wholly above the diagonal are skipped, not masked
            for j0 in range(0, Tk if not causal else min(Tk, i + Tk - Tq + 1), nt):
                j = j0 + t
                g = T(0)
                if _visible(i, j, Tq, Tk, causal):
                    sc = score(q, k, b, h, i, j, scale, mask, mo, ms, has_mask)
                    if sc != T(-math.inf):
                        dp = T(0)
                        for d in range(Dv):
                            dp += do[b, h, i, d] * v[b, h, j, d]
                        g = math.exp(sc - m) * (dp - dlt)
                ds[t] = g
                cuda.syncthreads()
                n = min(nt, Tk - j0)
                for d in range(t, D, nt):
                    acc = T(0)
                    for c in range(n):
                        acc += ds[c] * k[b, h, j0 + c, d]
                    dq[b, h, i, d] += scale * acc
                cuda.syncthreads()
    return kernel


@factory
def dkv_kernel(dtype):
    T = NUMBA_TYPES[dtype]
    nt = launch.ROW_THREADS
    score = score_fn(dtype)

    @launch.jit
    def kernel(dk, dv, delta, do, q, k, v, lse, causal, scale, mask, mo, ms, has_mask):
        pp = cuda.shared.array(nt, T)
        ds = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        B, H, Tk, D = k.shape
        Tq, Dv = q.shape[2], v.shape[3]
        for row in range(cuda.blockIdx.x, B * H * Tk, cuda.gridDim.x):
            b, h, j = row // (H * Tk), (row // Tk) % H, row % Tk
            for d in range(t, D, nt):
                dk[b, h, j, d] = T(0)
            for d in range(t, Dv, nt):
                dv[b, h, j, d] = T(0)
            # causal: query chunks wholly before this key's first viewer are skipped
            first = max(0, j - Tk + Tq) if causal else 0
            for i0 in range(first - first % nt, Tq, nt):
                i = i0 + t
                p, g = T(0), T(0)
                if i < Tq and _visible(i, j, Tq, Tk, causal) and lse[b, h, i] != T(-math.inf):
                    sc = score(q, k, b, h, i, j, scale, mask, mo, ms, has_mask)
                    if sc != T(-math.inf):
                        p = math.exp(sc - lse[b, h, i])
                        dp = T(0)
                        for d in range(Dv):
                            dp += do[b, h, i, d] * v[b, h, j, d]
                        g = p * (dp - delta[b, h, i])
                pp[t] = p
                ds[t] = g
                cuda.syncthreads()
                n = min(nt, Tq - i0)
                for d in range(t, Dv, nt):
                    acc = T(0)
                    for c in range(n):
                        acc += pp[c] * do[b, h, i0 + c, d]
                    dv[b, h, j, d] += acc
                for d in range(t, D, nt):
                    acc = T(0)
                    for c in range(n):
                        acc += ds[c] * q[b, h, i0 + c, d]
                    dk[b, h, j, d] += scale * acc
                cuda.syncthreads()
    return kernel

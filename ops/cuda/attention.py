"""Attention on the cuda device: the launchers of attention, attention_backward and the fused
self-attention (attention_qkv), registered at the bottom; they run the tiled kernels of
ops/cuda/attention_flash.py when the head sizes fit their shared memory, else the kernels
here, a block per row (heads too wide for the tiles). No (Tq, Tk) score matrix is ever
stored; an optional additive mask (broadcastable to (B, H, Tq, Tk)) is read in place.

Every array is a (B, H, T, D) view of any strides, read and written in place: the fused
self-attention passes q, k, v as views of the projection (B, T, 3C) and writes y (B, T, C)
with the heads side by side (attention_qkv_cuda below), so no head is ever copied. Causal: key
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

from ops.cuda import attention_flash as flash
from ops.cuda import launch
from ops.cuda import namespace as ns
from ops.cuda.attention_flash import visible
from ops.cuda.cudaarray import check_arrays, empty, scalar
from ops.cuda.launch import NUMBA_TYPES, factory, row_grid
from ops.cuda.reduce import block_reduce
from ops.registry import register


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
    rmax, rsum = block_reduce("max", dtype, nt), block_reduce("sum", dtype, nt)
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
                if visible(i, j, Tq, Tk, causal):
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
    rsum = block_reduce("sum", dtype, nt)
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
                if visible(i, j, Tq, Tk, causal):
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
                if i < Tq and visible(i, j, Tq, Tk, causal) and lse[b, h, i] != T(-math.inf):
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


# ---- the launchers: the tiled kernels when the head fits, else a block per row ---------

def _mask(mask, q, Tk):
    """(the (B, H, Tq, Tk) broadcast view or None, its buffer, offset, strides, present);
    the view is returned to be held alive until the launch."""
    if mask is None:
        none = empty((1,), q.dtype)
        return none, none.flat(), 0, (0, 0, 0, 0), False
    check_arrays("attention", mask)
    B, H, Tq, _ = q.shape
    m = ns.broadcast_to(ns.astype(mask, q.dtype, copy=False), (B, H, Tq, Tk))
    return m, m.base, m.offset, m.strides, True


def _attention(o, lse, q, k, v, causal, scale, mask):
    """Runs the forward kernel: q, k, v, o (B, H, T, D) views of any strides, read and
    written in place; lse (B, H, Tq) contiguous. The tiled kernels when the head sizes fit
    their shared memory, else a block per query row."""
    B, H, Tq, D = q.shape
    Dv = v.shape[3]
    if not (o.size or lse.size):
        return
    _held, mb, mo, ms, has = _mask(mask, q, k.shape[2])
    args = (o.strided(), lse.dev(), q.strided(), k.strided(), v.strided(), bool(causal),
            scalar(q.dtype, scale), mb, mo, ms, has)
    tc = flash.shape(q.dtype, D, Dv)
    if tc:
        flash.flash_forward_kernel(q.dtype.name, D, Dv, *tc)[
            row_grid(B * H * -(-Tq // tc[0]))](*args)
    else:
        forward_kernel(q.dtype.name)[row_grid(B * H * Tq)](*args)


def _attention_backward(dq, dk, dv, do, q, k, v, o, lse, causal, scale, mask):
    """Runs the two backward kernels: every array but lse a (B, H, T, D) view of any
    strides; dq, dk, dv written in place."""
    B, H, Tq, _ = q.shape
    Tk = k.shape[2]
    lse = ns.contiguous(lse)
    delta = empty((B, H, Tq), q.dtype)
    _held, mb, mo, ms, has = _mask(mask, q, Tk)
    s = scalar(q.dtype, scale)
    views = [a.strided() for a in (do, q, k, v)]
    D, Dv = q.shape[3], v.shape[3]
    tc = flash.shape(q.dtype, D, Dv)
    if tc:
        key, t = (q.dtype.name, D, Dv) + tc, tc[0]
        dq_k, dkv_k = flash.flash_dq_kernel(*key), flash.flash_dkv_kernel(*key)
        dq_grid, dkv_grid = row_grid(B * H * -(-Tq // t)), row_grid(B * H * -(-Tk // t))
    else:
        dq_k, dkv_k = dq_kernel(q.dtype.name), dkv_kernel(q.dtype.name)
        dq_grid, dkv_grid = row_grid(B * H * Tq), row_grid(B * H * Tk)
    if q.size or do.size:
        dq_k[dq_grid](dq.strided(), delta.dev(), *views, o.strided(), lse.dev(), bool(causal), s,
                      mb, mo, ms, has)
    if k.size or v.size:
        dkv_k[dkv_grid](dk.strided(), dv.strided(), delta.dev(), *views, lse.dev(), bool(causal),
                        s, mb, mo, ms, has)


def attention_cuda(q, k, v, causal, scale, mask=None):
    check_arrays("attention", q, k, v)
    B, H, Tq, D = q.shape
    if k.shape[:2] != (B, H) or k.shape[3] != D or v.shape[:3] != k.shape[:3]:
        raise ValueError(f"attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit")
    o, lse = empty((B, H, Tq, v.shape[3]), q.dtype), empty((B, H, Tq), q.dtype)
    _attention(o, lse, q, k, v, causal, scale, mask)
    return o, lse


def attention_backward_cuda(do, q, k, v, o, lse, causal, scale, mask=None):
    check_arrays("attention_backward", do, q, k, v, o, lse)
    dq, dk, dv = empty(q.shape, q.dtype), empty(k.shape, q.dtype), empty(v.shape, q.dtype)
    _attention_backward(dq, dk, dv, do, q, k, v, o, lse, causal, scale, mask)
    return dq, dk, dv


def _split_heads(x, n_head):
    """(B, T, C) view -> (B, T, H, D) view (the last axis must be contiguous)."""
    B, T, C = x.shape
    return x.view((B, T, n_head, C // n_head), x.strides[:2] + (C // n_head * x.strides[2],
                                                                x.strides[2]))


def _heads_of(x, n_head):
    """(B, T, C) -> (B, H, T, D) view, no copy."""
    return ns.permute_dims(_split_heads(x, n_head), (0, 2, 1, 3))


def attention_qkv_cuda(qkv, n_head, causal, scale):
    """Self-attention reading q, k, v in place from qkv (B, T, 3C) and writing y (B, T, C)
    with the heads side by side: one launch, no head copies."""
    check_arrays("attention_qkv", qkv)
    B, T, C3 = qkv.shape
    c = C3 // 3
    q, k, v = (_heads_of(qkv[:, :, i * c:(i + 1) * c], n_head) for i in range(3))
    y, lse = empty((B, T, c), qkv.dtype), empty((B, n_head, T), qkv.dtype)
    _attention(_heads_of(y, n_head), lse, q, k, v, causal, scale, None)
    return y, lse


def attention_qkv_backward_cuda(dy, qkv, y, lse, n_head, causal, scale):
    """d qkv (B, T, 3C): dq, dk, dv written in place side by side by the two backward
    launches (every element of it is written)."""
    check_arrays("attention_qkv_backward", dy, qkv, y, lse)
    c = qkv.shape[2] // 3
    dqkv = empty(qkv.shape, qkv.dtype)
    q, k, v, dq, dk, dv = (_heads_of(a[:, :, i * c:(i + 1) * c], n_head)
                           for a in (qkv, dqkv) for i in range(3))
    _attention_backward(dq, dk, dv, _heads_of(dy, n_head), q, k, v, _heads_of(y, n_head), lse,
                        causal, scale, None)
    return dqkv


register("attention", "cuda", attention_cuda)
register("attention_backward", "cuda", attention_backward_cuda)
register("attention_qkv", "cuda", attention_qkv_cuda)
register("attention_qkv_backward", "cuda", attention_qkv_backward_cuda)

"""Fused flash-style attention kernels for the CPU (Numba), forward and backward.

Shapes inside this file are flattened over batch and heads: q (BH, Tq, D), k (BH, Tk, D),
v (BH, Tk, Dv). Scores are computed one (BLOCK_Q, BLOCK_K) tile at a time and never stored
whole; the forward keeps a running max m, running sum l and a rescaled accumulator per row
(online softmax) and saves only lse; the backward recomputes p = exp(s - lse) per tile.
Inner products run as rank-1 updates along a contiguous axis so LLVM vectorises them: k and
v are also passed transposed, kt (BH, D, Tk) and vt (BH, Dv, Tk).
Threads: the forward's prange covers (head, query tile) pairs, each owning its o and lse
rows; the backward's prange covers heads, each owning all of its dq, dk, dv rows. Every
output element has one writer, so results are deterministic for a fixed thread count.
"""

import math

import numpy as np
from numba import prange, types
from numba.extending import overload

from ops.fastexp import exp_f32
from ops.numba_config import FASTMATH, jit

# Tile sizes, read by the wrappers in ops/attention.py at call time (tests shrink them).
BLOCK_Q = 64
BLOCK_K = 64


def exp_typed(x):
    """exp(x) keeping x's precision: the vectorisable exp_f32 on float32, math.exp else."""
    return math.exp(x)


@overload(exp_typed, jit_options={"fastmath": FASTMATH})
def _exp_typed_overload(x):
    if x == types.float32:
        return lambda x: exp_f32(x)
    return lambda x: math.exp(x)


@jit(inline="always")
def _scores_tile(qs, kt, s, i0, ni, j0, nj):
    """s[i, j] = qs[i0 + i] . kt[:, j0 + j] for the (ni, nj) tile: rank-1 updates over D."""
    zero = s.dtype.type(0)
    for i in range(ni):
        for j in range(nj):
            s[i, j] = zero
        for d in range(qs.shape[1]):
            a = qs[i0 + i, d]
            for j in range(nj):
                s[i, j] += a * kt[d, j0 + j]


@jit(inline="always")
def _hide_future(s, i0, ni, j0, nj, off):
    """Causal: set s[i, j] = -inf where key j0 + j lies after query i0 + i (j > i + off)."""
    ninf = s.dtype.type(-np.inf)
    for i in range(ni):
        for j in range(max(i0 + i + off + 1 - j0, 0), nj):
            s[i, j] = ninf


@jit(inline="always")
def _online_softmax_row(srow, nj, v, j0, m, l, acc, i):
    """Fold one row of scores (nj keys from j0) into row i's running m, l and acc (Dv,)."""
    mx = m[i]
    for j in range(nj):
        mx = max(mx, srow[j])
    if mx == srow.dtype.type(-np.inf):
        return                                  # nothing visible in this row yet
    alpha = exp_typed(m[i] - mx)                # 0 on the first visible tile (m = -inf)
    tot = srow.dtype.type(0)
    for j in range(nj):
        p = exp_typed(srow[j] - mx)
        srow[j] = p
        tot += p
    l[i] = l[i] * alpha + tot
    m[i] = mx
    for e in range(acc.shape[1]):
        acc[i, e] *= alpha
    for j in range(nj):
        p = srow[j]
        for e in range(acc.shape[1]):
            acc[i, e] += p * v[j0 + j, e]


@jit(inline="always")
def _finish_rows(acc, m, l, o, lse, i0, ni):
    """o = acc / l and lse = m + log(l); rows that saw no key get o = 0 and lse = -inf."""
    zero = o.dtype.type(0)
    for i in range(ni):
        if l[i] == zero:
            lse[i0 + i] = o.dtype.type(-np.inf)
            for e in range(o.shape[1]):
                o[i0 + i, e] = zero
        else:
            inv = o.dtype.type(1) / l[i]
            lse[i0 + i] = m[i] + math.log(l[i])
            for e in range(o.shape[1]):
                o[i0 + i, e] = acc[i, e] * inv


@jit
def _forward_tile(q, kt, v, o, lse, i0, ni, causal, scale, bk):
    """Rows i0 .. i0+ni of one head: q (Tq, D), kt (D, Tk), v (Tk, Dv) -> o, lse rows."""
    tk = kt.shape[1]
    off = tk - q.shape[0]
    qs = q[i0:i0 + ni] * scale                       # (ni, D), scale folded in once
    s = np.empty((ni, bk), dtype=q.dtype)            # the only score storage: one tile
    acc = np.zeros((ni, v.shape[1]), dtype=q.dtype)
    m = np.full(ni, -np.inf, dtype=q.dtype)
    l = np.zeros(ni, dtype=q.dtype)
    # causal: keys after the last query's horizon, i0 + ni - 1 + off, are never visited
    j_end = min(tk, max(i0 + ni + off, 0)) if causal else tk
    for j0 in range(0, j_end, bk):
        nj = min(bk, j_end - j0)
        _scores_tile(qs, kt, s, 0, ni, j0, nj)
        if causal and j0 + nj - 1 > i0 + off:
            _hide_future(s, i0, ni, j0, nj, off)
        for i in range(ni):
            _online_softmax_row(s[i], nj, v, j0, m, l, acc, i)
    _finish_rows(acc, m, l, o, lse, i0, ni)


@jit(parallel=True)
def _forward_kernel(q, kt, v, o, lse, causal, scale, bq, bk):
    """Each prange iteration owns one (head, query tile): rows of o (BH, Tq, Dv), lse."""
    nbh, tq = q.shape[0], q.shape[1]
    nqt = (tq + bq - 1) // bq
    for it in prange(nbh * nqt):
        bh = it // nqt
        i0 = (it % nqt) * bq
        _forward_tile(q[bh], kt[bh], v[bh], o[bh], lse[bh], i0, min(bq, tq - i0),
                      causal, scale, bk)


@jit(inline="always")
def _probabilities_tile(s, lse, i0, ni, nj, j0, causal, off):
    """s <- p = exp(s - lse) in place; 0 for hidden (future) keys and for rows with no key."""
    zero = s.dtype.type(0)
    for i in range(ni):
        li = lse[i0 + i]
        # keys j0 + j > i0 + i + off are hidden; nothing is visible when lse = -inf
        stop = min(nj, max(i0 + i + off + 1 - j0, 0)) if causal else nj
        if li == s.dtype.type(-np.inf):
            stop = 0
        for j in range(stop):
            s[i, j] = exp_typed(s[i, j] - li)
        for j in range(stop, nj):
            s[i, j] = zero


@jit(inline="always")
def _grad_tile(p, dp, q_rows, k_rows, do_rows, drow, dq, dk, dv, i0, ni, j0, nj):
    """From p and dp = do v^T of one tile: dv += p^T do, ds = p (dp - D), dk += ds^T qs,
    dq += ds k. q_rows is q * scale; every inner loop runs along a contiguous row."""
    for i in range(ni):
        di = drow[i0 + i]
        for j in range(nj):
            pij = p[i, j]
            for e in range(dv.shape[1]):
                dv[j0 + j, e] += pij * do_rows[i0 + i, e]
            ds = pij * (dp[i, j] - di)
            for d in range(dk.shape[1]):
                dk[j0 + j, d] += ds * q_rows[i0 + i, d]
            for d in range(dq.shape[1]):
                dq[i0 + i, d] += ds * k_rows[j0 + j, d]


@jit
def _backward_head(q, k, kt, vt, o, do, lse, dq, dk, dv, causal, scale, bq, bk):
    """All gradients of one head. dq, dk, dv arrive zeroed; key tiles outer, query inner."""
    tq, tk = q.shape[0], k.shape[0]
    off = tk - tq
    qs = q * scale                                    # (Tq, D)
    drow = np.empty(tq, dtype=q.dtype)                # D_i = rowsum(do * o)
    for i in range(tq):
        acc = q.dtype.type(0)
        for e in range(do.shape[1]):
            acc += do[i, e] * o[i, e]
        drow[i] = acc
    s = np.empty((bq, bk), dtype=q.dtype)             # scores, then probabilities
    dp = np.empty((bq, bk), dtype=q.dtype)            # do v^T
    for j0 in range(0, tk, bk):
        nj = min(bk, tk - j0)
        # causal: queries before j0 - off see none of this tile's keys
        i_start = max(0, j0 - off) if causal else 0
        for i0 in range(i_start, tq, bq):
            ni = min(bq, tq - i0)
            _scores_tile(qs, kt, s, i0, ni, j0, nj)
            _probabilities_tile(s, lse, i0, ni, nj, j0, causal, off)
            _scores_tile(do, vt, dp, i0, ni, j0, nj)
            _grad_tile(s, dp, qs, k, do, drow, dq, dk, dv, i0, ni, j0, nj)
    for i in range(tq):
        for d in range(dq.shape[1]):
            dq[i, d] *= scale


@jit(parallel=True)
def _backward_kernel(q, k, kt, vt, o, do, lse, dq, dk, dv, causal, scale, bq, bk):
    """Each prange iteration owns one head: all of its dq, dk, dv rows (BH, T, D)."""
    for bh in prange(q.shape[0]):
        _backward_head(q[bh], k[bh], kt[bh], vt[bh], o[bh], do[bh], lse[bh],
                       dq[bh], dk[bh], dv[bh], causal, scale, bq, bk)


def _flat(x):
    """(B, H, T, D) -> contiguous (B*H, T, D)."""
    return np.ascontiguousarray(x).reshape(-1, x.shape[-2], x.shape[-1])


def _flat_t(x):
    """(B, H, T, D) -> contiguous (B*H, D, T): rows of k^T / v^T for rank-1 updates."""
    return np.ascontiguousarray(_flat(x).transpose(0, 2, 1))


def flash_forward(q, k, v, causal, scale, bq, bk):
    """o (B, H, Tq, Dv), lse (B, H, Tq) with (bq, bk) tiles; no mask."""
    b, h, tq, _ = q.shape
    o = np.empty((b * h, tq, v.shape[-1]), dtype=q.dtype)
    lse = np.empty((b * h, tq), dtype=q.dtype)
    _forward_kernel(_flat(q), _flat_t(k), _flat(v), o, lse, bool(causal),
                    q.dtype.type(scale), bq, bk)
    return o.reshape(b, h, tq, -1), lse.reshape(b, h, tq)


def flash_backward(do, q, k, v, o, lse, causal, scale, bq, bk):
    """(dq, dk, dv) shaped like (q, k, v) with (bq, bk) tiles; no mask."""
    q3, k3 = _flat(q), _flat(k)
    lse2 = np.ascontiguousarray(lse).reshape(q3.shape[:2])
    dq, dk = np.zeros_like(q3), np.zeros_like(k3)
    dv = np.zeros((k3.shape[0], v.shape[-2], v.shape[-1]), dtype=q.dtype)
    _backward_kernel(q3, k3, _flat_t(k), _flat_t(v), _flat(o), _flat(do), lse2,
                     dq, dk, dv, bool(causal), q.dtype.type(scale), bq, bk)
    return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape)

"""Fused flash-style attention kernels for the CPU (Numba), forward and backward."""

# Layout: the wrappers flatten batch and heads, q (BH, Tq, D), k (BH, Tk, D), v (BH, Tk, Dv).
# Scores exist two query rows by at most BLOCK_K keys at a time; no (Tq, Tk) array is made.
# The forward keeps a running max m, sum l and rescaled accumulator per query row (online
# softmax) and saves only lse; the backward recomputes p = exp(s - lse) per key tile.
# Vectorisation: each key tile is packed transposed into a contiguous panel (C, BLOCK_K),
# so every inner loop runs over keys with a plain 0-based index, as rank-1 updates
# (s += q[i, c] * panel[c]) or dot products (acc[e] += p . panel[e]). An inner index like
# j0 + j makes Numba emit negative-index wraparound code and the loop stays scalar (5x
# slower, measured). Query rows go two at a time so each panel load feeds two FMAs.
# Threads: the forward's prange covers (head, query tile) pairs, each owning its o and lse
# rows; the backward's prange covers heads, each owning all of its dq, dk, dv rows. Every
# output element has one writer and a fixed summation order, so results are bitwise the
# same for any thread count.

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
def _pack_t(x, j0, nj, panel):
    """panel[c, j] = x[j0 + j, c] for j < nj: rows j0.. of x (T, C) as a (C, nj) panel."""
    for j in range(nj):
        for c in range(x.shape[1]):
            panel[c, j] = x[j0 + j, c]


@jit(inline="always")
def _two_rows_times_panel(a, i, i2, panel, n, out, out2):
    """out[j], out2[j] = a[i] . panel[:, j], a[i2] . panel[:, j] for j < n: two rows share
    each panel load (measured 1.5x over one row at a time for D = 64)."""
    zero = out.dtype.type(0)
    for j in range(n):
        out[j] = zero
        out2[j] = zero
    for c in range(a.shape[1]):
        x, x2 = a[i, c], a[i2, c]
        for j in range(n):
            out[j] += x * panel[c, j]
            out2[j] += x2 * panel[c, j]


@jit(inline="always")
def _dot(x, y, n):
    """sum_j x[j] * y[j] for j < n (fastmath reassoc lets LLVM vectorise the sum)."""
    t = x.dtype.type(0)
    for j in range(n):
        t += x[j] * y[j]
    return t


@jit(inline="always")
def _visible(causal, i, off, j0, nj):
    """How many of keys j0 .. j0+nj-1 query row i sees (causal: key j <= i + off)."""
    if not causal:
        return nj
    return min(nj, max(i + off + 1 - j0, 0))


@jit(inline="always")
def _keys_seen(causal, i, off, j0, nj, li):
    """_visible, or 0 when the row's lse is -inf (it sees no key at all)."""
    return 0 if li == -np.inf else _visible(causal, i, off, j0, nj)


@jit(inline="always")
def _online_softmax_step(s, n, w, m, l, r):
    """Fold scores s[:n] into row r's running max m[r] and sum l[r]; s[:w] becomes p
    (0 past n). Returns alpha, the factor that rescales row r's accumulator."""
    zero = s.dtype.type(0)
    mx = m[r]
    total = zero  # only to see NaN: max() skips a NaN score, a sum keeps it
    for j in range(n):
        mx = max(mx, s[j])
        total += s[j]
    # A NaN score poisons the row, as in the reference (not "fully masked" zeros).
    if total != total:  # noqa: PLR0124  (the NaN test)
        mx = s.dtype.type(np.nan)
    if mx == s.dtype.type(-np.inf):             # nothing visible yet: leave the row as is
        s[:w] = zero
        return s.dtype.type(1)
    alpha = exp_typed(m[r] - mx)                # 0 on the first visible tile (m = -inf)
    tot = zero
    for j in range(n):
        p = exp_typed(s[j] - mx)
        s[j] = p
        tot += p
    s[n:w] = zero
    l[r] = l[r] * alpha + tot
    m[r] = mx
    return alpha


@jit(inline="always")
def _accumulate_pv(acc, r, r2, alpha, alpha2, p, p2, vt_panel, w):
    """acc[r] = alpha acc[r] + p v, and the same for row r2, sharing each panel load.
    Row r is written before row r2 is read, so r2 == r with p2 = 0, alpha2 = 1 is a no-op."""
    for e in range(acc.shape[1]):
        t, t2 = acc.dtype.type(0), acc.dtype.type(0)
        for j in range(w):
            t += p[j] * vt_panel[e, j]
            t2 += p2[j] * vt_panel[e, j]
        acc[r, e] = acc[r, e] * alpha + t
        acc[r2, e] = acc[r2, e] * alpha2 + t2


@jit(inline="always")
def _finish_rows(acc, m, l, o, lse, i0, ni):
    """o = acc / l and lse = m + log(l); rows that saw no key get o = 0 and lse = -inf."""
    zero = o.dtype.type(0)
    for r in range(ni):
        if l[r] == zero:
            lse[i0 + r] = o.dtype.type(-np.inf)
            for e in range(o.shape[1]):
                o[i0 + r, e] = zero
        else:
            inv = o.dtype.type(1) / l[r]
            lse[i0 + r] = m[r] + math.log(l[r])
            for e in range(o.shape[1]):
                o[i0 + r, e] = acc[r, e] * inv


@jit
def _forward_tile(q, k, v, o, lse, i0, ni, causal, scale, bk):
    """Query rows i0 .. i0+ni of one head: q (Tq, D), k (Tk, D), v (Tk, Dv) -> o, lse."""
    tk, dt = k.shape[0], q.dtype
    off = tk - q.shape[0]
    qs = q[i0:i0 + ni] * scale                        # (ni, D), scale folded in once
    kt_panel = np.empty((k.shape[1], bk), dtype=dt)   # (D, bk)
    vt_panel = np.empty((v.shape[1], bk), dtype=dt)   # (Dv, bk)
    s = np.empty((2, bk), dtype=dt)                   # two rows of scores, then of p
    acc = np.zeros((ni, v.shape[1]), dtype=dt)
    m = np.full(ni, -np.inf, dtype=dt)
    l = np.zeros(ni, dtype=dt)
    # causal: key tiles past the last row's horizon, i0 + ni - 1 + off, are never visited
    j_end = min(tk, max(i0 + ni + off, 0)) if causal else tk
    for j0 in range(0, j_end, bk):
        nj = min(bk, j_end - j0)
        _pack_t(k, j0, nj, kt_panel)
        _pack_t(v, j0, nj, vt_panel)
        # rows go in pairs; an odd last row pairs with itself as a row that sees nothing
        for r in range(0, ni, 2):
            r2 = min(r + 1, ni - 1)
            n = _visible(causal, i0 + r, off, j0, nj)
            n2 = _visible(causal, i0 + r2, off, j0, nj) if r2 > r else 0
            if n2 > 0 or n > 0:
                w = max(n, n2)
                _two_rows_times_panel(qs, r, r2, kt_panel, w, s[0], s[1])
                alpha = _online_softmax_step(s[0], n, w, m, l, r)
                alpha2 = _online_softmax_step(s[1], n2, w, m, l, r2)
                _accumulate_pv(acc, r, r2, alpha, alpha2, s[0], s[1], vt_panel, w)
    _finish_rows(acc, m, l, o, lse, i0, ni)


@jit(parallel=True)
def _forward_kernel(q, k, v, o, lse, causal, scale, bq, bk):
    """Each prange iteration owns one (head, query tile): rows of o (BH, Tq, Dv), lse."""
    nbh, tq = q.shape[0], q.shape[1]
    nqt = (tq + bq - 1) // bq
    for it in prange(nbh * nqt):
        bh = it // nqt
        i0 = (it % nqt) * bq
        _forward_tile(q[bh], k[bh], v[bh], o[bh], lse[bh], i0, min(bq, tq - i0),
                      causal, scale, bk)


@jit(inline="always")
def _softmax_grad(p, ds, n, w, li, di):
    """In place: p = exp(s - lse) for the n visible keys, 0 up to w; ds = p (dp - D_i)."""
    for j in range(n):
        p[j] = exp_typed(p[j] - li)
    for j in range(n, w):
        p[j] = 0
    for j in range(w):
        ds[j] = p[j] * (ds[j] - di)


@jit(inline="always")
def _grad_rows(qs, do, i, i2, n, n2, lse, drow, kt_panel, vt_panel, p, ds, dq, dkt, dvt):
    """Query rows i and i2 against one key tile (n and n2 visible keys): recompute p, then
    dv^T += do_i p, ds = p (dp - D_i), dk^T += qs_i ds, dq_i += ds k. qs is q * scale.
    p, ds (2, bk) hold the two rows; a row with n = 0 contributes exact zeros."""
    w = max(n, n2)
    p0, p1, ds0, ds1 = p[0], p[1], ds[0], ds[1]
    _two_rows_times_panel(qs, i, i2, kt_panel, w, p0, p1)      # s = q k^T * scale
    _two_rows_times_panel(do, i, i2, vt_panel, w, ds0, ds1)    # dp = do v^T
    _softmax_grad(p0, ds0, n, w, lse[i], drow[i])
    _softmax_grad(p1, ds1, n2, w, lse[i2], drow[i2])
    for e in range(dvt.shape[0]):
        x, x2 = do[i, e], do[i2, e]
        for j in range(w):
            dvt[e, j] += x * p0[j] + x2 * p1[j]
    for c in range(dkt.shape[0]):
        x, x2 = qs[i, c], qs[i2, c]
        t, t2 = dq.dtype.type(0), dq.dtype.type(0)
        for j in range(w):
            dkt[c, j] += x * ds0[j] + x2 * ds1[j]
            t += ds0[j] * kt_panel[c, j]
            t2 += ds1[j] * kt_panel[c, j]
        dq[i, c] += t
        dq[i2, c] += t2


@jit(inline="always")
def _unpack_t(panel, j0, nj, x):
    """x[j0 + j, c] = panel[c, j] for j < nj: the inverse of _pack_t."""
    for j in range(nj):
        for c in range(x.shape[1]):
            x[j0 + j, c] = panel[c, j]


@jit
def _row_dots(a, b, out):
    """out[i] = a[i] . b[i] for a, b (T, C): D_i = rowsum(do * o) in the backward."""
    for i in range(a.shape[0]):
        out[i] = _dot(a[i], b[i], a.shape[1])


@jit
def _backward_head(q, k, v, o, do, lse, dq, dk, dv, causal, scale, bk):
    """All gradients of one head, key tiles outer, query rows inner; dq arrives zeroed."""
    tq, tk, dt = q.shape[0], k.shape[0], q.dtype
    off = tk - tq
    qs = q * scale                                    # (Tq, D)
    drow = np.empty(tq, dtype=dt)
    _row_dots(do, o, drow)
    kt_panel, dkt = np.empty((k.shape[1], bk), dt), np.empty((k.shape[1], bk), dt)
    vt_panel, dvt = np.empty((v.shape[1], bk), dt), np.empty((v.shape[1], bk), dt)
    p, ds = np.empty((2, bk), dtype=dt), np.empty((2, bk), dtype=dt)
    for j0 in range(0, tk, bk):
        nj = min(bk, tk - j0)
        _pack_t(k, j0, nj, kt_panel)
        _pack_t(v, j0, nj, vt_panel)
        dkt[:] = 0
        dvt[:] = 0
        # causal: rows before j0 - off see none of this tile's keys; rows go in pairs,
        # an odd last row pairs with itself as a second row that sees nothing
        for i in range(max(0, j0 - off) if causal else 0, tq, 2):
            i2 = min(i + 1, tq - 1)
            n = _keys_seen(causal, i, off, j0, nj, lse[i])
            n2 = _keys_seen(causal, i2, off, j0, nj, lse[i2]) if i2 > i else 0
            if n + n2 > 0:
                _grad_rows(qs, do, i, i2, n, n2, lse, drow, kt_panel, vt_panel, p, ds,
                           dq, dkt, dvt)
        _unpack_t(dkt, j0, nj, dk)
        _unpack_t(dvt, j0, nj, dv)
    dq *= scale


@jit(parallel=True)
def _backward_kernel(q, k, v, o, do, lse, dq, dk, dv, causal, scale, bk):
    """Each prange iteration owns one head: all of its dq, dk, dv rows (BH, T, D)."""
    for bh in prange(q.shape[0]):
        _backward_head(q[bh], k[bh], v[bh], o[bh], do[bh], lse[bh], dq[bh], dk[bh], dv[bh],
                       causal, scale, bk)


def _flat(x):
    """(B, H, T, C) -> contiguous (B*H, T, C)."""
    return np.ascontiguousarray(x).reshape(x.shape[0] * x.shape[1], x.shape[2], x.shape[3])


def flash_forward(q, k, v, causal, scale, bq, bk):
    """o (B, H, Tq, Dv), lse (B, H, Tq) with (bq, bk) tiles; no mask."""
    b, h, tq, _ = q.shape
    o = np.empty((b * h, tq, v.shape[-1]), dtype=q.dtype)
    lse = np.empty((b * h, tq), dtype=q.dtype)
    _forward_kernel(_flat(q), _flat(k), _flat(v), o, lse, bool(causal),
                    q.dtype.type(scale), bq, bk)
    return o.reshape(b, h, tq, v.shape[-1]), lse.reshape(b, h, tq)


def flash_backward(do, q, k, v, o, lse, causal, scale, bk):
    """(dq, dk, dv) shaped like (q, k, v) with key tiles of bk; no mask."""
    q3, k3, v3 = _flat(q), _flat(k), _flat(v)
    lse2 = np.ascontiguousarray(lse).reshape(q3.shape[:2])
    dq = np.zeros_like(q3)
    dk, dv = np.empty_like(k3), np.empty_like(v3)
    _backward_kernel(q3, k3, v3, _flat(o), _flat(do), lse2, dq, dk, dv, bool(causal),
                     q.dtype.type(scale), bk)
    return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape)

"""Fused flash-style attention kernels for the CPU (Numba), forward and backward.

Layout: q, k, v, o (and the gradients) are flat C-ordered buffers; a head is found through a
layout (base, batch stride, head stride, row stride): contiguous (B, H, T, D) arrays
(flash_forward), or q, k, v read in place from the fused (B, T, 3C) projection with y
written as (B, T, C) (flash_forward_qkv: no head transposes, no copies).

Tiles: a block of BLOCK_Q query rows meets the keys in chunks of BLOCK_K. Each product
inside a tile is a small matrix product done by the matmul kernel's register-tiled block
routine (ops/matmul_cpu._gemm_block: packed panels, 512- or 256-bit FMA micro-kernel), so
the scores of a tile are one (BLOCK_Q, D) @ (D, BLOCK_K) product, not D rank-1 updates.
No (Tq, Tk) array is made: a thread holds one (BLOCK_Q, BLOCK_K) score tile.

Forward (online softmax): per query block and key chunk, S = Q K^T; each row folds its scores
into a running max m and sum l, its P = exp(scale S - m) (0 past the causal horizon) and
rescales its output row by exp(m_old - m); then O += P V. At the end O /= l and
lse = m + log l, the one number per row the backward needs.
Backward: per head, query blocks outer and key chunks inner; P = exp(scale S - lse) is
recomputed, dP = dO V^T, dS = scale P (dP - rowsum(dO o)), then dV += P^T dO,
dK += dS^T Q, dQ += dS K.

Threads: each prange iteration (one per thread, with its own scratch) takes a contiguous run
of the forward's (head, query block) items, each owning its o and lse rows, or of the
backward's heads, each owning all of its dq, dk, dv entries. Every
output element has one writer and a fixed summation order, so results are bitwise the same
for any thread count.
"""

import math

import numpy as np
from numba import prange, types
from numba.extending import overload

from ops import matmul_cpu as mm
from ops.fastexp import exp_f32
from ops.native import Entry
from ops.numba_config import FASTMATH, jit, num_threads
from ops.simd import (
    lanes,
    vadd,
    vexp_below_zero,
    vfill,
    vfma,
    vload,
    vmax,
    vreduce_add,
    vreduce_max,
    vstore,
    vtail,
    vzero,
)

# Tile sizes, read by the wrappers in ops/attention.py at call time (tests shrink them).
BLOCK_Q = 64
BLOCK_K = 256


def exp_typed(x):
    """exp(x) keeping x's precision: the vectorisable exp_f32 on float32, math.exp else."""
    return math.exp(x)


@overload(exp_typed, jit_options={"fastmath": FASTMATH})
def _exp_typed_overload(x):
    if x == types.float32:
        return lambda x: exp_f32(x)
    return lambda x: math.exp(x)


@jit(inline="always")
def _exp_below_zero(x, lo, zero):
    """exp(x) for x <= 0, flushed to 0 below -87: exp(-87) is 1.6e-38, the last normal
    float32, so a probability this small (relative to the row's largest, 1) is 0 (lo is
    -87 in x's dtype; a Python -87 would promote float32 math to float64). Masked
    keys (-inf) take this path; through exp_f32's subnormal range each one cost ~100 cycles
    of floating-point assists (measured: a causal 64-key row 8x slower)."""
    e = exp_typed(max(x, lo))
    e = e if x > lo else zero
    return e if x == x else x  # noqa: PLR0124  (NaN stays NaN)


def _exp_pass(row, wr, f, mx):
    """row[j] = exp(f row[j] - mx), flushed to 0 below -87, for j < wr (whole vectors);
    returns their sum. Only callable inside Numba kernels."""
    raise NotImplementedError("only callable inside Numba kernels")


@overload(_exp_pass, jit_options={"fastmath": FASTMATH})
def _exp_pass_overload(row, wr, f, mx):
    if row.dtype == types.float32:  # explicit vectors: ops.simd.vexp_below_zero
        def vectors(row, wr, f, mx):
            w = lanes(row)
            fv, shift = vfill(row, f), vfill(row, -mx)
            tot = vzero(row)
            for j in range(0, wr, w):
                p = vexp_below_zero(vfma(fv, vload(row, j), shift))
                vstore(row, j, p)
                tot = vadd(tot, p)
            return vreduce_add(tot)
        return vectors

    def scalars(row, wr, f, mx):  # float64: math.exp per element
        zero, lo = row.dtype.type(0), row.dtype.type(-87)
        tot = zero
        for j in range(wr):
            p = _exp_below_zero(f * row[j] - mx, lo, zero)
            row[j] = p
            tot += p
        return tot
    return scalars


@jit(inline="always")
def _visible(causal, i, off, j0, nj):
    """How many of keys j0 .. j0+nj-1 query row i sees (causal: key j <= i + off)."""
    if not causal:
        return nj
    return min(nj, max(i + off + 1 - j0, 0))


@jit(inline="always")
def _gemm(fn, a, ao, lda, ta, b, bo, ldb, tb, c, co, ldc, m, n, k, acc, bufs):
    """c[co..] (+)= op(a) (m, k) @ op(b) (k, n): one tile product on this thread, through the
    matmul block routine's compiled entry at address fn (not a copy compiled into every
    attention kernel: see ops/native.py)."""
    mm.gemm_call(fn, a, ao, lda, ta, b, bo, ldb, tb, c, co, ldc, 0, m, 0, n, k,
                 (mm.MC, mm.KC, mm.NC), bufs, m > 0 and acc, c[:0], False)


@jit
def _tile_buffers(c, bq, bk, d, dv):
    """One thread's matmul scratch, big enough for every tile product of this call."""
    big = max(bq, bk, d, dv)
    return mm._buffers(c, big, big, big, 1, (mm.MC, mm.KC, mm.NC))


@jit(inline="always")
def _row_stride(bk):
    """Score rows are padded to whole vectors (16 covers every lane count), so the row
    passes below run over whole vectors with no scalar remainder."""
    return -(-bk // 16) * 16


@jit(inline="always")
def _prepare_row(row, n, wr, wp, scale):
    """Make row[:wp] ready for its exp pass: keys n .. wr-1 (the tail of the last vector
    holding visible keys) become -inf, keys wr .. wp-1 become 0, all with vector stores.
    Returns the factor the exp pass applies to the scores: a finite positive scale is folded
    into that pass (it keeps the row's max where it is: max(scale s) = scale max(s) exactly,
    since rounding is monotonic), which saves a pass over the row; any other scale (0,
    negative, inf, NaN) is applied here, before the -inf tail, and 1 is returned."""
    w = lanes(row)
    f = scale
    if not (scale > 0 and scale < np.inf):
        fv, z = vfill(row, scale), vzero(row)
        for j in range(0, wr, w):
            vstore(row, j, vfma(fv, vload(row, j), z))
        f = row.dtype.type(1)
    if wr > n:
        vstore(row, wr - w, vtail(vload(row, wr - w), n - (wr - w), -np.inf))
    z = vzero(row)
    for j in range(wr, wp, w):
        vstore(row, j, z)
    return f


@jit
def _unseen_row(row, n, wr):
    """For a row whose visible scores have no max (all -inf, or NaN: the vector max skips
    NaN lanes): NaN when one of them is NaN (the row becomes NaN, as in the reference),
    else -inf after zeroing row[:wr] (nothing visible yet). Out of line: inlined, this rare
    branch made the common path of the row ~30% slower."""
    for j in range(n):
        if row[j] != row[j]:
            return row.dtype.type(np.nan)
    row[:wr] = 0
    return row.dtype.type(-np.inf)


@jit(inline="always")
def _online_softmax_row(row, n, wp, scale, m, l, r):
    """Fold one row of scores (row[:n] visible) into its running max m[r] and sum l[r];
    row[:wp] becomes p (0 past n). Returns alpha, the factor that rescales
    the row's output. A NaN score makes the row NaN through p and l (exp keeps NaN), as in
    the reference, not "fully masked"; a row with nothing visible yet is left as it is.
    Only the whole vectors holding the visible keys are worked on (a causal row of the
    diagonal tile sees part of it); the rest of row[:wp] is set to 0 directly. The row is a
    slice, indexed from 0, so Numba adds no negative-index check and LLVM vectorises the
    loops (offsets into the tile instead made the kernels 2-3x slower)."""
    w = lanes(row)
    wr = -(-n // w) * w
    f = _prepare_row(row, n, wr, wp, scale)
    mv = vfill(row, -np.inf)
    for j in range(0, wr, w):
        mv = vmax(mv, vload(row, j))
    mx = max(m[r], f * vreduce_max(mv))
    if mx == -np.inf:  # nothing visible yet, or only NaN (skipped by the max): look again
        mx = _unseen_row(row, n, wr)
    alpha = row.dtype.type(1)  # a row with nothing visible yet is left as it is
    if mx != -np.inf:
        zero, lo = row.dtype.type(0), row.dtype.type(-87)
        alpha = _exp_below_zero(m[r] - mx, lo, zero)  # 0 on the first visible chunk
        l[r] = l[r] * alpha + _exp_pass(row, wr, f, mx)
        m[r] = mx
    return alpha


@jit(inline="always")
def _head(layout, b, h):
    """Flat offset of head (b, h)'s first row in an array of layout (base, batch stride,
    head stride, row stride): (B, H, T, D) contiguous is (0, H*T*D, T*D, D); a head of the
    fused (B, T, 3C) projection is (part * C, T*3C, D, 3C)."""
    return layout[0] + b * layout[1] + h * layout[2]


def _forward_block(gemm, q, k, v, o, lse, qo, ko, vo, oo, lo, rq, rk, rv, ro, i0, nq, tq, tk, d, dv,
                   causal, scale, bk, ls, s, m, l, bufs):
    """Query rows i0 .. i0+nq of one head: its first rows at qo, ko, vo, oo in the flat
    arrays, rows rq, rk, rv, ro apart; lse rows at lo."""
    off = tk - tq
    m[:nq] = -np.inf
    l[:nq] = 0
    # causal: key chunks past the last row's horizon, i0 + nq - 1 + off, are never visited
    j_end = min(tk, max(i0 + nq + off, 0)) if causal else tk
    for j0 in range(0, j_end, bk):
        nk = min(bk, j_end - j0)
        wp = -(-nk // lanes(s)) * lanes(s)
        _gemm(gemm, q, qo + i0 * rq, rq, 0, k, ko + j0 * rk, rk, 1, s, 0, ls, nq, nk, d, False,
              bufs)
        for r in range(nq):
            alpha = _online_softmax_row(s[r * ls:(r + 1) * ls],
                                        _visible(causal, i0 + r, off, j0, nk), wp, scale, m,
                                        l, r)
            if j0 > 0 and alpha != 1:
                base = oo + (i0 + r) * ro
                for e in range(dv):
                    o[base + e] *= alpha
        _gemm(gemm, s, 0, ls, 0, v, vo + j0 * rv, rv, 0, o, oo + i0 * ro, ro, nq, dv, nk, j0 > 0,
              bufs)
    zero = o.dtype.type(0)
    for r in range(nq):
        base = oo + (i0 + r) * ro
        if j_end <= 0 or l[r] == zero:
            lse[lo + i0 + r] = o.dtype.type(-np.inf)
            for e in range(dv):
                o[base + e] = zero
        else:
            inv = o.dtype.type(1) / l[r]
            lse[lo + i0 + r] = m[r] + math.log(l[r])
            for e in range(dv):
                o[base + e] *= inv


FORWARD_BLOCK = Entry(_forward_block, "i" "aaaaa" "iiiii" "iiii" "iiiiii" "bf" "ii" "aaa" "B")
_forward_call = FORWARD_BLOCK.caller()


@jit(parallel=True)
def _forward_kernel(fn, gemm, q, k, v, o, lse, nb, nh, tq, tk, d, dv, causal, scale, bq, bk,
                    workers, lq, lk, lv, lo_):
    """The (head, query block) items are dealt out in contiguous runs, one run per prange
    iteration (one per thread, with its own scratch); each item owns rows of o and lse.
    lq, lk, lv, lo_: the layouts of q, k, v and o (see _head). fn, gemm: the addresses of
    _forward_block and of the matmul block routine (see _addresses)."""
    nqb = (tq + bq - 1) // bq
    items, ls = nb * nh * nqb, _row_stride(bk)
    for w in prange(workers):
        s = np.empty(bq * ls, dtype=q.dtype)
        m, l = np.empty(bq, dtype=q.dtype), np.empty(bq, dtype=q.dtype)
        bufs = _tile_buffers(q, bq, bk, d, dv)
        for it in range(w * items // workers, (w + 1) * items // workers):
            bh, i0 = it // nqb, (it % nqb) * bq
            b, h = bh // nh, bh % nh
            _forward_call(fn, gemm, q, k, v, o, lse, _head(lq, b, h), _head(lk, b, h),
                          _head(lv, b, h), _head(lo_, b, h), bh * tq, lq[3], lk[3], lv[3],
                          lo_[3], i0, min(bq, tq - i0), tq, tk, d, dv, causal, scale, bk, ls,
                          s, m, l, bufs)


@jit(inline="always")
def _grad_scores(p, ds, nq, nk, ls, i0, j0, off, causal, scale, lse, drow, lo):
    """p = exp(scale s - lse) for the visible keys (0 past them), ds = scale p (dp - D_i).
    p holds s and ds holds dp on entry, rows ls apart; a row with lse = -inf saw no key."""
    wp = -(-nk // lanes(p)) * lanes(p)
    for r in range(nq):
        li = lse[lo + i0 + r]
        pr, dr = p[r * ls:(r + 1) * ls], ds[r * ls:(r + 1) * ls]
        n = 0 if li == -np.inf else _visible(causal, i0 + r, off, j0, nk)
        wr = -(-n // lanes(p)) * lanes(p)  # the whole vectors holding the visible keys
        f = _prepare_row(pr, n, wr, wp, scale)
        if n > 0:
            _exp_pass(pr, wr, f, li)
        di = drow[r]
        for j in range(nk):
            dr[j] = scale * pr[j] * (dr[j] - di)


def _backward_head(gemm, q, k, v, o, do, lse, dq, dk, dv_, qo, ko, vo, oo, lo, rq, rk, rv, ro, tq,
                   tk, d, dv, causal, scale, bq, bk, ls, p, ds, drow, bufs):
    """All gradients of one head: q, dq rows at qo, rq apart; k, dk at ko, rk; v, dv_ at
    vo, rv; o, do at oo, ro; lse at lo. dk, dv_ arrive zeroed."""
    off = tk - tq
    for i0 in range(0, tq, bq):
        nq = min(bq, tq - i0)
        for r in range(nq):  # D_i = rowsum(do * o)
            t = o.dtype.type(0)
            base = oo + (i0 + r) * ro
            for e in range(dv):
                t += do[base + e] * o[base + e]
            drow[r] = t
        j_end = min(tk, max(i0 + nq + off, 0)) if causal else tk
        first = True
        qi, oi = qo + i0 * rq, oo + i0 * ro
        for j0 in range(0, j_end, bk):
            nk = min(bk, j_end - j0)
            kj, vj = ko + j0 * rk, vo + j0 * rv
            _gemm(gemm, q, qi, rq, 0, k, kj, rk, 1, p, 0, ls, nq, nk, d, False, bufs)
            _gemm(gemm, do, oi, ro, 0, v, vj, rv, 1, ds, 0, ls, nq, nk, dv, False, bufs)
            _grad_scores(p, ds, nq, nk, ls, i0, j0, off, causal, scale, lse, drow, lo)
            _gemm(gemm, p, 0, ls, 1, do, oi, ro, 0, dv_, vj, rv, nk, dv, nq, True, bufs)
            _gemm(gemm, ds, 0, ls, 1, q, qi, rq, 0, dk, kj, rk, nk, d, nq, True, bufs)
            _gemm(gemm, ds, 0, ls, 0, k, kj, rk, 0, dq, qi, rq, nq, d, nk, not first, bufs)
            first = False
        if first:  # no key chunk: these rows see nothing, their dq is 0
            for r in range(nq):
                dq[qi + r * rq:qi + r * rq + d] = 0


BACKWARD_HEAD = Entry(_backward_head, "i" "aaaaaaaaa" "iiiii" "iiii" "iiii" "bf" "iii" "aaa" "B")
_backward_call = BACKWARD_HEAD.caller()


@jit(parallel=True)
def _backward_kernel(fn, gemm, q, k, v, o, do, lse, dq, dk, dv_, nb, nh, tq, tk, d, dv, causal,
                     scale, bq, bk, workers, lq, lk, lv, lo_):
    """Heads are dealt out in contiguous runs, one run per prange iteration (one per
    thread, with its own scratch); each head owns all of its dq, dk, dv entries (laid out
    as q, k, v; do as o). dq, dk, dv may be one array (the fused projection's gradient).
    fn, gemm: the addresses of _backward_head and of the matmul block routine."""
    ls = _row_stride(bk)
    nbh = nb * nh
    for w in prange(workers):
        p, ds = np.empty(bq * ls, dtype=q.dtype), np.empty(bq * ls, dtype=q.dtype)
        drow = np.empty(bq, dtype=q.dtype)
        bufs = _tile_buffers(q, bq, bk, d, dv)
        for bh in range(w * nbh // workers, (w + 1) * nbh // workers):
            b, h = bh // nh, bh % nh
            _backward_call(fn, gemm, q, k, v, o, do, lse, dq, dk, dv_, _head(lq, b, h),
                           _head(lk, b, h), _head(lv, b, h), _head(lo_, b, h), bh * tq, lq[3],
                           lk[3], lv[3], lo_[3], tq, tk, d, dv, causal, scale, bq, bk, ls, p, ds,
                           drow, bufs)


def _addresses(entry, x):
    """(entry's address, the matmul block routine's address) for x's dtype."""
    return entry.address(x.dtype), mm.GEMM_BLOCK.address(x.dtype)


def _flat(x):
    """(B, H, T, C) -> one flat C-ordered buffer (a copy only when x is not C-contiguous)."""
    x = np.ascontiguousarray(x)
    if not x.flags.writeable:  # a read-only array would compile a second set of kernels
        x = x.copy()
    return x.reshape(-1)


def _bhtd(b, h, t, c):
    """The layout of a contiguous (B, H, T, C) array (see _head)."""
    return (0, h * t * c, t * c, c)


def flash_forward(q, k, v, causal, scale, bq, bk):
    """o (B, H, Tq, Dv), lse (B, H, Tq) with (bq, bk) tiles; no mask."""
    b, h, tq, d = q.shape
    tk, dv = k.shape[2], v.shape[-1]
    o = np.empty(b * h * tq * dv, dtype=q.dtype)
    lse = np.empty(b * h * tq, dtype=q.dtype)
    if o.size or lse.size:
        items = b * h * -(-tq // bq)
        _forward_kernel(*_addresses(FORWARD_BLOCK, q),
                        _flat(q), _flat(k), _flat(v), o, lse, b, h, tq, tk, d, dv,
                        bool(causal), q.dtype.type(scale), bq, bk, min(num_threads(), items),
                        _bhtd(b, h, tq, d), _bhtd(b, h, tk, d), _bhtd(b, h, tk, dv),
                        _bhtd(b, h, tq, dv))
    return o.reshape(b, h, tq, dv), lse.reshape(b, h, tq)


def flash_backward(do, q, k, v, o, lse, causal, scale, bk, bq=None):
    """(dq, dk, dv) shaped like (q, k, v) with tiles of (bq, bk); no mask."""
    b, h, tq, d = q.shape
    tk, dv = k.shape[2], v.shape[-1]
    dq = np.zeros(q.size, dtype=q.dtype)
    dk, dv_ = np.zeros(k.size, dtype=q.dtype), np.zeros(v.size, dtype=q.dtype)
    if b * h and tq and tk:
        _backward_kernel(*_addresses(BACKWARD_HEAD, q),
                         _flat(q), _flat(k), _flat(v), _flat(o), _flat(do), _flat(lse),
                         dq, dk, dv_, b, h, tq, tk, d, dv, bool(causal),
                         q.dtype.type(scale), bq or BLOCK_Q, bk, min(num_threads(), b * h),
                         _bhtd(b, h, tq, d), _bhtd(b, h, tk, d), _bhtd(b, h, tk, dv),
                         _bhtd(b, h, tq, dv))
    return dq.reshape(q.shape), dk.reshape(k.shape), dv_.reshape(v.shape)


def _qkv_layouts(t, c, nh):
    """Layouts of q, k, v in a contiguous (B, T, 3C) projection and of o in (B, T, C)."""
    d = c // nh
    return [(part * c, t * 3 * c, d, 3 * c) for part in range(3)] + [(0, t * c, d, c)]


def flash_forward_qkv(qkv, n_head, causal, scale, bq, bk):
    """Attention straight from the fused projection qkv (B, T, 3C): q, k, v are its thirds,
    split into n_head heads, read in place; returns y (B, T, C) with the heads side by side
    (no head transposes, no copies) and lse (B, H, T)."""
    b, t, c3 = qkv.shape
    c = c3 // 3
    y = np.empty(b * t * c, dtype=qkv.dtype)
    lse = np.empty(b * n_head * t, dtype=qkv.dtype)
    if y.size:
        flat = _flat(qkv)
        items = b * n_head * -(-t // bq)
        _forward_kernel(*_addresses(FORWARD_BLOCK, qkv),
                        flat, flat, flat, y, lse, b, n_head, t, t, c // n_head, c // n_head,
                        bool(causal), qkv.dtype.type(scale), bq, bk,
                        min(num_threads(), items), *_qkv_layouts(t, c, n_head))
    return y.reshape(b, t, c), lse.reshape(b, n_head, t)


def flash_backward_qkv(dy, qkv, y, lse, n_head, causal, scale, bq, bk):
    """d qkv (B, T, 3C) of flash_forward_qkv from dy (B, T, C), one array for dq, dk, dv."""
    b, t, c3 = qkv.shape
    c = c3 // 3
    dqkv = np.zeros(qkv.size, dtype=qkv.dtype)
    if dqkv.size:
        flat = _flat(qkv)
        _backward_kernel(*_addresses(BACKWARD_HEAD, qkv),
                         flat, flat, flat, _flat(y), _flat(dy), _flat(lse), dqkv, dqkv, dqkv,
                         b, n_head, t, t, c // n_head, c // n_head, bool(causal),
                         qkv.dtype.type(scale), bq, bk, min(num_threads(), b * n_head),
                         *_qkv_layouts(t, c, n_head))
    return dqkv.reshape(qkv.shape)

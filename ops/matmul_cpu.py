"""Numba CPU matrix product: packed panels, a 6-row SIMD micro-kernel and prange over tiles.

Why explicit vectors: Numba turns off LLVM's SLP vectoriser, and the loop vectoriser only
vectorises an innermost loop, so a C tile written as scalar locals or a local array is
either spilled or kept in memory (measured 3-45 GFLOP/s single-threaded here, OpenBLAS 85).
`Vec` below is an LLVM vector value as a Numba type, with six intrinsics (load, store,
broadcast, zero, fused multiply-add, add); with them the micro-kernel keeps its 6 x 2-vector
tile in twelve registers: 512-bit (6 x 32 float32) where the CPU has AVX-512, else 256-bit
(6 x 16). Alone, it runs at ~90% of the FMA peak measured on the same core.

Layout, as in BLIS/GotoBLAS. Every operand is a flat C-ordered array plus a leading
dimension and a "transposed" flag, so a @ b, a @ b^T and a^T @ b share one code path:
  op(A)[i, p] = a[i*lda + p], or a[p*lda + i] when ta;   op(B)[p, j] = b[p*ldb + j], or
  b[j*ldb + p] when tb.  C (M, N) is a flat C-ordered array with leading dimension ldc.
Loops: jc over NC columns -> pc over KC of K -> pack op(B) panel (a copy, or for b^T an
in-register transpose) -> ic over MC rows -> micro-tiles (MR rows x NR columns) over KC.
op(A) is read in place through strides (rs, ks); only a^T for wide blocks and the last
group of fewer than MR rows are packed. Threads own whole blocks of C (see gemm_parallel).
"""

import numpy as np
from numba import prange

from ops.native import Entry
from ops.numba_config import jit
from ops.simd import (  # noqa: F401  (VEC_BITS and _shuffle_steps: read by tests)
    VEC_BITS,
    _shuffle_steps,
    lanes,
    vadd,
    vfma,
    vload,
    vsplat,
    vstore,
    vtranspose,
    vzero,
)

MR = 6  # rows of the micro-tile; NR = 2 vectors (32 or 16 float32 columns, 16 or 8 float64)
# Block sizes (elements), read by the Python wrappers at call time so tests can shrink them:
# an MC x KC block of A (~120 KB float32) stays in L2, a KC x NR sliver of B in L1.
MC, KC, NC = 120, 256, 1024


# ---- micro-kernel, packing, blocking ----

@jit
def _micro(kc, a, ao, rs, ks, bp, bo, c, co, ldc, acc, bias, bc, ub):
    """c[co + r*ldc + j] (+)= sum_p a[ao + r*rs + p*ks] * bp[bo + p*NR + j], r < MR, j < NR.

    A is read in place through strides (rs, ks) or from a packed edge group (rs=1, ks=MR).
    With acc the tile is added to C, else it overwrites C (the first KC block: no zeroing).
    With ub the sums start from bias[bc + j] instead of 0 (the linear layer's bias, added
    for free; bias is padded to whole vectors). The 6 x 2 vectors of the tile are twelve
    locals (registers); per p: two loads of B, six broadcasts of A, twelve FMAs.
    """
    w = lanes(c)
    nr = 2 * w
    b0, b1 = (vload(bias, bc), vload(bias, bc + w)) if ub else (vzero(c), vzero(c))
    c00 = c10 = c20 = c30 = c40 = c50 = b0
    c01 = c11 = c21 = c31 = c41 = c51 = b1
    for p in range(kc):
        b0 = vload(bp, bo + p * nr)
        b1 = vload(bp, bo + p * nr + w)
        q = ao + p * ks
        x = vsplat(a, q)
        c00, c01 = vfma(x, b0, c00), vfma(x, b1, c01)
        x = vsplat(a, q + rs)
        c10, c11 = vfma(x, b0, c10), vfma(x, b1, c11)
        x = vsplat(a, q + 2 * rs)
        c20, c21 = vfma(x, b0, c20), vfma(x, b1, c21)
        x = vsplat(a, q + 3 * rs)
        c30, c31 = vfma(x, b0, c30), vfma(x, b1, c31)
        x = vsplat(a, q + 4 * rs)
        c40, c41 = vfma(x, b0, c40), vfma(x, b1, c41)
        x = vsplat(a, q + 5 * rs)
        c50, c51 = vfma(x, b0, c50), vfma(x, b1, c51)
    _put_row(c, co, w, c00, c01, acc)
    _put_row(c, co + ldc, w, c10, c11, acc)
    _put_row(c, co + 2 * ldc, w, c20, c21, acc)
    _put_row(c, co + 3 * ldc, w, c30, c31, acc)
    _put_row(c, co + 4 * ldc, w, c40, c41, acc)
    _put_row(c, co + 5 * ldc, w, c50, c51, acc)


@jit
def _micro1(kc, a, ao, rs, ks, bp, bo, c, co, ldc, acc, bias, bc, ub):
    """`_micro` for a tile one vector wide: the first vector of each packed B row only."""
    w = lanes(c)
    nr = 2 * w
    c0 = c1 = c2 = c3 = c4 = c5 = vload(bias, bc) if ub else vzero(c)
    for p in range(kc):
        b0 = vload(bp, bo + p * nr)
        q = ao + p * ks
        c0 = vfma(vsplat(a, q), b0, c0)
        c1 = vfma(vsplat(a, q + rs), b0, c1)
        c2 = vfma(vsplat(a, q + 2 * rs), b0, c2)
        c3 = vfma(vsplat(a, q + 3 * rs), b0, c3)
        c4 = vfma(vsplat(a, q + 4 * rs), b0, c4)
        c5 = vfma(vsplat(a, q + 5 * rs), b0, c5)
    for r, v in enumerate((c0, c1, c2, c3, c4, c5)):
        o = co + r * ldc
        vstore(c, o, vadd(vload(c, o), v) if acc else v)


@jit
def _put_row(c, o, w, v0, v1, acc):
    """c[o : o + 2w] += (v0, v1) with acc, else c[o : o + 2w] = (v0, v1)."""
    if acc:
        v0 = vadd(vload(c, o), v0)
        v1 = vadd(vload(c, o + w), v1)
    vstore(c, o, v0)
    vstore(c, o + w, v1)


@jit
def _pack(src, so, ld, trans, x0, nx, p0, kc, r, buf):
    """Pack rows x0 .. x0+nx-1 of op(src), columns p0 .. p0+kc-1, into buf in groups of r rows.

    op(src)[x, p] is src[so + x*ld + p], or src[so + p*ld + x] when trans. Layout:
    buf[g*kc*r + p*r + q] = op(src)[x0 + g*r + q, p0 + p], zero where g*r + q >= nx, so
    the micro-kernel reads one contiguous stream and edge tiles need no special case.
    Groups of r = 2 vectors (or of one vector, the rest zero: a head dimension of 16 in the
    attention kernels) are copied (trans) or transposed (not trans) in vectors.
    """
    w = lanes(buf)
    for g in range((nx + r - 1) // r):
        base, n = g * kc * r, min(r, nx - g * r)
        first = so + (x0 + g * r) * ld + p0 if not trans else so + p0 * ld + x0 + g * r
        done = 0
        if r == 2 * w and (n == r or n == w):  # two vectors of columns, or one (+ zeros)
            if trans:  # each p: the group's columns are contiguous in src
                for p in range(kc):
                    vstore(buf, base + p * r, vload(src, first + p * ld))
                    second = vload(src, first + p * ld + w) if n == r else vzero(buf)
                    vstore(buf, base + p * r + w, second)
                done = kc
            else:  # w x w blocks transposed in registers, one or two per w values of p
                for p in range(0, kc - w + 1, w):
                    vtranspose(src, first + p, ld, buf, base + p * r, r)
                    if n == r:
                        vtranspose(src, first + w * ld + p, ld, buf, base + p * r + w, r)
                    else:
                        for t in range(w):
                            vstore(buf, base + (p + t) * r + w, vzero(buf))
                done = kc // w * w
        _pack_rest(src, first, ld, trans, n, done, kc, r, buf, base)


@jit(inline="always")
def _pack_rest(src, first, ld, trans, n, p_from, kc, r, buf, base):
    """Scalar part of `_pack` for one group: columns p_from .. kc-1, rows n .. r-1 zero."""
    for p in range(p_from, kc):
        for q in range(r):
            if q >= n:
                buf[base + p * r + q] = 0
            elif trans:
                buf[base + p * r + q] = src[first + p * ld + q]
            else:
                buf[base + p * r + q] = src[first + q * ld + p]


@jit(inline="always")
def _macro(a, ao, gs, rs, ks, bp, mb, nb, kb, c, co, ldc, acc, edge, tile, bias, bc, ub):
    """c[co + i*ldc + j] (+)= A block (mb x kb; group at row i: a[ao + i*gs]) @ B panel (kb x nb).

    j outer, i inner: one B sliver (kb x NR) stays in L1 while A streams from L2. A last
    group of fewer than MR rows is packed zero-padded into `edge`; edge tiles are computed
    into `tile` and only their valid part is put into C. One call site of the micro-kernel
    keeps compile time down (each call site is a separately optimised inlined copy). This
    routine and the other single-call-site helpers are inlined by Numba (inline="always"):
    each separately compiled level was linked and optimised again by its caller (0.8 s of
    the block routine's ~3.4 s cold compile, measured; the kernel's speed is unchanged).
    """
    w = lanes(c)
    nr = 2 * w
    ub = ub and not acc  # the bias goes in once, with the first KC block of a fresh C
    full = mb // MR * MR
    if full < mb:
        _pack_rows(a, ao + full * gs, rs, ks, mb - full, kb, edge, 0)
    for j in range(0, nb, nr):
        cols = min(nr, nb - j)
        for i in range(0, mb, MR):
            rows = min(MR, mb - i)
            src, so, r_s, k_s = (a, ao + i * gs, rs, ks) if i < full else (edge, 0, 1, MR)
            if rows == MR and cols == w:  # one vector wide (e.g. a head dimension of 16)
                _micro1(kb, src, so, r_s, k_s, bp, j * kb, c, co + i * ldc + j, ldc, acc, bias,
                        bc + j, ub)
                continue
            whole = rows == MR and cols == nr
            dst, do, ld, dacc = (c, co + i * ldc + j, ldc, acc) if whole else (tile, 0, nr, False)
            _micro(kb, src, so, r_s, k_s, bp, j * kb, dst, do, ld, dacc, bias, bc + j, ub)
            if not whole:
                _put_tile(tile, rows, cols, c, co + i * ldc + j, ldc, acc)


@jit(inline="always")
def _put_tile(tile, rows, cols, c, co, ldc, acc):
    """c[co + r*ldc + q] (+)= tile[r*NR + q] for r < rows, q < cols (an edge tile)."""
    nr = 2 * lanes(c)
    for r in range(rows):
        for q in range(cols):
            if acc:
                c[co + r * ldc + q] += tile[r * nr + q]
            else:
                c[co + r * ldc + q] = tile[r * nr + q]


@jit(inline="always")
def _pack_rows(a, ao, rs, ks, n, kb, buf, bo):
    """buf[bo + p*MR + r] = a[ao + r*rs + p*ks] for r < n, 0 for n <= r < MR (one group)."""
    for p in range(kb):
        for r in range(MR):
            buf[bo + p * MR + r] = a[ao + r * rs + p * ks] if r < n else 0


@jit
def _buffers(c, m, n, k, ta, blocks):
    """One thread's scratch: (A edge group, packed A block, packed B panel, edge tile)."""
    mc, kc, nc = blocks
    nr = 2 * lanes(c)
    kb = min(kc, k)
    mcap = (min(mc, m) + MR - 1) // MR * MR if ta else 0
    ncap = (min(nc, n) + nr - 1) // nr * nr
    return (np.empty(MR * kb, c.dtype), np.empty(mcap * kb, c.dtype),
            np.empty(ncap * kb, c.dtype), np.empty(MR * nr, c.dtype))


def _gemm_block(a, ao, lda, ta, b, bo, ldb, tb, c, co, ldc, i0, i1, j0, j1, k, blocks, bufs,
                accumulate, bias, use_bias):
    """C[i0:i1, j0:j1] (+)= op(A)[i0:i1, :] @ op(B)[:, j0:j1] for one matrix, on one thread.

    a, b, c are flat; ao, bo, co are the offsets of this matrix in them (batched calls, or
    tiles of bigger arrays: the fused attention kernels call this on their tiles); bufs come
    from `_buffers`, allocated once per thread. With accumulate, C is added to; else with
    use_bias, C[i, j] starts from bias[j] (bias padded by 2 vectors: see padded_bias).
    Compiled once per dtype as GEMM_BLOCK and called by address (gemm_call), never linked
    into its callers: each linked copy cost one more pass of LLVM over this whole stack.
    """
    mc, kc, nc = blocks
    edge, apk, bp, tile = bufs
    nr = 2 * lanes(c)
    # op(A) = A^T read in place touches one cache line per p for only 6 values: pack it
    # when the block is reused across many B slivers (measured 63 -> 75 GFLOP/s at 1024^3)
    pa = ta != 0 and j1 - j0 >= 16 * nr
    rs, ks = (1, lda) if ta else (lda, 1)  # op(A)[i, p] = a[ao + i*rs + p*ks]
    for jc in range(j0, j1, nc):
        nb = min(nc, j1 - jc)
        for pc in range(0, k, kc):
            kb = min(kc, k - pc)
            # columns of op(B) are rows of B^T: stored B (K, N) is read transposed
            _pack(b, bo, ldb, 1 - tb, jc, nb, pc, kb, nr, bp)
            for ic in range(i0, i1, mc):
                mb = min(mc, i1 - ic)
                _rows(a, ao + ic * rs + pc * ks, rs, ks, pa, apk, bp, mb, nb, kb,
                      c, co + ic * ldc + jc, ldc, accumulate or pc > 0, edge, tile, bias, jc,
                      use_bias)


@jit(inline="always")
def _rows(a, ao, rs, ks, pa, apk, bp, mb, nb, kb, c, co, ldc, acc, edge, tile, bias, bc, ub):
    """One mb x kb block of op(A) (op(A)[i, p] = a[ao + i*rs + p*ks]) times the B panel,
    packed into apk first when pa."""
    if pa:
        for g in range((mb + MR - 1) // MR):
            _pack_rows(a, ao + g * MR * rs, rs, ks, min(MR, mb - g * MR), kb, apk, g * MR * kb)
    src, so, gs, r_s, k_s = (apk, 0, kb, 1, MR) if pa else (a, ao, rs, rs, ks)
    _macro(src, so, gs, r_s, k_s, bp, mb, nb, kb, c, co, ldc, acc, edge, tile, bias, bc, ub)


@jit
def _span(n, parts, i, align):
    """[start, end) of part i when n is cut into `parts` pieces at multiples of `align`."""
    units = (n + align - 1) // align
    return min(n, units * i // parts * align), min(n, units * (i + 1) // parts * align)


GEMM_BLOCK = Entry(_gemm_block, "aiiiaiiiaiiiiiiiTBbab")
# gemm_call(fn, <_gemm_block's arguments>): inside kernels, _gemm_block's work through its
# compiled entry at address fn = GEMM_BLOCK.address(dtype), an indirect call, not a copy
gemm_call = GEMM_BLOCK.caller()


@jit(parallel=True)
def gemm_parallel(fn, a, lda, ta, b, ldb, tb, c, s, m, n, k, tm, tn, workers, blocks,
                  accumulate, bias, use_bias):
    """c (s, m, n) = op(a) @ op(b) for s stacked matrices, each cut into a tm x tn grid;
    fn: GEMM_BLOCK.address(c.dtype).

    The s*tm*tn blocks are dealt out in contiguous runs to `workers` prange iterations (one
    per thread, each with its own scratch), so each thread owns whole blocks of C.
    """
    nr = 2 * lanes(c)
    total = s * tm * tn
    for w in prange(workers):
        bufs = _buffers(c, m, n, k, ta, blocks)
        for t in range(w * total // workers, (w + 1) * total // workers):
            i, block = t // (tm * tn), t % (tm * tn)
            i0, i1 = _span(m, tm, block // tn, MR)
            j0, j1 = _span(n, tn, block % tn, nr)
            gemm_call(fn, a, i * (a.size // s), lda, ta, b, i * (b.size // s), ldb, tb,
                      c, i * m * n, n, i0, i1, j0, j1, k, blocks, bufs, accumulate, bias,
                      use_bias)


@jit
def gemm_serial(fn, a, lda, ta, b, ldb, tb, c, s, m, n, k, blocks, accumulate, bias,
                use_bias):
    """c (s, m, n) = op(a) @ op(b) (+ bias) for s stacked matrices, on the calling thread."""
    bufs = _buffers(c, m, n, k, ta, blocks)
    for i in range(s):
        gemm_call(fn, a, i * (a.size // s), lda, ta, b, i * (b.size // s), ldb, tb,
                  c, i * m * n, n, 0, m, 0, n, k, blocks, bufs, accumulate, bias, use_bias)


def padded_bias(bias, n, dtype):
    """The bias the kernels read: n values then two vectors of zeros (a tile's loads never
    leave the array), or an empty array without a bias."""
    pad = 2 * VEC_BITS // (8 * np.dtype(dtype).itemsize)
    out = np.zeros(n + pad if bias is not None else 0, dtype)
    if bias is not None:
        out[:n] = bias
    return out


SUM_ROWS_BLOCK = 256  # rows per partial sum: fixed, so the result is the same for any thread count


@jit(parallel=True)
def sum_rows(x):
    """Column sums of x (N, C): blocks of SUM_ROWS_BLOCK rows are summed in parallel into
    their own partial rows (whole rows added with vector adds), then the partials in order."""
    n, c = x.shape
    blocks = max(1, -(-n // SUM_ROWS_BLOCK))
    partial = np.zeros((blocks, c), x.dtype)
    for g in prange(blocks):
        acc = partial[g]
        for i in range(g * SUM_ROWS_BLOCK, min(n, (g + 1) * SUM_ROWS_BLOCK)):
            row = x[i]
            for j in range(c):
                acc[j] += row[j]
    out = partial[0].copy()
    for g in range(1, blocks):
        out += partial[g]
    return out

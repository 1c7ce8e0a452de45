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

import os

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from ops.numba_config import jit


def _vector_bits():
    """512 when the CPU Numba compiles for has AVX-512F, else 256 (AVX2). ENGINE_VEC_BITS=256
    forces the narrower kernels (tests run both). Numba's cache does not key on this value:
    use a fresh NUMBA_CACHE_DIR when forcing it. Measured on the README's Ice Lake Xeon: an
    FMA-only loop ran 170 GFLOP/s per core with 512-bit vectors, 110 with 256-bit."""
    forced = os.environ.get("ENGINE_VEC_BITS", "").strip()
    if forced:
        if forced not in ("256", "512"):
            raise ValueError(f"ENGINE_VEC_BITS={forced!r}: use 256 or 512")
        return int(forced)
    features = numba.config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    name = numba.config.CPU_NAME or llvm.get_host_cpu_name()
    return 512 if "+avx512f" in features.split(",") and name != "generic" else 256


VEC_BITS = _vector_bits()
MR = 6  # rows of the micro-tile; NR = 2 vectors (32 or 16 float32 columns, 16 or 8 float64)
# Block sizes (elements), read by the Python wrappers at call time so tests can shrink them:
# an MC x KC block of A (~120 KB float32) stays in L2, a KC x NR sliver of B in L1.
MC, KC, NC = 120, 256, 1024


# ---- SIMD vocabulary: one VEC_BITS vector of float32 (16 or 8 lanes) or float64 (8 or 4) ----

class Vec(types.Type):
    """A VEC_BITS-wide LLVM vector of `dtype` as a Numba type (lives in one register)."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = VEC_BITS // dtype.bitwidth
        super().__init__(name=f"Vec({dtype}x{self.lanes})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        scalar = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(scalar, fe_type.lanes))


def _element_ptr(context, builder, aryty, ary, idx):
    """Pointer to ary[idx] for a 1-D contiguous array (no wraparound, no bounds check)."""
    return builder.gep(context.make_array(aryty)(context, builder, ary).data, [idx])


@intrinsic
def lanes(typingctx, ary):
    """Number of vector lanes for ary's dtype, as a compile-time constant."""
    n = VEC_BITS // ary.dtype.bitwidth

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, n)
    return types.intp(ary), codegen


@intrinsic
def vzero(typingctx, ary):
    """A vector of zeros of ary's dtype."""
    vt = Vec(ary.dtype)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vt), None)
    return vt(ary), codegen


@intrinsic
def vload(typingctx, ary, idx):
    """ary[idx : idx + lanes] as a vector (unaligned load)."""
    vt = Vec(ary.dtype)

    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], *args)
        vptr = builder.bitcast(ptr, context.get_value_type(vt).as_pointer())
        return builder.load(vptr, align=1)
    return vt(ary, idx), codegen


@intrinsic
def vstore(typingctx, ary, idx, vec):
    """ary[idx : idx + lanes] = vec (unaligned store)."""
    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], args[0], args[1])
        vptr = builder.bitcast(ptr, context.get_value_type(sig.args[2]).as_pointer())
        builder.store(args[2], vptr, align=1)
        return context.get_dummy_value()
    return types.none(ary, idx, vec), codegen


@intrinsic
def vsplat(typingctx, ary, idx):
    """ary[idx] broadcast to every lane."""
    vt = Vec(ary.dtype)

    def codegen(context, builder, sig, args):
        x = builder.load(_element_ptr(context, builder, sig.args[0], *args))
        ty = context.get_value_type(vt)
        one = builder.insert_element(ir.Constant(ty, ir.Undefined), x, ir.IntType(32)(0))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), vt.lanes), [0] * vt.lanes)
        return builder.shuffle_vector(one, ir.Constant(ty, ir.Undefined), zeros)
    return vt(ary, idx), codegen


@intrinsic
def vfma(typingctx, x, y, acc):
    """x * y + acc, lane-wise, fused (one vfmadd instruction)."""
    def codegen(context, builder, sig, args):
        ty = context.get_value_type(sig.return_type)
        name = f"llvm.fma.v{acc.lanes}f{acc.dtype.bitwidth}"
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3), name)
        return builder.call(fma, args)
    return acc(x, y, acc), codegen


@intrinsic
def vadd(typingctx, x, y):
    """x + y, lane-wise."""
    def codegen(context, builder, sig, args):
        return builder.fadd(*args)
    return x(x, y), codegen


def _shuffle_steps(lanes):
    """The shuffle network that transposes `lanes` vectors of `lanes` elements: a list of
    steps (pairs, low mask, high mask). Step d (1, 2, 4, ...) swaps bit d of the row index
    with bit d of the column index: rows i and i + d (i without bit d) become
    lo[j] = x[j] if j has no bit d else y[j - d], hi[j] = x[j + d] if not else y[j];
    after every step, vector i is column i (checked by tests/ops/test_matmul_kernels.py)."""
    steps, d = [], 1
    while d < lanes:
        pairs = [(i, i + d) for i in range(lanes) if not i & d]
        lo = [j if not j & d else lanes + j - d for j in range(lanes)]
        hi = [j + d if not j & d else lanes + j for j in range(lanes)]
        steps.append((pairs, lo, hi))
        d *= 2
    return steps


@intrinsic
def vtranspose(typingctx, src, so, ld, dst, do, dld):
    """dst[do + p*dld + q] = src[so + q*ld + p] for p, q < lanes: one square block
    transposed in registers (lanes loads, a shuffle network, lanes stores)."""
    vt = Vec(src.dtype)

    def codegen(context, builder, sig, args):
        ty = context.get_value_type(vt)
        ints = [context.cast(builder, x, t, types.intp)
                for x, t in zip(args[1:3] + args[4:], sig.args[1:3] + sig.args[4:])]
        (s_off, s_ld, d_off, d_ld), n = ints, vt.lanes
        src_ptr = _element_ptr(context, builder, sig.args[0], args[0], s_off)
        rows = [builder.load(builder.bitcast(builder.gep(src_ptr, [builder.mul(s_ld, s_ld.type(q))]),
                                             ty.as_pointer()), align=1) for q in range(n)]
        for pairs, lo, hi in _shuffle_steps(n):
            out = list(rows)
            for i, j in pairs:
                x, y = rows[i], rows[j]
                out[i] = builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(ir.IntType(32), n), lo))
                out[j] = builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(ir.IntType(32), n), hi))
            rows = out
        dst_ptr = _element_ptr(context, builder, sig.args[3], args[3], d_off)
        for p, row in enumerate(rows):
            ptr = builder.gep(dst_ptr, [builder.mul(d_ld, d_ld.type(p))])
            builder.store(row, builder.bitcast(ptr, ty.as_pointer()), align=1)
        return context.get_dummy_value()
    return types.none(src, so, ld, dst, do, dld), codegen


# ---- micro-kernel, packing, blocking ----

@jit
def _micro(kc, a, ao, rs, ks, bp, bo, c, co, ldc, acc):
    """c[co + r*ldc + j] (+)= sum_p a[ao + r*rs + p*ks] * bp[bo + p*NR + j], r < MR, j < NR.

    A is read in place through strides (rs, ks) or from a packed edge group (rs=1, ks=MR).
    With acc the tile is added to C, else it overwrites C (the first KC block: no zeroing).
    The 6 x 2 vectors of the tile are twelve locals (registers); per p: two loads of B,
    six broadcasts of A, twelve FMAs.
    """
    w = lanes(c)
    nr = 2 * w
    c00 = c01 = c10 = c11 = c20 = c21 = vzero(c)
    c30 = c31 = c40 = c41 = c50 = c51 = vzero(c)
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
    Full groups of r = 2 vectors are copied (trans) or transposed (not trans) in vectors.
    """
    w = lanes(buf)
    for g in range((nx + r - 1) // r):
        base, n = g * kc * r, min(r, nx - g * r)
        first = so + (x0 + g * r) * ld + p0 if not trans else so + p0 * ld + x0 + g * r
        done = 0
        if n == r == 2 * w:
            if trans:  # each p: the group's r columns are contiguous in src
                for p in range(kc):
                    vstore(buf, base + p * r, vload(src, first + p * ld))
                    vstore(buf, base + p * r + w, vload(src, first + p * ld + w))
                done = kc
            else:  # w x w blocks transposed in registers, two per w values of p
                for p in range(0, kc - w + 1, w):
                    vtranspose(src, first + p, ld, buf, base + p * r, r)
                    vtranspose(src, first + w * ld + p, ld, buf, base + p * r + w, r)
                done = kc // w * w
        _pack_rest(src, first, ld, trans, n, done, kc, r, buf, base)


@jit
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


@jit
def _macro(a, ao, gs, rs, ks, bp, mb, nb, kb, c, co, ldc, acc, edge, tile):
    """c[co + i*ldc + j] (+)= A block (mb x kb; group at row i: a[ao + i*gs]) @ B panel (kb x nb).

    j outer, i inner: one B sliver (kb x NR) stays in L1 while A streams from L2. A last
    group of fewer than MR rows is packed zero-padded into `edge`; edge tiles are computed
    into `tile` and only their valid part is put into C. One call site of the micro-kernel
    keeps compile time down (each call site is a separately optimised inlined copy).
    """
    nr = 2 * lanes(c)
    full = mb // MR * MR
    if full < mb:
        _pack_rows(a, ao + full * gs, rs, ks, mb - full, kb, edge, 0)
    for j in range(0, nb, nr):
        cols = min(nr, nb - j)
        for i in range(0, mb, MR):
            rows = min(MR, mb - i)
            src, so, r_s, k_s = (a, ao + i * gs, rs, ks) if i < full else (edge, 0, 1, MR)
            whole = rows == MR and cols == nr
            dst, do, ld, dacc = (c, co + i * ldc + j, ldc, acc) if whole else (tile, 0, nr, False)
            _micro(kb, src, so, r_s, k_s, bp, j * kb, dst, do, ld, dacc)
            if not whole:
                _put_tile(tile, rows, cols, c, co + i * ldc + j, ldc, acc)


@jit
def _put_tile(tile, rows, cols, c, co, ldc, acc):
    """c[co + r*ldc + q] (+)= tile[r*NR + q] for r < rows, q < cols (an edge tile)."""
    nr = 2 * lanes(c)
    for r in range(rows):
        for q in range(cols):
            if acc:
                c[co + r * ldc + q] += tile[r * nr + q]
            else:
                c[co + r * ldc + q] = tile[r * nr + q]


@jit
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


@jit
def _gemm_block(a, ao, lda, ta, b, bo, ldb, tb, c, co, ldc, i0, i1, j0, j1, k, blocks, bufs):
    """C[i0:i1, j0:j1] = op(A)[i0:i1, :] @ op(B)[:, j0:j1] for one matrix, on one thread.

    a, b, c are flat; ao, bo, co are the offsets of this matrix in them (batched calls);
    bufs come from `_buffers`, allocated once per thread.
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
                      c, co + ic * ldc + jc, ldc, pc > 0, edge, tile)


@jit
def _rows(a, ao, rs, ks, pa, apk, bp, mb, nb, kb, c, co, ldc, acc, edge, tile):
    """One mb x kb block of op(A) (op(A)[i, p] = a[ao + i*rs + p*ks]) times the B panel,
    packed into apk first when pa."""
    if pa:
        for g in range((mb + MR - 1) // MR):
            _pack_rows(a, ao + g * MR * rs, rs, ks, min(MR, mb - g * MR), kb, apk, g * MR * kb)
    src, so, gs, r_s, k_s = (apk, 0, kb, 1, MR) if pa else (a, ao, rs, rs, ks)
    _macro(src, so, gs, r_s, k_s, bp, mb, nb, kb, c, co, ldc, acc, edge, tile)


@jit
def _span(n, parts, i, align):
    """[start, end) of part i when n is cut into `parts` pieces at multiples of `align`."""
    units = (n + align - 1) // align
    return min(n, units * i // parts * align), min(n, units * (i + 1) // parts * align)


@jit(parallel=True)
def gemm_parallel(a, lda, ta, b, ldb, tb, c, s, m, n, k, tm, tn, workers, blocks):
    """c (s, m, n) = op(a) @ op(b) for s stacked matrices, each cut into a tm x tn grid.

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
            _gemm_block(a, i * (a.size // s), lda, ta, b, i * (b.size // s), ldb, tb,
                        c, i * m * n, n, i0, i1, j0, j1, k, blocks, bufs)


@jit
def gemm_serial(a, lda, ta, b, ldb, tb, c, s, m, n, k, blocks):
    """c (s, m, n) = op(a) @ op(b) for s stacked matrices, on the calling thread."""
    bufs = _buffers(c, m, n, k, ta, blocks)
    for i in range(s):
        _gemm_block(a, i * (a.size // s), lda, ta, b, i * (b.size // s), ldb, tb,
                    c, i * m * n, n, 0, m, 0, n, k, blocks, bufs)

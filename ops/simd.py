"""SIMD vocabulary for Numba kernels: an LLVM vector as a Numba type and a few intrinsics.

Numba turns off LLVM's SLP vectoriser and only vectorises innermost loops; a register tile
written as scalar locals stays scalar, and a max() reduction does not vectorise without the
'nnan' flag (which breaks NaN tests). `Vec` is one VEC_BITS-wide vector of float32 or
float64 that lives in a register; the intrinsics below load, store, broadcast, fuse
multiply-adds, take lane-wise maxima, reduce a vector to a scalar, transpose a square
block in registers, mask a vector's tail and take a float32 vector's exp. The matmul
micro-kernel (ops/matmul_cpu.py) and the attention kernels' row softmax
(ops/attention_cpu.py) are written with them.
"""

import os

import numba
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model


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
        rows = [builder.load(builder.bitcast(
                    builder.gep(src_ptr, [builder.mul(s_ld, s_ld.type(q))]), ty.as_pointer()),
                    align=1) for q in range(n)]
        for pairs, lo, hi in _shuffle_steps(n):
            out = list(rows)
            for i, j in pairs:
                x, y = rows[i], rows[j]
                mask = ir.VectorType(ir.IntType(32), n)
                out[i] = builder.shuffle_vector(x, y, ir.Constant(mask, lo))
                out[j] = builder.shuffle_vector(x, y, ir.Constant(mask, hi))
            rows = out
        dst_ptr = _element_ptr(context, builder, sig.args[3], args[3], d_off)
        for p, row in enumerate(rows):
            ptr = builder.gep(dst_ptr, [builder.mul(d_ld, d_ld.type(p))])
            builder.store(row, builder.bitcast(ptr, ty.as_pointer()), align=1)
        return context.get_dummy_value()
    return types.none(src, so, ld, dst, do, dld), codegen




@intrinsic
def vfill(typingctx, ary, x):
    """The scalar x (of ary's dtype) in every lane."""
    vt = Vec(ary.dtype)

    def codegen(context, builder, sig, args):
        ty = context.get_value_type(vt)
        val = context.cast(builder, args[1], sig.args[1], vt.dtype)
        one = builder.insert_element(ir.Constant(ty, ir.Undefined), val, ir.IntType(32)(0))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), vt.lanes), [0] * vt.lanes)
        return builder.shuffle_vector(one, ir.Constant(ty, ir.Undefined), zeros)
    return vt(ary, x), codegen


@intrinsic
def vmax(typingctx, x, y):
    """Lane-wise maximum (llvm.maxnum: a NaN lane gives the other operand)."""
    def codegen(context, builder, sig, args):
        ty = context.get_value_type(sig.return_type)
        name = f"llvm.maxnum.v{x.lanes}f{x.dtype.bitwidth}"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty, ty]), name)
        return builder.call(fn, args)
    return x(x, y), codegen


def _reduce(kind):
    def impl(typingctx, x):
        def codegen(context, builder, sig, args):
            ty = context.get_value_type(x)
            scalar = context.get_value_type(x.dtype)
            suffix = f"v{x.lanes}f{x.dtype.bitwidth}"
            if kind == "max":
                fn = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(scalar, [ty]),
                    f"llvm.vector.reduce.fmax.{suffix}")
                return builder.call(fn, args)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(scalar, [scalar, ty]),
                f"llvm.vector.reduce.fadd.{suffix}")
            return builder.call(fn, [ir.Constant(scalar, -0.0), args[0]], fastmath=("reassoc",))
        return x.dtype(x), codegen
    return impl


vreduce_max = intrinsic(_reduce("max"))
vreduce_max.__doc__ = "The largest lane (NaN lanes are skipped, as by llvm.maxnum)."
vreduce_add = intrinsic(_reduce("add"))
vreduce_add.__doc__ = ("The sum of the lanes, added as a tree (reassociated: log2(lanes) "
                       "dependent adds, not lanes - 1; the same order every call, so "
                       "deterministic). A NaN or inf lane propagates.")


# exp_f32's constants (ops/fastexp.py), for the vector form below
_LOG2E, _LN2_HI, _LN2_LO = 1.44269504088896341, 0.693359375, -2.12194440e-4
_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
             1.6666665459e-1, 5.0000001201e-1)


@intrinsic
def vexp_below_zero(typingctx, x):
    """exp(x) lane-wise for a float32 vector of x <= 0 (attention's shifted scores), flushed to
    0 below -87 and NaN kept: the lanes' values of attention_cpu._exp_below_zero, with
    ops.fastexp.exp_f32's method (Cody-Waite reduction, the Cephes degree-6 polynomial,
    2**n from exponent bits; n >= -126 once x >= -87, so one scale factor is exact).
    Loops calling the scalar exp_f32 were left to LLVM's loop vectoriser, which picked
    8-lane vectors and a scalar tail: ~7 cycles per element in a 64-key softmax row."""
    if not (isinstance(x, Vec) and x.dtype == types.float32):
        raise numba.errors.TypingError("vexp_below_zero takes a float32 Vec")

    def codegen(context, builder, sig, args):
        (v,) = args
        ty = v.type
        n_lanes = ty.count
        ity = ir.VectorType(ir.IntType(32), n_lanes)

        def splat(c):
            return ir.Constant(ty, [ir.Constant(ir.FloatType(), c)] * n_lanes)

        def call(name, *ops_):
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ty, [ty] * len(ops_)),
                f"llvm.{name}.v{n_lanes}f32")
            return builder.call(fn, list(ops_))

        xc = call("minnum", call("maxnum", v, splat(-87.0)), splat(0.0))
        n = call("floor", call("fma", xc, splat(_LOG2E), splat(0.5)))
        r = call("fma", n, splat(-_LN2_HI), xc)
        r = call("fma", n, splat(-_LN2_LO), r)
        p = splat(_EXP_POLY[0])
        for c in _EXP_POLY[1:]:
            p = call("fma", p, r, splat(c))
        p = builder.fadd(call("fma", p, builder.fmul(r, r), r), splat(1.0))
        e = builder.add(builder.fptosi(n, ity), ir.Constant(ity, [127] * n_lanes))
        e = builder.shl(e, ir.Constant(ity, [23] * n_lanes))
        res = builder.fmul(p, builder.bitcast(e, ty))
        res = builder.select(builder.fcmp_ordered(">", v, splat(-87.0)), res, splat(0.0))
        return builder.select(builder.fcmp_unordered("uno", v, v), v, res)
    return x(x), codegen


def _broadcast(builder, value, vty):
    """The scalar LLVM value in every lane of vector type vty."""
    one = builder.insert_element(ir.Constant(vty, ir.Undefined), value, ir.IntType(32)(0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vty.count), [0] * vty.count)
    return builder.shuffle_vector(one, ir.Constant(vty, ir.Undefined), zeros)


@intrinsic
def vtail(typingctx, v, k, fill):
    """v with lanes k, k+1, ... replaced by the scalar fill (lanes below k kept)."""
    def codegen(context, builder, sig, args):
        vec, k_val, fill_val = args
        ity = ir.VectorType(ir.IntType(64), vec.type.count)
        below = builder.icmp_signed(
            "<", ir.Constant(ity, list(range(vec.type.count))),
            _broadcast(builder, context.cast(builder, k_val, sig.args[1], types.int64), ity))
        fill_vec = _broadcast(builder, context.cast(builder, fill_val, sig.args[2], v.dtype),
                              vec.type)
        return builder.select(below, vec, fill_vec)
    return v(v, k, fill), codegen

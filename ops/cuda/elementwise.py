"""Generic elementwise kernels of the cuda namespace, built from one table per arity.

Adding a standard function is one table line: `"sin": lambda T: lambda x: math.sin(x)`
(T is the Numba type the op computes in, for typed constants: `T(0.5)`, never a bare
float literal, which is float64 on a GPU). A factory compiles one kernel per (op, dtype).

Layout: every operand is a strided view (base buffer, offset, strides in elements) broadcast
to the output shape; dimensions that are contiguous for every operand are merged first, so
a same-shape contiguous op is one dimension. Each thread handles the elements i, i + grid
size, ... of the C-order output (grid-stride loop); `_at` turns i into an operand's offset.
"""

import math

import numpy as np
from numba import cuda

from ops.cuda import launch
from ops.cuda.launch import MAXDIM, NUMBA_TYPES, factory
from ops.devices import get_device
from ops.registry import register


def _exp(T):
    big = math.log(np.finfo(np.float32).max) if T is NUMBA_TYPES["float32"] else 709.78
    # The guard keeps the simulator (Python's math.exp raises on overflow) like the GPU;
    # written so that NaN fails it and reaches math.exp (exp(NaN) is NaN, as numpy's).
    return lambda x: T(math.inf) if x >= T(big) else math.exp(x)


def _log(T):
    return lambda x: math.log(x) if x > T(0) else (T(-math.inf) if x == T(0) else T(math.nan))


def _sqrt(T):
    return lambda x: math.sqrt(x) if x >= T(0) else T(math.nan)


def _gelu(T):
    c, k = T(math.sqrt(2.0 / math.pi)), T(0.044715)
    return lambda x: T(0.5) * x * (T(1) + math.tanh(c * (x + k * x * x * x)))


def _gelu_backward(T):
    c, k = T(math.sqrt(2.0 / math.pi)), T(0.044715)

    def f(x, dy):
        t = math.tanh(c * (x + k * x * x * x))
        return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * c
                     * (T(1) + T(3) * k * x * x))
    return f


def _max(T):
    return lambda x, y: x if (x > y or math.isnan(x)) else y


def _min(T):
    return lambda x, y: x if (x < y or math.isnan(x)) else y


def _device(make, T):
    """The device function `make(T)` builds (for helpers used inside other table entries)."""
    return cuda.jit(device=True, inline=True)(make(T))


def _integral(T, fn):
    """x -> T(fn(x)) for an integer-valued fn (math.floor gives an int64): nan, inf and
    values of 2**52 or more (integers already) are returned as they are."""
    g = cuda.jit(device=True, inline=True)(fn)
    return lambda x: T(g(x)) if abs(x) < T(4503599627370496.0) else x


def _round(T):
    """Half to even, as numpy."""
    def f(x):
        r = T(math.floor(x))
        d = x - r
        if d > T(0.5) or (d == T(0.5) and math.fmod(r, T(2)) != T(0)):
            r += T(1)
        return r
    return _integral(T, f)


def _sigmoid(T):
    exp = _device(_exp, T)
    return lambda x: T(1) / (T(1) + exp(-x))


def _log1p(T):
    log = _device(_log, T)
    return lambda x: math.log1p(x) if x > T(-1) else log(x + T(1))


def _log2(T):
    log = _device(_log, T)
    return lambda x: log(x) * T(1.4426950408889634)  # 1 / ln 2


def _logaddexp(T):
    exp, mx = _device(_exp, T), _device(_max, T)
    return lambda x, y: (mx(x, y) + math.log1p(exp(-abs(x - y))) if not math.isnan(x - y)
                         else mx(x, y))


# One line per standard function: name -> (lambda T: device function). T: compute type.
UNARY = {
    "negative": lambda T: lambda x: -x,
    "positive": lambda T: lambda x: x,
    "abs": lambda T: lambda x: -x if x < T(0) else x,
    "exp": _exp,
    "expm1": lambda T: lambda x: math.expm1(x),
    "log": _log,
    "log1p": _log1p,
    "log2": _log2,
    "sqrt": _sqrt,
    "square": lambda T: lambda x: x * x,
    "tanh": lambda T: lambda x: math.tanh(x),
    "sin": lambda T: lambda x: math.sin(x),
    "cos": lambda T: lambda x: math.cos(x),
    "tan": lambda T: lambda x: math.tan(x),
    "sinh": lambda T: lambda x: math.sinh(x),
    "cosh": lambda T: lambda x: math.cosh(x),
    "asin": lambda T: lambda x: math.asin(x),
    "acos": lambda T: lambda x: math.acos(x),
    "atan": lambda T: lambda x: math.atan(x),
    "floor": lambda T: _integral(T, lambda x: math.floor(x)),
    "ceil": lambda T: _integral(T, lambda x: math.ceil(x)),
    "trunc": lambda T: _integral(T, lambda x: math.floor(x) if x >= T(0) else math.ceil(x)),
    "round": _round,
    "sign": lambda T: lambda x: T(1) if x > T(0) else (T(-1) if x < T(0) else x),
    "sigmoid": _sigmoid,
    "isfinite": lambda T: lambda x: not (math.isnan(x) or math.isinf(x)),
    "isnan": lambda T: lambda x: math.isnan(x),
    "isinf": lambda T: lambda x: math.isinf(x),
    "logical_not": lambda T: lambda x: not x,
    "bitwise_invert": lambda T: lambda x: ~x,
    "copy": lambda T: lambda x: x,
    "gelu": _gelu,
}

BINARY = {
    "add": lambda T: lambda x, y: x + y,
    "subtract": lambda T: lambda x, y: x - y,
    "multiply": lambda T: lambda x, y: x * y,
    "divide": lambda T: lambda x, y: x / y,
    "floor_divide": lambda T: lambda x, y: x // y,
    "remainder": lambda T: lambda x, y: x % y,
    "pow": lambda T: lambda x, y: x ** y,
    "maximum": _max,
    "minimum": _min,
    "atan2": lambda T: lambda x, y: math.atan2(x, y),
    "hypot": lambda T: lambda x, y: math.hypot(x, y),
    "copysign": lambda T: lambda x, y: math.copysign(x, y),
    "logaddexp": _logaddexp,
    "equal": lambda T: lambda x, y: x == y,
    "not_equal": lambda T: lambda x, y: x != y,
    "less": lambda T: lambda x, y: x < y,
    "less_equal": lambda T: lambda x, y: x <= y,
    "greater": lambda T: lambda x, y: x > y,
    "greater_equal": lambda T: lambda x, y: x >= y,
    "logical_and": lambda T: lambda x, y: x and y,
    "logical_or": lambda T: lambda x, y: x or y,
    "logical_xor": lambda T: lambda x, y: x != y,
    "bitwise_and": lambda T: lambda x, y: x & y,
    "bitwise_or": lambda T: lambda x, y: x | y,
    "bitwise_xor": lambda T: lambda x, y: x ^ y,
    "gelu_backward": _gelu_backward,
}
COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
               "logical_and", "logical_or", "logical_xor"}
PREDICATES = {"isfinite", "isnan", "isinf", "logical_not"}


@cuda.jit(device=True, inline=True)
def _at(i, offset, shape, strides, nd):
    """The element offset of C-order index i of `shape` in a view with these strides."""
    for d in range(nd - 1, -1, -1):
        n = shape[d]
        q = i // n
        offset += (i - q * n) * strides[d]
        i = q
    return offset


@cuda.jit(device=True, inline=True)
def _at_contiguous(i, offset, shape, strides, nd):
    return offset + i


@cuda.jit(device=True, inline=True)
def _at_scalar(i, offset, shape, strides, nd):
    return offset


# How a kernel finds an operand's element i: any strides (_at: a division per dimension),
# one contiguous run (offset + i: no division), or one value broadcast (offset). A kernel is
# compiled per pattern of modes (the common same-shape contiguous op takes no division).
GENERAL, CONTIGUOUS, SCALAR = 0, 1, 2
_INDEX = {GENERAL: _at, CONTIGUOUS: _at_contiguous, SCALAR: _at_scalar}


def modes(nd, views):
    """The index mode of each planned view (base, offset, strides) of an nd-dim plan."""
    return tuple(SCALAR if not any(st[:nd]) else CONTIGUOUS if nd == 1 and st[0] == 1
                 else GENERAL for _, _, st in views)


@factory
def unary_kernel(op, dtype, am=GENERAL):
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(UNARY[op](T))
    ia = _INDEX[am]

    @launch.jit
    def kernel(out, a, ao, ast, shape, nd, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[i] = f(T(a[ia(i, ao, shape, ast, nd)]))
    return kernel


@factory
def binary_kernel(op, dtype, am=GENERAL, bm=GENERAL):
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(BINARY[op](T))
    ia, ib = _INDEX[am], _INDEX[bm]

    @launch.jit
    def kernel(out, a, ao, ast, b, bo, bst, shape, nd, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[i] = f(T(a[ia(i, ao, shape, ast, nd)]), T(b[ib(i, bo, shape, bst, nd)]))
    return kernel


@factory
def where_kernel(dtype, cm=GENERAL, am=GENERAL, bm=GENERAL):
    T = NUMBA_TYPES[dtype]
    ic, ia, ib = _INDEX[cm], _INDEX[am], _INDEX[bm]

    @launch.jit
    def kernel(out, c, co, cst, a, ao, ast, b, bo, bst, shape, nd, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            if c[ic(i, co, shape, cst, nd)]:
                out[i] = T(a[ia(i, ao, shape, ast, nd)])
            else:
                out[i] = T(b[ib(i, bo, shape, bst, nd)])
    return kernel


@factory
def copy_kernel(dtype, dm=GENERAL, sm=GENERAL):
    """dst view = src view cast to dtype (dst's): setitem, contiguous copies, astype."""
    T = NUMBA_TYPES[dtype]
    idst, isrc = _INDEX[dm], _INDEX[sm]

    @launch.jit
    def kernel(dst, do, dst_strides, src, so, sst, shape, nd, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            dst[idst(i, do, shape, dst_strides, nd)] = T(src[isrc(i, so, shape, sst, nd)])
    return kernel


@factory
def fill_kernel(dtype):
    @launch.jit
    def kernel(out, value, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[i] = value
    return kernel


@factory
def arange_kernel(dtype):
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(out, start, step, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[i] = start + T(i) * step
    return kernel


def broadcast_strides(view, shape):
    """view's strides for `shape` (numpy broadcasting: stride 0 along broadcast axes)."""
    pad = len(shape) - view.ndim
    if pad < 0:
        raise ValueError(f"cannot broadcast shape {view.shape} to {shape}")
    strides = []
    for n, (m, s) in zip(shape, [(1, 0)] * pad + list(zip(view.shape, view.strides))):
        if m != n and m != 1:
            raise ValueError(f"cannot broadcast shape {view.shape} to {tuple(shape)}")
        strides.append(0 if m == 1 else s)
    return strides


def plan(shape, views):
    """Launch arguments for views broadcast to `shape`: the merged, padded shape tuple, its
    number of dimensions, and per view (base, offset, strides tuple)."""
    dims = [n for n in shape if n != 1]
    per = [[s for n, s in zip(shape, broadcast_strides(v, shape)) if n != 1] for v in views]
    # merge axis d into d+1 when every operand steps over d as one run of d+1
    d = len(dims) - 2
    while d >= 0:
        if all(st[d] == st[d + 1] * dims[d + 1] for st in per):
            dims[d:d + 2] = [dims[d] * dims[d + 1]]
            for st in per:
                st[d:d + 2] = [st[d + 1]]
        d -= 1
    if len(dims) > MAXDIM:
        raise ValueError(f"cuda elementwise: at most {MAXDIM} non-mergeable dimensions, "
                         f"got shape {tuple(shape)}")
    nd = len(dims)
    pad = [1] * (MAXDIM - nd)
    padded = tuple(dims + pad)
    return padded, nd, [(v.base, v.offset, tuple(st + [0] * (MAXDIM - nd)))
                        for v, st in zip(views, per)]


def launch_grid(n):
    return launch.blocks(n), launch.THREADS


# ---- GELU's launchers: the table's gelu entries, through the namespace ---------------------

def _cuda_namespace(op, *arrays):
    """The cuda namespace, once every array is checked to be a cuda array (looked up through
    the device registry: the namespace itself imports this module)."""
    device = get_device("cuda")
    for a in arrays:
        if not device.owns(a):
            raise TypeError(f"{op}: expects cuda arrays, got {type(a).__name__}")
    return device.xp


def gelu_cuda(x):
    return _cuda_namespace("gelu", x).gelu(x)


def gelu_backward_cuda(x, dy):
    return _cuda_namespace("gelu_backward", x, dy).gelu_backward(x, dy)


register("gelu", "cuda", gelu_cuda)
register("gelu_backward", "cuda", gelu_backward_cuda)

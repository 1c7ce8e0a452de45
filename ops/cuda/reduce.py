"""Reductions of the cuda namespace (sum, mean, max, any, argmax, cumulative_sum, ...) over
any axes, built from one table, and the block reduction every row kernel shares.

Layout: the input view is permuted so the reduced axes come last (a view), giving O outputs
of R elements each in C order (element (o, r) is linear index o * R + r). Long rows: one
block per output (grid-stride over outputs), its threads striding over the R elements, then
`block_reduce` combines the partial results. Short rows: a thread per output. Adding a
reduction is one table line: name -> (combine(acc, x) factory, identity factory).
The namespace functions below are re-exported by ops/cuda/namespace.py.
"""

import builtins
import math

import numpy as np
from numba import cuda

from ops.cuda import deferred, launch
from ops.cuda import elementwise as ew
from ops.cuda.cudaarray import empty, namespace
from ops.cuda.elementwise import _at, _max, _min
from ops.cuda.launch import NUMBA_TYPES, factory


def _lowest(dtype):
    return -math.inf if np.dtype(dtype).kind == "f" else np.iinfo(np.dtype(dtype)).min


def _highest(dtype):
    return math.inf if np.dtype(dtype).kind == "f" else np.iinfo(np.dtype(dtype)).max


# name -> (combine factory (T -> f(acc, x)), identity (dtype name -> value))
REDUCTIONS = {
    "sum": (lambda T: lambda a, x: a + x, lambda dt: 0),
    "prod": (lambda T: lambda a, x: a * x, lambda dt: 1),
    "max": (_max, _lowest),
    "min": (_min, _highest),
    # any / all: over a bool array accumulated as uint8 (the namespace converts first)
    "any": (lambda T: lambda a, x: a | x, lambda dt: 0),
    "all": (lambda T: lambda a, x: a & x, lambda dt: 1),
}


WARP = 32
_FULL_MASK = 0xFFFFFFFF
_SHUFFLED = ("float32", "float64", "int32", "int64")  # the types shfl_down_sync moves


@factory
def block_reduce(op, dtype, nt, shuffles=True):
    """A device function reduce(part, t, value) -> reduction `op` (a REDUCTIONS entry) of
    the values of a block's nt threads (a power of two), every thread getting it; part: a
    shared array of nt values of `dtype`. With WARP_SHUFFLE (real GPUs) and `shuffles`, each
    warp reduces in registers with shfl_down_sync and one value per warp goes through shared
    memory; otherwise (the simulator has no shuffles, nor have types under 32 bits) a
    shared-memory tree. A fixed order: deterministic. The block's threads must all call it."""
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(REDUCTIONS[op][0](T))
    shuffle = shuffles and launch.WARP_SHUFFLE and nt >= WARP and dtype in _SHUFFLED
    identity = T(REDUCTIONS[op][1](dtype))

    @cuda.jit(device=True, inline=True)
    def reduce(part, t, v):
        if shuffle:  # registers within each warp, then one value per warp in shared memory
            off = WARP // 2
            while off > 0:
                v = f(v, cuda.shfl_down_sync(_FULL_MASK, v, off))
                off //= 2
            if t % WARP == 0:
                part[t // WARP] = v
            cuda.syncthreads()
            if t < WARP:
                v = part[t] if t < nt // WARP else identity
                off = WARP // 2
                while off > 0:
                    v = f(v, cuda.shfl_down_sync(_FULL_MASK, v, off))
                    off //= 2
                if t == 0:
                    part[0] = v
        else:  # shared-memory tree
            part[t] = v
            cuda.syncthreads()
            s = nt // 2
            while s > 0:
                if t < s:
                    part[t] = f(part[t], part[t + s])
                cuda.syncthreads()
                s //= 2
        cuda.syncthreads()
        r = part[0]
        cuda.syncthreads()  # (part is free again for the caller's next reduction)
        return r
    return reduce


@factory
def reduce_kernel(op, dtype):
    """Reduction `op` accumulating in `dtype`; THREADS threads per block (a power of two)."""
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(REDUCTIONS[op][0](T))
    nt = launch.THREADS
    # The namespace's reductions keep the shared-memory tree on every device: the order of
    # their sums (and so their last bits on a GPU) is the one they always had.
    combine = block_reduce(op, dtype, nt, False)

    @launch.jit
    def kernel(out, a, ao, ast, shape, nd, R, O, identity):
        part = cuda.shared.array(nt, T)
        t = cuda.threadIdx.x
        for o in range(cuda.blockIdx.x, O, cuda.gridDim.x):
            acc = identity
            for r in range(t, R, nt):
                acc = f(acc, T(a[_at(o * R + r, ao, shape, ast, nd)]))
            acc = combine(part, t, acc)
            if t == 0:
                out[o] = acc
    return kernel


@factory
def thread_reduce_kernel(op, dtype):
    """Reduction `op` with one thread per output (grid-stride over outputs), looping over its
    R elements: for many short rows (no shared memory, no synchronisation)."""
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(REDUCTIONS[op][0](T))

    @launch.jit
    def kernel(out, a, ao, ast, shape, nd, R, O, identity):
        for o in range(cuda.grid(1), O, cuda.gridsize(1)):
            acc = identity
            for r in range(R):
                acc = f(acc, T(a[_at(o * R + r, ao, shape, ast, nd)]))
            out[o] = acc
    return kernel


# A block per output when rows are long and few (R >= BLOCK_MIN_R and R >= 32 * O), else a
# thread per output. Tests set BLOCK_MIN_R to 1 to send every reduction through the blocks.
BLOCK_MIN_R = 64 if launch.SIMULATOR else 512


def launch_reduce(op, dtype, out, args, R, O):
    """Run reduction `op` into out (O,) over args (a, offset, strides, shape, nd)."""
    identity = dtype.type(REDUCTIONS[op][1](dtype))
    if R >= BLOCK_MIN_R and R >= 32 * O:
        grid = builtins.min(O, launch.MAX_BLOCKS)
        reduce_kernel(op, dtype.name)[grid, launch.THREADS](out, *args, R, O, identity)
    else:
        threads = launch.THREADS
        grid = launch.blocks(O, threads)
        thread_reduce_kernel(op, dtype.name)[grid, threads](out, *args, R, O, identity)


@factory
def scan_kernel(op, dtype, include_initial):
    """Inclusive scan (cumulative_sum / cumulative_prod) of each of O rows of R elements into
    out (O, R + include_initial): one thread per row, in order."""
    T = NUMBA_TYPES[dtype]
    f = cuda.jit(device=True, inline=True)(REDUCTIONS[op][0](T))
    extra = 1 if include_initial else 0

    @launch.jit
    def kernel(out, a, ao, ast, shape, nd, R, O, identity):
        for o in range(cuda.grid(1), O, cuda.gridsize(1)):
            acc = identity
            if include_initial:
                out[o * (R + 1)] = acc
            for r in range(R):
                acc = f(acc, T(a[_at(o * R + r, ao, shape, ast, nd)]))
                out[o * (R + extra) + r + extra] = acc
    return kernel


@factory
def argmax_kernel(dtype, largest):
    """Index of the first max (min when not largest) of each of O rows of R elements; one
    thread per row (argmax is for evaluation, off the training path)."""
    T = NUMBA_TYPES[dtype]

    @launch.jit
    def kernel(out, a, ao, ast, shape, nd, R, O):
        for o in range(cuda.grid(1), O, cuda.gridsize(1)):
            best = T(a[_at(o * R, ao, shape, ast, nd)])
            at = 0
            for r in range(1, R):
                x = T(a[_at(o * R + r, ao, shape, ast, nd)])
                if not math.isnan(best) and (math.isnan(x) or (x > best if largest else x < best)):
                    best, at = x, r
            out[o] = at
    return kernel


# ---- the namespace's reductions and scans --------------------------------------------------

class _Namespace:
    """ops.cuda.namespace, looked up at call time (it imports this module)."""

    def __getattr__(self, name):
        return getattr(namespace(), name)


ns = _Namespace()


def _axes(x, axis):
    if axis is None:
        return tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -x.ndim <= a < builtins.max(x.ndim, 1):
            raise ValueError(f"axis {a} is out of range for an array of shape {x.shape}")
    return tuple(sorted(a % builtins.max(x.ndim, 1) for a in axes))


def _reduce(op, x, axis, keepdims, dtype, out_dtype=None):
    axes = _axes(x, axis)
    kept = [d for d in range(x.ndim) if d not in axes]
    v = ns.permute_dims(x, tuple(kept + list(axes)))
    O = math.prod(x.shape[d] for d in kept)
    R = math.prod(x.shape[d] for d in axes)
    if R == 0 and op in ("max", "min"):
        raise ValueError(f"{op}: zero-size reduction over axes {axes} of shape {x.shape}")
    out = empty((O,), out_dtype or dtype)
    if O:
        shape, nd, [(b, o, st)] = ew.plan(v.shape, [v])
        launch_reduce(op, dtype, out.flat(), (b, o, st, shape, nd), R, O)
    final = tuple(1 if d in axes else n for d, n in enumerate(x.shape)) if keepdims \
        else tuple(x.shape[d] for d in kept)
    return ns.reshape(out, final)


def _sum_dtype(x, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    return x.dtype if x.dtype.kind == "f" else ns.int64 if x.dtype.kind in "ib" else np.dtype(
        "uint64")


def sum(x, /, *, axis=None, dtype=None, keepdims=False):
    dtype = _sum_dtype(x, dtype)
    axes = _axes(x, axis)
    if not keepdims and dtype == x.dtype and dtype.kind == "f" and x.is_contiguous() \
            and x.size and len(axes) < x.ndim and axes == tuple(range(len(axes))):
        # column sums of a contiguous (R, C) view (a bias gradient): queued, and run with
        # the step's other column sums as one launch (ops/cuda/deferred.py)
        return deferred.colsum(x, empty(x.shape[len(axes):], dtype))
    return _reduce("sum", ns.astype(x, dtype, copy=False), axis, keepdims, dtype)


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    dtype = _sum_dtype(x, dtype)
    return _reduce("prod", ns.astype(x, dtype, copy=False), axis, keepdims, dtype)


def mean(x, /, *, axis=None, keepdims=False):
    dtype = x.dtype if x.dtype.kind == "f" else ns.float64
    total = sum(x, axis=axis, dtype=dtype, keepdims=keepdims)
    count = math.prod(x.shape[d] for d in _axes(x, axis))
    return ns.divide(total, float(count) if count else math.nan)


def max(x, /, *, axis=None, keepdims=False):
    return _reduce("max", x, axis, keepdims, x.dtype)


def min(x, /, *, axis=None, keepdims=False):
    return _reduce("min", x, axis, keepdims, x.dtype)


def any(x, /, *, axis=None, keepdims=False):
    """The kernel reads the bool array as uint8 and writes bool: one launch."""
    flags = ns.not_equal(x, 0) if x.dtype != ns.bool else x
    return _reduce("any", flags, axis, keepdims, ns.uint8, ns.bool)


def all(x, /, *, axis=None, keepdims=False):
    flags = ns.not_equal(x, 0) if x.dtype != ns.bool else x
    return _reduce("all", flags, axis, keepdims, ns.uint8, ns.bool)


def count_nonzero(x, /, *, axis=None, keepdims=False):
    return sum(ns.astype(ns.not_equal(x, 0), ns.int64), axis=axis, keepdims=keepdims)


def _scan(op, x, axis, dtype, include_initial):
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"cumulative_{op}: axis is required for {x.ndim}-d arrays")
        x, axis = ns.reshape(x, (-1,)), 0
    axis %= builtins.max(x.ndim, 1)
    dtype = _sum_dtype(x, dtype)
    v = ns.moveaxis(x, axis, -1)
    O, R = math.prod(v.shape[:-1]), v.shape[-1]
    extra = 1 if include_initial else 0
    out = empty(v.shape[:-1] + (R + extra,), dtype)
    if out.size:
        shape, nd, [(b, o, st)] = ew.plan(v.shape, [v]) if v.size else ((1,) * ew.MAXDIM, 0,
                                                                        [(v.base, 0, (0,) * 8)])
        identity = dtype.type(REDUCTIONS[op][1](dtype))
        scan_kernel(op, dtype.name, builtins.bool(include_initial))[ew.launch_grid(O)](
            out.flat(), b, o, st, shape, nd, R, O, identity)
    return ns.moveaxis(out, -1, axis)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    return _scan("sum", x, axis, dtype, include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    return _scan("prod", x, axis, dtype, include_initial)


def _arg(x, axis, keepdims, largest):
    if axis is None:
        flat = _arg(ns.reshape(x, (-1,)), 0, False, largest)
        return ns.reshape(flat, (1,) * x.ndim) if keepdims else flat
    axis %= x.ndim
    kept = [d for d in range(x.ndim) if d != axis]
    v = ns.permute_dims(x, tuple(kept + [axis]))
    O, R = math.prod(x.shape[d] for d in kept), x.shape[axis]
    if R == 0:
        raise ValueError(f"argmax/argmin: empty axis {axis} of shape {x.shape}")
    out = empty((O,), ns.int64)
    if O:
        shape, nd, [(b, o, st)] = ew.plan(v.shape, [v])
        argmax_kernel(x.dtype.name, largest)[ew.launch_grid(O)](out.flat(), b, o, st, shape,
                                                                  nd, R, O)
    shape = list(v.shape[:-1])
    if keepdims:
        shape.insert(axis, 1)
    return ns.reshape(out, tuple(shape))


def argmax(x, /, *, axis=None, keepdims=False):
    return _arg(x, axis, keepdims, True)


def argmin(x, /, *, axis=None, keepdims=False):
    return _arg(x, axis, keepdims, False)



"""Reductions and scans of the cuda namespace (sum, mean, max, any, argmax, cumulative_sum,
...) over any axes: the axes are moved last (a view) and the kernels of ops/cuda/reduce.py
run over the O outputs of R elements each. Re-exported by ops/cuda/namespace.py."""

import builtins
import math

import numpy as np

from ops.cuda import deferred
from ops.cuda import elementwise as ew
from ops.cuda import reduce as rd
from ops.cuda.array import empty, namespace


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
        rd.launch_reduce(op, dtype, out.flat(), (b, o, st, shape, nd), R, O)
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
        identity = dtype.type(rd.REDUCTIONS[op][1](dtype))
        rd.scan_kernel(op, dtype.name, builtins.bool(include_initial))[ew.launch_grid(O)](
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
        rd.argmax_kernel(x.dtype.name, largest)[ew.launch_grid(O)](out.flat(), b, o, st, shape,
                                                                  nd, R, O)
    shape = list(v.shape[:-1])
    if keepdims:
        shape.insert(axis, 1)
    return ns.reshape(out, tuple(shape))


def argmax(x, /, *, axis=None, keepdims=False):
    return _arg(x, axis, keepdims, True)


def argmin(x, /, *, axis=None, keepdims=False):
    return _arg(x, axis, keepdims, False)



"""The "cuda" device's array namespace: the subset of the Python array API standard (2024.12)
the engine uses (ops/README.md, "The array namespace a device provides") and the standard's
common elementwise functions, over CudaArray views of Numba device buffers.

Elementwise functions come from the tables in ops/cuda/elementwise.py and reductions from
ops/cuda/reduce.py: a new standard function is one line there (and, for an unusual dtype
rule, one line in _UNARY_KEEP / _UNARY_FLOAT below). Dtype promotion is numpy 2's (Python
scalars are weak: `float32_array * 2.0` stays float32). Nothing here copies between host and
device except `asarray` of host data, which goes through ops.to_device and is counted.
"""

import builtins
import math
import sys

import numpy as np
from numba import cuda  # noqa: F401  (loaded by ops.cuda before this module)

from ops.cuda import deferred
from ops.cuda import elementwise as ew
from ops.cuda.cudaarray import CudaArray, CudaDevice, bind_namespace, c_strides, empty
from ops.cuda.indexing import getitem, nonzero, setitem, take, take_along_axis  # noqa: F401
from ops.cuda.matmul import matmul_batched
from ops.cuda.reduce import (  # noqa: F401
    _axes,
    all,
    any,
    argmax,
    argmin,
    count_nonzero,
    cumulative_prod,
    cumulative_sum,
    max,
    mean,
    min,
    prod,
    sum,
)

__array_api_version__ = "2024.12"
Device = CudaDevice
bool = np.dtype("bool")  # the standard's name (shadows the builtin here)
int8, int16, int32, int64 = (np.dtype(n) for n in ("int8", "int16", "int32", "int64"))
uint8 = np.dtype("uint8")
float32, float64 = np.dtype("float32"), np.dtype("float64")
inf, nan, pi, e = math.inf, math.nan, math.pi, math.e
finfo, iinfo = np.finfo, np.iinfo
newaxis = None

_KINDS = {"bool": "b", "signed integer": "i", "unsigned integer": "u", "integral": "iu",
          "real floating": "f", "numeric": "iuf"}


def isdtype(dtype, kind):
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    if not isinstance(kind, str):
        return np.dtype(dtype) == np.dtype(kind)
    return np.dtype(dtype).kind in _KINDS[kind]


def result_type(*args):
    return np.result_type(*[a.dtype if isinstance(a, CudaArray) else a for a in args])


def _dtype(dtype, default):
    return np.dtype(default if dtype is None else dtype)


# ---- creation ----------------------------------------------------------------------------

def full(shape, fill_value, *, dtype=None, device=None):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if dtype is None:
        dtype = np.result_type(type(fill_value)) if not isinstance(fill_value, float) \
            else float64
    out = empty(shape, dtype)
    n = out.size
    if n:
        value = np.dtype(dtype).type(fill_value)
        ew.fill_kernel(out.dtype.name)[ew.launch_grid(n)](out.flat(), value, n)
    return out


def zeros(shape, *, dtype=None, device=None):
    return full(shape, 0, dtype=_dtype(dtype, float64))


def ones(shape, *, dtype=None, device=None):
    return full(shape, 1, dtype=_dtype(dtype, float64))


def empty_like(x, *, dtype=None, device=None):
    return empty(x.shape, _dtype(dtype, x.dtype))


def zeros_like(x, *, dtype=None, device=None):
    return full(x.shape, 0, dtype=_dtype(dtype, x.dtype))


def ones_like(x, *, dtype=None, device=None):
    return full(x.shape, 1, dtype=_dtype(dtype, x.dtype))


def full_like(x, fill_value, *, dtype=None, device=None):
    return full(x.shape, fill_value, dtype=_dtype(dtype, x.dtype))


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    if stop is None:
        start, stop = 0, start
    n = builtins.max(0, math.ceil((stop - start) / step))
    ints = builtins.all(isinstance(v, int) for v in (start, stop, step))
    out = empty((n,), _dtype(dtype, int64 if ints else float64))
    if n:
        t = out.dtype.type  # start and step in the output dtype (no float64 in float32)
        ew.arange_kernel(out.dtype.name)[ew.launch_grid(n)](out.flat(), t(start), t(step), n)
    return out


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    """A cuda array from a cuda array (no copy unless asked or the dtype changes), a Python
    scalar (made on the device: no transfer) or host data (one counted copy)."""
    if isinstance(obj, CudaArray):
        if dtype is not None and np.dtype(dtype) != obj.dtype:
            return astype(obj, dtype)
        if not copy:
            return obj
        # a contiguous copy is queued: the engine copies each parameter's gradient, and the
        # queue runs them as one launch (ops/cuda/deferred.py)
        if obj.size and obj.is_contiguous():
            return deferred.copy(obj, empty(obj.shape, obj.dtype))
        return _copy(obj, obj.dtype)
    if isinstance(obj, int | float | np.generic) and not isinstance(obj, np.ndarray):
        if isinstance(obj, np.generic):
            dtype = obj.dtype if dtype is None else dtype
            obj = obj.item()
        default = bool if isinstance(obj, builtins.bool) else int64 if isinstance(obj, int) \
            else float64
        return full((), obj, dtype=_dtype(dtype, default))
    from ops.devices import to_device  # the cuda device is registered before any call
    return to_device(np.asarray(obj, dtype=dtype), "cuda")


def astype(x, dtype, /, *, copy=True, device=None):
    dtype = np.dtype(dtype)
    if dtype == x.dtype and not copy:
        return x
    return _copy(x, dtype)


def _copy(x, dtype):
    out = empty(x.shape, dtype)
    _assign(out, x)
    return out


def _assign(dst, src):
    """dst view[...] = src view (broadcast), cast to dst's dtype."""
    n = dst.size
    if n:
        dst.before_write()
        shape, nd, views = ew.plan(dst.shape, [dst, src])
        [(db, do, dst_), (sb, so, sst)] = views
        kernel = ew.copy_kernel(dst.dtype.name, *ew.modes(nd, views))
        kernel[ew.launch_grid(n)](db, do, dst_, sb, so, sst, shape, nd, n)


def contiguous(x):
    """x itself when C-contiguous, else a C-contiguous copy."""
    return x if x.is_contiguous() else _copy(x, x.dtype)


# ---- elementwise ------------------------------------------------------------------------
_UNARY_KEEP = {"negative", "positive", "abs", "square", "sign", "floor", "ceil", "trunc",
               "round", "bitwise_invert", "copy"}  # the result keeps the input's dtype


def _unary(op):
    def fn(x, /):
        if op in ew.PREDICATES:
            compute, out_dtype = x.dtype, bool
        elif op in _UNARY_KEEP or x.dtype.kind == "f":
            compute = out_dtype = x.dtype
        else:  # exp of an integer array: float64, as numpy
            compute = out_dtype = float64
        if op in ("floor", "ceil", "trunc", "round") and x.dtype.kind in "iub":
            return _copy(x, x.dtype)
        out = empty(x.shape, out_dtype)
        n = out.size
        if n:
            shape, nd, views = ew.plan(x.shape, [x])
            [(b, o, st)] = views
            kernel = ew.unary_kernel(op, compute.name, *ew.modes(nd, views))
            kernel[ew.launch_grid(n)](out.flat(), b, o, st, shape, nd, n)
        return out
    fn.__name__ = op
    return fn


def _binary(op):
    def fn(x1, x2, /):
        if not isinstance(x1, CudaArray) and not isinstance(x2, CudaArray):
            raise TypeError(f"{op}: needs at least one cuda array, got {type(x1).__name__} "
                            f"and {type(x2).__name__}")
        compute = result_type(x1, x2)
        if op == "multiply" and isinstance(x1, CudaArray) and isinstance(x2, float | int) \
                and not isinstance(x2, builtins.bool) and x1.dtype.kind == "f" \
                and compute == x1.dtype and x1.size and x1.is_contiguous():
            # queued: a step's gradient scalings (clipping) run as one launch
            return deferred.scale(x1, x2, empty(x1.shape, compute))
        if op == "divide" and compute.kind in "iub":
            compute = float64
        out_dtype = bool if op in ew.COMPARISONS else compute
        a, b = _operand(x1, compute), _operand(x2, compute)
        shape = _broadcast(op, a, b)
        out = empty(shape, out_dtype)
        n = out.size
        if n:
            shape, nd, views = ew.plan(shape, [a, b])
            [(ab, ao, ast), (bb, bo, bst)] = views
            kernel = ew.binary_kernel(op, compute.name, *ew.modes(nd, views))
            kernel[ew.launch_grid(n)](out.flat(), ab, ao, ast, bb, bo, bst, shape, nd, n)
        return out
    fn.__name__ = op
    return fn


_CONSTANTS = {}  # (dtype, value) -> 0-d array: scalar operands, made once (never returned)


def _broadcast(op, *arrays):
    try:
        return np.broadcast_shapes(*[a.shape for a in arrays])
    except ValueError:
        shapes = " and ".join(str(a.shape) for a in arrays)
        raise ValueError(f"{op}: shapes {shapes} cannot be broadcast together") from None


def _operand(x, dtype):
    if isinstance(x, CudaArray):
        return x
    if isinstance(x, np.ndarray):
        raise TypeError("a host ndarray cannot be mixed with cuda arrays; move it first "
                        "(ops.to_device)")
    key = (dtype.name, type(x).__name__, x)
    found = _CONSTANTS.get(key)
    if found is None:
        if len(_CONSTANTS) > 1024:
            _CONSTANTS.clear()
        found = _CONSTANTS[key] = full((), x, dtype=dtype)
    return found


# Every entry of the tables becomes a namespace function here (grep the tables for the list).
for _op in ew.UNARY:
    globals()[_op] = _unary(_op)
for _op in ew.BINARY:
    globals()[_op] = _binary(_op)
bitwise_not = globals()["bitwise_invert"]


def where(condition, x1, x2, /):
    dtype = result_type(x1, x2)
    c, a, b = condition, _operand(x1, dtype), _operand(x2, dtype)
    shape = _broadcast("where", c, a, b)
    out = empty(shape, dtype)
    n = out.size
    if n:
        shape, nd, views = ew.plan(shape, [c, a, b])
        [(cb, co, cst), (ab, ao, ast), (bb, bo, bst)] = views
        kernel = ew.where_kernel(dtype.name, *ew.modes(nd, views))
        kernel[ew.launch_grid(n)](out.flat(), cb, co, cst, ab, ao, ast, bb, bo, bst, shape, nd, n)
    return out


def clip(x, /, min=None, max=None):  # noqa: F811  (the standard's parameter names)
    if min is not None:
        x = globals()["maximum"](x, min)
    if max is not None:
        x = globals()["minimum"](x, max)
    return x


# ---- shape --------------------------------------------------------------------------------

def reshape(x, /, shape, *, copy=None):
    shape = (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)
    if shape.count(-1) == 1:
        known = math.prod(n for n in shape if n != -1)
        shape = tuple(x.size // known if n == -1 and known else n for n in shape)
    if math.prod(shape) != x.size:
        raise ValueError(f"cannot reshape array of size {x.size} into shape {shape}")
    x = contiguous(x) if not copy else _copy(x, x.dtype)
    return x.view(shape, c_strides(shape))


def permute_dims(x, /, axes):
    axes = tuple(a % builtins.max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute_dims: axes {axes} do not fit shape {x.shape}")
    return x.view(tuple(x.shape[a] for a in axes), tuple(x.strides[a] for a in axes))


def matrix_transpose(x, /):
    return permute_dims(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def moveaxis(x, source, destination, /):
    order = [d for d in range(x.ndim) if d != source % x.ndim]
    order.insert(destination % x.ndim, source % x.ndim)
    return permute_dims(x, tuple(order))


def flip(x, /, *, axis=None):
    axes = _axes(x, axis)
    return getitem(x, tuple(slice(None, None, -1) if d in axes else slice(None)
                            for d in range(x.ndim)))


def roll(x, /, shift, *, axis=None):
    """numpy's roll: elements shifted along `axis` (None: the flattened array), wrapping."""
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, axis=0), x.shape)
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    for s, a in zip(shifts, axes):
        a %= x.ndim
        n = x.shape[a]
        s = int(s) % n if n else 0
        if s:
            lead = (slice(None),) * a
            x = concat([getitem(x, lead + (slice(n - s, None),)),
                        getitem(x, lead + (slice(0, n - s),))], axis=a)
    return x


def tile(x, /, repetitions):
    """numpy's tile: x repeated `repetitions` times along each axis (copies outermost)."""
    reps = (repetitions,) if isinstance(repetitions, int) else tuple(repetitions)
    ndim = builtins.max(x.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    x = reshape(x, (1,) * (ndim - x.ndim) + x.shape)
    spread = tuple(n for pair in zip(reps, x.shape) for n in pair)  # (r0, d0, r1, d1, ...)
    lifted = reshape(x, tuple(n for d in x.shape for n in (1, d)))
    return reshape(broadcast_to(lifted, spread), tuple(r * d for r, d in zip(reps, x.shape)))


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    n_cols = n_rows if n_cols is None else n_cols
    rows = reshape(arange(n_rows), (n_rows, 1))
    hit = globals()["equal"](globals()["add"](rows, k), reshape(arange(n_cols), (1, n_cols)))
    return astype(hit, _dtype(dtype, float64))


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True):
    dtype = _dtype(dtype, float64)
    div = (num - 1) if endpoint else num
    step = (stop - start) / div if div > 0 else 0.0
    out = astype(globals()["add"](globals()["multiply"](arange(num, dtype=float64), step),
                                  float(start)), dtype)
    if endpoint and num > 1:
        setitem(out, (num - 1,), stop)
    return out


def broadcast_to(x, /, shape):
    shape = tuple(shape)
    return x.view(shape, tuple(ew.broadcast_strides(x, shape)))


def broadcast_arrays(*arrays):
    shape = np.broadcast_shapes(*[a.shape for a in arrays])
    return [broadcast_to(a, shape) for a in arrays]


def expand_dims(x, /, *, axis=0):
    axis = axis % (x.ndim + 1)
    return x.view(x.shape[:axis] + (1,) + x.shape[axis:], x.strides[:axis] + (0,)
                  + x.strides[axis:])


def squeeze(x, /, axis):
    axes = _axes(x, axis)
    if builtins.any(x.shape[a] != 1 for a in axes):
        raise ValueError(f"squeeze: axes {axes} of shape {x.shape} are not all 1")
    keep = [d for d in range(x.ndim) if d not in axes]
    return x.view(tuple(x.shape[d] for d in keep), tuple(x.strides[d] for d in keep))


def concat(arrays, /, *, axis=0):
    arrays = list(arrays)
    if axis is None:
        arrays, axis = [reshape(a, (-1,)) for a in arrays], 0
    axis %= arrays[0].ndim
    dtype = result_type(*arrays)
    shape = list(arrays[0].shape)
    shape[axis] = builtins.sum(a.shape[axis] for a in arrays)
    out = empty(tuple(shape), dtype)
    start = 0
    for a in arrays:
        key = (slice(None),) * axis + (slice(start, start + a.shape[axis]), Ellipsis)
        setitem(out, key, a)
        start += a.shape[axis]
    return out


def stack(arrays, /, *, axis=0):
    return concat([expand_dims(a, axis=axis) for a in arrays], axis=axis)


def matmul(x1, x2, /):
    """x1 @ x2 with the standard's broadcasting; 1-D operands promoted as numpy does."""
    a = expand_dims(x1, axis=0) if x1.ndim == 1 else x1
    b = expand_dims(x2, axis=-1) if x2.ndim == 1 else x2
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {x1.shape} and {x2.shape} do not align")
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = reshape(broadcast_to(a, batch + a.shape[-2:]), (-1,) + a.shape[-2:])
    b3 = reshape(broadcast_to(b, batch + b.shape[-2:]), (-1,) + b.shape[-2:])
    y = reshape(matmul_batched(a3, b3, False, False), batch + (a.shape[-2], b.shape[-1]))
    if x2.ndim == 1:
        y = squeeze(y, -1)
    if x1.ndim == 1:
        y = squeeze(y, -2 if x2.ndim != 1 else -1)
    return y


bind_namespace(sys.modules[__name__])  # CudaArray's operators, indexing and matmul call it

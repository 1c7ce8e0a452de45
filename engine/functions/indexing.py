"""Indexing and selection: getitem (basic and integer-array indexing), take_along_axis and
gather, scatter_add, one_hot, where and masked_fill, tril and triu; each Function with its
public function.

Integer indices, like every non-differentiable array argument, must live on the device of the
tensor they index (the one exception: getitem moves a host integer index explicitly, and the
copy is counted)."""

import numpy as np

import ops
from engine.autograd import Function, is_tensor, make_tensor
from engine.functions.args import (
    _any,
    _array_arg,
    _device,
    _int_array,
    axis_index,
    broadcast_shapes,
    unbroadcast,
)


class GetItem(Function):
    name, formula = "getitem", "d(a[i]) = scatter-add dy into zeros at i"

    @staticmethod
    def forward(ctx, a, index):
        _check_index_dtypes(index)
        index = _complete(index, a.ndim)
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            found = _single_array_axis(index, a.ndim)
            if found is None:
                return a[index]
            k, axis = found  # index[k], an integer array, picks along `axis`: a take
            xp, idx = ops.array_namespace(a), index[k]
            y = xp.take(a, xp.reshape(idx, (-1,)), axis=axis)
            return xp.reshape(y, a.shape[:axis] + idx.shape + a.shape[axis + 1:])
        except IndexError as err:
            raise IndexError(f"getitem: {err} (tensor of shape {a.shape})") from None

    @staticmethod
    def backward(ctx, g):
        if not _is_basic(ctx.index):  # repeated integer indices accumulate
            return ops.kernel_for("scatter_add", g)(ctx.shape, ctx.index, g, ctx.dtype)
        out = ops.array_namespace(g).zeros(ctx.shape, dtype=ctx.dtype, device=g.device)
        out[ctx.index] = g  # slices and ints pick each element at most once
        return out


def _check_index_dtypes(index):
    """IndexError, as numpy's, for an index array that is neither integer nor boolean."""
    for item in index if isinstance(index, tuple) else (index,):
        if _is_array(item) and not ops.array_namespace(item).isdtype(
                item.dtype, ("integral", "bool")):
            raise IndexError(f"getitem: arrays used as indices must be of integer (or boolean) "
                             f"type, got {item.dtype}")


def _complete(index, ndim):
    """The index as a tuple that names every axis: numpy's implicit trailing `...` written out
    (the array API standard requires it)."""
    items = index if isinstance(index, tuple) else (index,)
    named = sum(_axes_used(i) for i in items)
    if any(i is Ellipsis for i in items) or named >= ndim:
        return items
    return items + (Ellipsis,)


def _axes_used(item):
    """How many axes of the indexed array one index item consumes."""
    if item is None:
        return 0
    if _is_array(item) and ops.array_namespace(item).isdtype(item.dtype, "bool"):
        return item.ndim
    return 1


def _is_array(item):
    return hasattr(item, "shape") and hasattr(item, "dtype")


def _single_array_axis(index, ndim):
    """(its position in `index`, the axis it picks along) of the one integer array in
    `index` when every other item is a full slice or `...` (a[:, idx] style, which the
    standard spells `take`); None for any other index."""
    arrays = [k for k, i in enumerate(index) if _is_array(i) and i.ndim > 0]
    if len(arrays) != 1 or any(i is None for i in index):
        return None
    k = arrays[0]
    if not ops.array_namespace(index[k]).isdtype(index[k].dtype, "integral"):
        return None  # a boolean mask selects; it is not a list of positions (True is not 1)
    if _axes_used(index[k]) != 1 or not all(
            i is Ellipsis or (isinstance(i, slice) and i == slice(None))
            for j, i in enumerate(index) if j != k):
        return None
    ellipsis = [j for j, i in enumerate(index) if i is Ellipsis]
    if len(ellipsis) > 1 or len(index) - len(ellipsis) > ndim:
        return None  # an error (two `...`, too many indices): numpy's own indexing says so
    # after the `...`, which stands for ndim - (len(index) - 1) axes, item k is axis
    # k - 1 + ndim - (len(index) - 1)
    return k, (k if not ellipsis or k < ellipsis[0] else k + ndim - len(index))


def _is_basic(index):
    """True for basic indexing (ints, slices, None, ...), which never repeats an element."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | np.integer | slice | type(None)) or i is Ellipsis
               for i in items)


def _index_item(i, device):
    """One index item for getitem: Tensors give their data, integer arrays move to `device`."""
    if is_tensor(i):
        i = i.data
    if isinstance(i, np.ndarray | list) and device is not ops.CPU:
        i = ops.to_device(np.asarray(i), device)  # an explicit, counted host -> device copy
    return i


def getitem(a, index):
    device = _device(a)
    if isinstance(index, tuple):
        index = tuple(_index_item(i, device) for i in index)
    else:
        index = _index_item(index, device)
    return GetItem.apply(a, index=index)


def _full_index(idx, axis):
    """numpy-style index tuple that puts idx's elements along `axis` of the target array:
    idx on `axis`, a broadcast arange on every other axis."""
    xp = ops.array_namespace(idx)
    return tuple(idx if d == axis else
                 xp.reshape(xp.arange(n, device=idx.device),
                            tuple(n if e == d else 1 for e in range(idx.ndim)))
                 for d, n in enumerate(idx.shape))


class TakeAlongAxis(Function):
    name, formula = "take_along_axis", "d(a[idx] along axis) = scatter-add dy at idx"

    @staticmethod
    def forward(ctx, a, idx, axis):
        ctx.save_for_backward(idx)
        ctx.shape, ctx.axis, ctx.dtype = a.shape, axis, a.dtype
        return ops.array_namespace(a).take_along_axis(a, idx, axis=axis)

    @staticmethod
    def backward(ctx, g):
        index = _full_index(ctx.saved[0], ctx.axis)
        return ops.kernel_for("scatter_add", g)(ctx.shape, index, g, ctx.dtype)


class ScatterAdd(Function):
    name, formula = "scatter_add", "d(a + scatter(src at idx)) = dy, dy[idx]"

    @staticmethod
    def forward(ctx, a, src, idx, axis):
        ctx.save_for_backward(idx)
        ctx.axis = axis
        added = ops.kernel_for("scatter_add", a)(a.shape, _full_index(idx, axis), src, a.dtype)
        return a + added

    @staticmethod
    def backward(ctx, g):
        idx = ctx.saved[0]
        dsrc = (ops.array_namespace(g).take_along_axis(g, idx, axis=ctx.axis)
                if ctx.needs_input_grad[1] else None)
        return g, dsrc


def _along_axis_index(op, a, indices, axis, need_same=()):
    idx = _int_array(op, "indices", indices, _device(a))
    axis = axis_index(op, axis, a.shape)
    if idx.ndim != a.ndim or any(idx.shape[d] != a.shape[d] for d in range(a.ndim)
                                 if d != axis or d in need_same):
        raise ValueError(f"{op}: indices {idx.shape} must match the tensor's shape {a.shape} "
                         f"except along axis {axis}")
    n = a.shape[axis]
    if _any((idx < -n) | (idx >= n)):
        raise IndexError(f"{op}: an index is out of range for axis {axis} of size {n}")
    return (idx % n if n else idx), axis


def take_along_axis(a, indices, axis):
    """numpy's take_along_axis: a[..., indices[...], ...] along `axis`; differentiable in a."""
    idx, axis = _along_axis_index("take_along_axis", a, indices, axis)
    return TakeAlongAxis.apply(a, idx=idx, axis=axis)


def gather(a, axis, index):
    """PyTorch's gather(input, dim, index): take_along_axis with the axis first."""
    idx, axis = _along_axis_index("gather", a, index, axis)
    return TakeAlongAxis.apply(a, idx=idx, axis=axis)


def scatter_add(a, axis, index, src):
    """PyTorch's scatter_add: a copy of a with src[i] added at a[..., index[i], ...] along
    `axis` (index and src of one shape, matching a off the axis); repeats accumulate."""
    if not is_tensor(src) or tuple(src.shape) != tuple(getattr(index, "shape", ())):
        raise ValueError(f"scatter_add: index {getattr(index, 'shape', None)} and src "
                         f"{getattr(src, 'shape', None)} must be arrays of one shape")
    idx, axis = _along_axis_index("scatter_add", a, index, axis)
    return ScatterAdd.apply(a, src, idx=idx, axis=axis)


def one_hot(indices, num_classes, dtype="int64"):
    """Integer indices (...) as one-hot rows (..., num_classes) of `dtype`; no gradient."""
    device = _device(indices)
    idx = _int_array("one_hot", "indices", indices, device)
    if _any((idx < 0) | (idx >= num_classes)):
        raise IndexError(f"one_hot: an index is out of range for {num_classes} classes")
    xp = device.xp
    hot = idx[..., None] == xp.arange(num_classes, device=idx.device)
    return make_tensor(xp.astype(hot, device.dtype(ops.dtype_name(dtype, device))))


class Where(Function):
    name, formula = "where", "d(where(c, a, b)) = where(c, dy, 0), where(c, 0, dy)"

    @staticmethod
    def forward(ctx, cond, a, b):
        xp = ops.array_namespace(a)
        if cond.dtype != xp.bool:
            cond = xp.astype(cond, xp.bool)
        try:
            y = xp.where(cond, a, b)
        except ValueError:
            raise ValueError(f"where: condition {cond.shape}, a {a.shape} and b {b.shape} "
                             "do not broadcast") from None
        ctx.save_for_backward(cond)
        ctx.shapes = a.shape, b.shape
        return y

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved
        xp = ops.array_namespace(g)
        return (None, unbroadcast(xp.where(cond, g, 0.0), ctx.shapes[0]),
                unbroadcast(xp.where(cond, 0.0, g), ctx.shapes[1]))


def where(cond, a, b):
    """Elements of a where cond is true, else of b; cond is a boolean array (not differentiated)."""
    cond = _array_arg("where", cond, _device(a, b))
    return Where.apply(make_tensor(cond), a, b)


def masked_fill(a, mask, value):
    """a with `value` wherever the boolean `mask` is true."""
    device = _device(a)
    m = _array_arg("masked_fill", mask, device)
    if m.dtype != device.xp.bool:
        raise TypeError(f"masked_fill: mask must be boolean, got {m.dtype}; pass a bool mask "
                        f"(e.g. mask == 1)")
    try:
        broadcast_shapes(m.shape, a.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask {m.shape} does not broadcast to a "
                         f"{a.shape}") from None
    return where(m, value, a)


def _triangle(op, a, k, keep_lower):
    if a.ndim < 2:
        raise ValueError(f"{op}: needs at least 2 dimensions, got shape {a.shape}")
    xp, device = ops.array_namespace(a.data), a.data.device
    rows = xp.reshape(xp.arange(a.shape[-2], device=device), (-1, 1))
    cols = xp.arange(a.shape[-1], device=device)
    keep = cols - rows <= k if keep_lower else cols - rows >= k  # (rows, cols)
    return Where.apply(make_tensor(keep), a, 0)


def tril(a, k=0):
    """The lower triangle (at and below diagonal k) of the last two axes; zeros above."""
    return _triangle("tril", a, k, True)


def triu(a, k=0):
    """The upper triangle (at and above diagonal k) of the last two axes; zeros below."""
    return _triangle("triu", a, k, False)

"""Shape Functions: reshape, permute, indexing and concatenation."""

import itertools

import numpy as np

import ops
from engine.autograd import Function


class Reshape(Function):
    name, formula = "reshape", "d(reshape a) = reshape(dy, a.shape)"

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return ops.array_namespace(a).reshape(a, shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {a.shape} ({a.size} elements) "
                             f"into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).reshape(g, ctx.shape)


class Permute(Function):
    name, formula = "permute", "d(permute a) = permute(dy, inverse axes)"

    @staticmethod
    def forward(ctx, a, axes):
        axes = tuple(ax % max(a.ndim, 1) for ax in axes)
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"permute: axes {tuple(axes)} are not a permutation of the "
                             f"{a.ndim} axes of a tensor of shape {a.shape}")
        ctx.inverse = tuple(sorted(range(a.ndim), key=axes.__getitem__))
        return ops.array_namespace(a).permute_dims(a, axes)

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).permute_dims(g, ctx.inverse)


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


class Concat(Function):
    name, formula = "concat", "d(concat a_i) = split(dy) back to each a_i"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            y = ops.array_namespace(arrays[0]).concat(arrays, axis=axis)
        except (ValueError, IndexError):
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"concat: shapes {shapes} differ off axis {axis}") from None
        ctx.axis = axis % y.ndim
        ctx.bounds = list(itertools.accumulate(a.shape[axis] for a in arrays))
        return y

    @staticmethod
    def backward(ctx, g):
        lead = (slice(None),) * ctx.axis
        starts = [0] + ctx.bounds[:-1]
        return tuple(g[lead + (slice(s, e), ...)] for s, e in zip(starts, ctx.bounds))

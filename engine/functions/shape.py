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
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            return a[index]
        except IndexError as err:
            raise IndexError(f"getitem: {err} (tensor of shape {a.shape})") from None

    @staticmethod
    def backward(ctx, g):
        if not _is_basic(ctx.index):  # repeated integer indices accumulate
            return ops.kernel_for("scatter_add", g)(ctx.shape, ctx.index, g, ctx.dtype)
        out = ops.array_namespace(g).zeros(ctx.shape, dtype=ctx.dtype, device=g.device)
        out[ctx.index] = g  # slices and ints pick each element at most once
        return out


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

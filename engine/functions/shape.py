"""Shape Functions: reshape, permute, indexing and concatenation."""

import numpy as np

from engine.autograd import Function


class Reshape(Function):
    name, formula = "reshape", "d(reshape a) = reshape(dy, a.shape)"

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {a.shape} ({a.size} elements) "
                             f"into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    name, formula = "permute", "d(permute a) = permute(dy, inverse axes)"

    @staticmethod
    def forward(ctx, a, axes):
        if sorted(ax % max(a.ndim, 1) for ax in axes) != list(range(a.ndim)):
            raise ValueError(f"permute: axes {tuple(axes)} are not a permutation of the "
                             f"{a.ndim} axes of a tensor of shape {a.shape}")
        ctx.inverse = np.argsort([ax % a.ndim for ax in axes])
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


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
        out = np.zeros(ctx.shape, ctx.dtype)
        if _is_basic(ctx.index):
            out[ctx.index] = g  # slices and ints pick each element at most once
        else:
            np.add.at(out, ctx.index, g)  # scatter-add: repeated integer indices accumulate
        return out


def _is_basic(index):
    """True for numpy basic indexing (ints, slices, None, ...), which never repeats an element."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | np.integer | slice | type(None)) or i is Ellipsis
               for i in items)


class Concat(Function):
    name, formula = "concat", "d(concat a_i) = split(dy) back to each a_i"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            y = np.concatenate(arrays, axis=axis)
        except (ValueError, np.exceptions.AxisError):
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"concat: shapes {shapes} differ off axis {axis}") from None
        ctx.axis = axis
        ctx.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return y

    @staticmethod
    def backward(ctx, g):
        return tuple(np.split(g, ctx.bounds, axis=ctx.axis))

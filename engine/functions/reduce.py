"""Reduction Functions: sum, mean and max over axes."""

import ops
from engine.autograd import Function


def _axes(axis, ndim):
    """`axis` (None, an int or a tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % max(ndim, 1) for a in axes))


def _kept_shape(shape, axis):
    """`shape` with the reduced axes kept as size 1 (what keepdims=True gives)."""
    axes = _axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _spread(g, shape, axis):
    """The gradient of a reduction: g (reduced, with or without kept dims) broadcast back."""
    xp = ops.array_namespace(g)
    g = xp.reshape(g, _kept_shape(shape, axis))
    return xp.asarray(xp.broadcast_to(g, shape), copy=True)


class Sum(Function):
    name, formula = "sum", "d(sum a) = broadcast(dy) over the summed axes"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        xp = ops.array_namespace(a)
        ctx.shape, ctx.axis = a.shape, axis
        return xp.asarray(xp.sum(a, axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        return _spread(g, ctx.shape, ctx.axis)


class Mean(Function):
    name, formula = "mean", "d(mean a) = broadcast(dy) / n"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        xp = ops.array_namespace(a)
        ctx.shape, ctx.axis = a.shape, axis
        if not xp.isdtype(a.dtype, "real floating"):  # int: a float32 mean, no floor
            a = xp.astype(a, xp.float32)
        y = xp.asarray(xp.mean(a, axis=axis, keepdims=keepdims))
        ctx.count = a.size // max(y.size, 1) if a.size else 0
        return y

    @staticmethod
    def backward(ctx, g):
        return _spread(g / ctx.count, ctx.shape, ctx.axis)


class Max(Function):
    name, formula = "max", "d(max a) = dy at the maxima (split evenly between ties)"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        if a.size == 0:
            raise ValueError(f"max: empty tensor of shape {a.shape} has no maximum")
        xp = ops.array_namespace(a)
        y = xp.max(a, axis=axis, keepdims=True)
        ctx.save_for_backward(a, y)
        ctx.axis = axis
        if keepdims:
            return y
        kept = _axes(axis, a.ndim)
        return xp.reshape(y, tuple(n for i, n in enumerate(a.shape) if i not in kept))

    @staticmethod
    def backward(ctx, g):
        a, y = ctx.saved
        xp = ops.array_namespace(g)
        g = xp.reshape(g, y.shape)
        winners = xp.astype(a == y, a.dtype)
        return winners * (g / xp.sum(winners, axis=ctx.axis, keepdims=True))

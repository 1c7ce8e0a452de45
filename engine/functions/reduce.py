"""Reduction Functions: sum, mean, max and min over axes (more in engine.functions.stats)."""

import ops
from engine.autograd import Function
from engine.functions.args import axes_tuple


def _axes(axis, shape, op="reduce"):
    """`axis` (None, an int or a tuple) as a sorted tuple of axes valid for `shape`."""
    return axes_tuple(op, axis, shape)


def _kept_shape(shape, axis):
    """`shape` with the reduced axes kept as size 1 (what keepdims=True gives)."""
    axes = _axes(axis, shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _counts(a):
    """bool as int64 for the counting reductions (sum, prod, cumsum, argmax), as numpy: the
    standard refuses bool there."""
    xp = ops.array_namespace(a)
    return xp.astype(a, xp.int64) if a.dtype == xp.bool else a


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
        ctx.shape, ctx.axis = a.shape, _axes(axis, a.shape, "sum")
        return xp.asarray(xp.sum(_counts(a), axis=ctx.axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        return _spread(g, ctx.shape, ctx.axis)


class Mean(Function):
    name, formula, floating = "mean", "d(mean a) = broadcast(dy) / n", True

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        xp = ops.array_namespace(a)
        ctx.shape, ctx.axis = a.shape, _axes(axis, a.shape, "mean")
        y = xp.asarray(xp.mean(a, axis=ctx.axis, keepdims=keepdims))
        ctx.count = a.size // max(y.size, 1) if a.size else 0
        return y

    @staticmethod
    def backward(ctx, g):
        return _spread(g / ctx.count, ctx.shape, ctx.axis)


class Max(Function):
    name, formula = "max", "d(max a) = dy at the maxima (split evenly between ties)"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        return _extreme(ctx, "max", a, axis, keepdims)

    @staticmethod
    def backward(ctx, g):
        a, y = ctx.saved
        xp = ops.array_namespace(g)
        g = xp.reshape(g, y.shape)
        winners = xp.astype(a == y, a.dtype)
        return winners * (g / xp.sum(winners, axis=ctx.axis, keepdims=True))


class Min(Max):
    name, formula = "min", "d(min a) = dy at the minima (split evenly between ties)"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        return _extreme(ctx, "min", a, axis, keepdims)


def _extreme(ctx, op, a, axis, keepdims):
    """max or min over axes; saves the input and the kept-dims result for the backward."""
    axes = _axes(axis, a.shape, op)
    if any(a.shape[i] == 0 for i in axes) or (a.size == 0 and axis is None):
        raise ValueError(f"{op}: empty tensor of shape {a.shape} has no {op}imum")
    xp = ops.array_namespace(a)
    y = getattr(xp, op)(_counts(a), axis=axes, keepdims=True)
    y = y != 0 if a.dtype == xp.bool else y  # bool in, bool out (numpy)
    ctx.save_for_backward(a, y)
    ctx.axis = axes
    if keepdims:
        return y
    return xp.reshape(y, tuple(n for i, n in enumerate(a.shape) if i not in axes))

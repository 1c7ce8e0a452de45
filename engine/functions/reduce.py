"""Reduction Functions: sum, mean and max over axes."""

import numpy as np

from engine.autograd import Function


class Sum(Function):
    name, formula = "sum", "d(sum a) = broadcast(dy) over the summed axes"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return np.asarray(np.sum(a, axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        if not ctx.keepdims and ctx.axis is not None:
            g = np.expand_dims(g, ctx.axis)
        return np.broadcast_to(g, ctx.shape).copy()


class Mean(Function):
    name, formula = "mean", "d(mean a) = broadcast(dy) / n"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        y = np.asarray(np.mean(a, axis=axis, keepdims=keepdims))
        ctx.count = a.size // max(y.size, 1) if a.size else 0
        return y.astype(a.dtype if a.dtype.kind == "f" else np.float32, copy=False)  # int: no floor

    @staticmethod
    def backward(ctx, g):
        if not ctx.keepdims and ctx.axis is not None:
            g = np.expand_dims(g, ctx.axis)
        return np.broadcast_to(g / g.dtype.type(ctx.count), ctx.shape).copy()


class Max(Function):
    name, formula = "max", "d(max a) = dy at the maxima (split evenly between ties)"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        if a.size == 0:
            raise ValueError(f"max: empty tensor of shape {a.shape} has no maximum")
        y = np.max(a, axis=axis, keepdims=True)
        ctx.save_for_backward(a, y)
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else np.asarray(np.squeeze(y, axis=axis))

    @staticmethod
    def backward(ctx, g):
        a, y = ctx.saved
        if not ctx.keepdims:
            g = g.reshape(y.shape)
        winners = (a == y).astype(a.dtype)
        return winners * (g / winners.sum(axis=ctx.axis, keepdims=True))

"""Reductions: sum, mean, max and min, argmax and argmin, variance and standard deviation,
log-sum-exp, product, cumulative sum, any and all; each Function with its public function.
The public functions shadow Python's sum, max, min, any and all here: builtins.* names those."""

import builtins
import math

import numpy as np

import ops
from engine.autograd import Function
from engine.functions.args import axes_tuple, axis_index
from engine.functions.shape import Reshape
from engine.functions.unary_math import Sqrt


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


def _count(shape, axes):
    return math.prod(shape[i] for i in axes)


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


def sum(a, axis=None, keepdims=False):
    return Sum.apply(a, axis=axis, keepdims=keepdims)


class Mean(Function):
    name, formula, floating = "mean", "d(mean a) = broadcast(dy) / n", True

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        xp = ops.array_namespace(a)
        ctx.shape, ctx.axis = a.shape, _axes(axis, a.shape, "mean")
        y = xp.asarray(xp.mean(a, axis=ctx.axis, keepdims=keepdims))
        ctx.count = a.size // builtins.max(y.size, 1) if a.size else 0
        return y

    @staticmethod
    def backward(ctx, g):
        return _spread(g / ctx.count, ctx.shape, ctx.axis)


def mean(a, axis=None, keepdims=False):
    return Mean.apply(a, axis=axis, keepdims=keepdims)


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
    if builtins.any(a.shape[i] == 0 for i in axes) or (a.size == 0 and axis is None):
        raise ValueError(f"{op}: empty tensor of shape {a.shape} has no {op}imum")
    xp = ops.array_namespace(a)
    y = getattr(xp, op)(_counts(a), axis=axes, keepdims=True)
    y = y != 0 if a.dtype == xp.bool else y  # bool in, bool out (numpy)
    ctx.save_for_backward(a, y)
    ctx.axis = axes
    if keepdims:
        return y
    return xp.reshape(y, tuple(n for i, n in enumerate(a.shape) if i not in axes))


def max(a, axis=None, keepdims=False):
    return Max.apply(a, axis=axis, keepdims=keepdims)


def min(a, axis=None, keepdims=False):
    return Min.apply(a, axis=axis, keepdims=keepdims)


class ArgExtreme(Function):
    """argmax and argmin: one subclass per op names it."""

    formula, differentiable = "no gradient (integer result)", False

    @staticmethod
    def forward(ctx, a, op, axis=None, keepdims=False):
        xp = ops.array_namespace(a)
        if axis is not None:
            axis = axis_index(op, axis, a.shape)
        if a.size == 0 or (axis is not None and a.shape[axis] == 0):
            raise ValueError(f"{op}: empty tensor of shape {a.shape} has no {op[3:]}imum")
        a = _counts(a)
        if axis is None and a.ndim != 1:  # over all elements, numpy's flat index
            y = getattr(xp, op)(xp.reshape(a, (-1,)))
            return xp.reshape(y, (1,) * a.ndim) if keepdims else y
        return xp.asarray(getattr(xp, op)(a, axis=axis, keepdims=keepdims))


class ArgMax(ArgExtreme):
    name = "argmax"


class ArgMin(ArgExtreme):
    name = "argmin"


def argmax(a, axis=None, keepdims=False):
    """Index of the largest element (of the flattened tensor when axis is None): int64."""
    return ArgMax.apply(a, op="argmax", axis=axis, keepdims=keepdims)


def argmin(a, axis=None, keepdims=False):
    """Index of the smallest element (of the flattened tensor when axis is None): int64."""
    return ArgMin.apply(a, op="argmin", axis=axis, keepdims=keepdims)


class Var(Function):
    name, formula, floating = "var", "d(var a) = 2 (a - mean a) dy / (n - correction)", True

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, correction=0):
        xp = ops.array_namespace(a)
        axes = axes_tuple("var", axis, a.shape)
        d = a - xp.mean(a, axis=axes, keepdims=True)
        ctx.save_for_backward(d)
        ctx.shape, ctx.axis = a.shape, axes
        ctx.scale = 2.0 / (_count(a.shape, axes) - correction)
        with np.errstate(divide="ignore", invalid="ignore"):  # n <= correction: inf or nan
            return xp.sum(d * d, axis=axes, keepdims=keepdims) / (
                _count(a.shape, axes) - correction)

    @staticmethod
    def backward(ctx, g):
        return _spread(g, ctx.shape, ctx.axis) * ctx.saved[0] * ctx.scale


def var(a, axis=None, keepdims=False, correction=0):
    """Variance, numpy's default correction 0 (PyTorch's default is 1: pass correction=1)."""
    return Var.apply(a, axis=axis, keepdims=keepdims, correction=correction)


def std(a, axis=None, keepdims=False, correction=0):
    """Standard deviation: sqrt(var(a, ...))."""
    return Sqrt.apply(var(a, axis=axis, keepdims=keepdims, correction=correction))


class LogSumExp(Function):
    name, formula, floating = "logsumexp", "d(logsumexp a) = softmax(a) dy", True

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        xp = ops.array_namespace(a)
        axes = axes_tuple("logsumexp", axis, a.shape)
        m = xp.max(a, axis=axes, keepdims=True) if a.size else xp.zeros_like(a)
        m = xp.where(xp.isfinite(m), m, 0.0)  # all -inf (or inf) rows: no shift
        with np.errstate(divide="ignore"):  # log(0) = -inf for empty or all -inf rows
            y = xp.log(xp.sum(xp.exp(a - m), axis=axes, keepdims=True)) + m
        ctx.save_for_backward(a, y)
        ctx.shape, ctx.axis = a.shape, axes
        return y if keepdims else xp.reshape(y, tuple(
            n for i, n in enumerate(a.shape) if i not in axes))

    @staticmethod
    def backward(ctx, g):
        a, y = ctx.saved
        xp = ops.array_namespace(g)
        return _spread(g, ctx.shape, ctx.axis) * xp.exp(a - y)


def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) over axes, computed stably (shifted by the maximum)."""
    return LogSumExp.apply(a, axis=axis, keepdims=keepdims)


class Prod(Function):
    name, formula = "prod", "d(prod a)_i = dy * prod of the other elements"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        xp = ops.array_namespace(a)
        axes = axes_tuple("prod", axis, a.shape)
        ctx.save_for_backward(a)
        ctx.axis = axes
        return xp.asarray(xp.prod(_counts(a), axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        """Products of the elements before and after each one (no division, so zeros work):
        the reduced axes are moved last and flattened into one axis of length K."""
        (a,) = ctx.saved
        xp, axes = ops.array_namespace(g), ctx.axis
        rest = tuple(i for i in range(a.ndim) if i not in axes)
        lead = tuple(a.shape[i] for i in rest)
        x = xp.reshape(xp.permute_dims(a, rest + axes), lead + (_count(a.shape, axes),))
        before = xp.cumulative_prod(x, axis=-1, include_initial=True)[..., :-1]
        after = xp.flip(xp.cumulative_prod(xp.flip(x, axis=-1), axis=-1,
                                           include_initial=True)[..., :-1], axis=-1)
        gx = xp.reshape(g, lead + (1,)) * before * after  # (rest..., K)
        gx = xp.reshape(gx, lead + tuple(a.shape[i] for i in axes))
        inverse = tuple(sorted(range(a.ndim), key=(rest + axes).__getitem__))
        return xp.permute_dims(gx, inverse)


def prod(a, axis=None, keepdims=False):
    """Product over axes; its gradient needs no division (zeros are fine)."""
    return Prod.apply(a, axis=axis, keepdims=keepdims)


class CumSum(Function):
    name, formula = "cumsum", "d(cumsum a) = reversed cumsum of dy"

    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        return ops.array_namespace(a).cumulative_sum(_counts(a), axis=axis)

    @staticmethod
    def backward(ctx, g):
        xp, axis = ops.array_namespace(g), ctx.axis
        return xp.flip(xp.cumulative_sum(xp.flip(g, axis=axis), axis=axis), axis=axis)


def cumsum(a, axis=None):
    """Cumulative sum along `axis` (over the flattened tensor when None, as numpy)."""
    if axis is None:
        return CumSum.apply(Reshape.apply(a, shape=(-1,)), axis=0)
    return CumSum.apply(a, axis=axis_index("cumsum", axis, a.shape))


class Truth(Function):
    """any / all over axes: bool out, no gradient."""

    name, formula, differentiable = "any_all", "no gradient (bool result)", False

    @staticmethod
    def forward(ctx, a, op, axis=None, keepdims=False):
        xp = ops.array_namespace(a)
        axes = axes_tuple(op, axis, a.shape)
        return xp.asarray(getattr(xp, op)(a if a.dtype == xp.bool else a != 0, axis=axes,
                                          keepdims=keepdims))


def any(a, axis=None, keepdims=False):
    """Whether any element (along `axis`) is true or nonzero: a bool tensor."""
    return Truth.apply(a, op="any", axis=axis, keepdims=keepdims)


def all(a, axis=None, keepdims=False):
    """Whether every element (along `axis`) is true or nonzero: a bool tensor."""
    return Truth.apply(a, op="all", axis=axis, keepdims=keepdims)

"""More reductions: argmax/argmin, variance, log-sum-exp, product and cumulative sum, with the
public functions (min, argmax, var, std, ...) that engine.functional re-exports."""

import math

import numpy as np

import ops
from engine.autograd import Function
from engine.functions.args import axes_tuple, axis_index
from engine.functions.elementwise import Sqrt
from engine.functions.reduce import Min, _counts, _spread
from engine.functions.shape import Reshape


def _count(shape, axes):
    return math.prod(shape[i] for i in axes)


class ArgExtreme(Function):
    name, formula, differentiable = "argmax", "no gradient (integer result)", False

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


# ---- public functions ----------------------------------------------------------------------
def min(a, axis=None, keepdims=False):
    return Min.apply(a, axis=axis, keepdims=keepdims)


def argmax(a, axis=None, keepdims=False):
    """Index of the largest element (of the flattened tensor when axis is None): int64."""
    return ArgExtreme.apply(a, op="argmax", axis=axis, keepdims=keepdims)


def argmin(a, axis=None, keepdims=False):
    """Index of the smallest element (of the flattened tensor when axis is None): int64."""
    return ArgExtreme.apply(a, op="argmin", axis=axis, keepdims=keepdims)


def var(a, axis=None, keepdims=False, correction=0):
    """Variance, numpy's default correction 0 (PyTorch's default is 1: pass correction=1)."""
    return Var.apply(a, axis=axis, keepdims=keepdims, correction=correction)


def std(a, axis=None, keepdims=False, correction=0):
    """Standard deviation: sqrt(var(a, ...))."""
    return Sqrt.apply(var(a, axis=axis, keepdims=keepdims, correction=correction))


def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) over axes, computed stably (shifted by the maximum)."""
    return LogSumExp.apply(a, axis=axis, keepdims=keepdims)


def prod(a, axis=None, keepdims=False):
    """Product over axes; its gradient needs no division (zeros are fine)."""
    return Prod.apply(a, axis=axis, keepdims=keepdims)


def cumsum(a, axis=None):
    """Cumulative sum along `axis` (over the flattened tensor when None, as numpy)."""
    if axis is None:
        return CumSum.apply(Reshape.apply(a, shape=(-1,)), axis=0)
    return CumSum.apply(a, axis=axis_index("cumsum", axis, a.shape))

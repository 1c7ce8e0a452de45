"""Unary math: exp and the logarithms, square roots, trigonometry, tanh and erf; each
Function's backward beside its forward, with its public function."""

import math

import numpy as np

import ops
from engine.autograd import Function


class Exp(Function):
    floating = True
    name, formula = "exp", "d(exp a) = exp(a) da"

    @staticmethod
    def forward(ctx, a):
        y = ops.array_namespace(a).exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


def exp(a):
    return Exp.apply(a)


class Log(Function):
    floating = True
    name, formula = "log", "d(log a) = da / a"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(-1) = nan
            return ops.array_namespace(a).log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved[0]


def log(a):
    return Log.apply(a)


class Log2(Function):
    name, formula, floating = "log2", "d(log2 a) = da / (a ln 2)", True

    @staticmethod
    def forward(ctx, a):
        xp = ops.array_namespace(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # log2(0) = -inf
            y = xp.log2(a)
        ctx.save_for_backward(a)
        return y

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * (1.0 / (a * math.log(2.0)))


def log2(a):
    return Log2.apply(a)


class Log1p(Function):
    name, formula, floating = "log1p", "d(log1p a) = da / (1 + a)", True

    @staticmethod
    def forward(ctx, a):
        xp = ops.array_namespace(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # log1p(-1) = -inf
            y = xp.log1p(a)
        ctx.save_for_backward(a)
        return y

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * (1.0 / (1.0 + a))


def log1p(a):
    """log(1 + a), accurate for small a."""
    return Log1p.apply(a)


class Expm1(Function):
    name, formula, floating = "expm1", "d(expm1 a) = (y + 1) da", True

    @staticmethod
    def forward(ctx, a):
        xp = ops.array_namespace(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # nan in, nan out, quietly
            y = xp.expm1(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g * (y + 1.0)


def expm1(a):
    """exp(a) - 1, accurate for small a."""
    return Expm1.apply(a)


class Sqrt(Function):
    floating = True
    name, formula = "sqrt", "d(sqrt a) = da / (2 sqrt a)"

    @staticmethod
    def forward(ctx, a):
        with np.errstate(invalid="ignore"):  # sqrt(-1) = nan
            y = ops.array_namespace(a).sqrt(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.saved[0])


def sqrt(a):
    return Sqrt.apply(a)


class Rsqrt(Function):
    name, formula, floating = "rsqrt", "d(a^-1/2) = -y^3 / 2 da", True

    @staticmethod
    def forward(ctx, a):
        xp = ops.array_namespace(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # rsqrt(0) = inf
            y = 1.0 / xp.sqrt(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        return g * (-0.5 * y * y * y)


def rsqrt(a):
    """1 / sqrt(a)."""
    return Rsqrt.apply(a)


class Sin(Function):
    name, formula, floating = "sin", "d(sin a) = cos(a) da", True

    @staticmethod
    def forward(ctx, a):
        xp = ops.array_namespace(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # sin(inf) = nan
            y = xp.sin(a)
        ctx.save_for_backward(a)
        return y

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        xp = ops.array_namespace(g)
        return g * (xp.cos(a))


def sin(a):
    return Sin.apply(a)


class Cos(Function):
    name, formula, floating = "cos", "d(cos a) = -sin(a) da", True

    @staticmethod
    def forward(ctx, a):
        xp = ops.array_namespace(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # cos(inf) = nan
            y = xp.cos(a)
        ctx.save_for_backward(a)
        return y

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        xp = ops.array_namespace(g)
        return g * (-xp.sin(a))


def cos(a):
    return Cos.apply(a)


class Tanh(Function):
    floating = True
    name, formula = "tanh", "d(tanh a) = (1 - tanh(a)^2) da"

    @staticmethod
    def forward(ctx, a):
        y = ops.array_namespace(a).tanh(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved[0]
        return g * (1 - y * y)


def tanh(a):
    return Tanh.apply(a)


def _erf(x):
    """erf in standard array calls, to about 1e-14 relative: its Taylor series for |x| < 2.5, the
    continued fraction of erfc beyond (60 terms, evaluated from the tail)."""
    xp = ops.array_namespace(x)
    ax = xp.abs(x)
    small = xp.minimum(ax, 2.5)
    term, total, x2 = small, small, small * small
    for n in range(1, 80):  # sum (-1)^n x^(2n+1) / (n! (2n+1))
        term = term * (-x2) / n
        total = total + term / (2 * n + 1)
    series = total * (2.0 / math.sqrt(math.pi))
    big = xp.maximum(ax, 2.5)
    frac = big
    for k in range(60, 0, -1):  # erfc(x) = exp(-x^2) / (sqrt(pi) (x + 1/2 / (x + 1 / (x + ...
        frac = big + (k / 2.0) / frac
    tail = 1.0 - xp.exp(-big * big) / (math.sqrt(math.pi) * frac)
    return xp.where(ax < 2.5, series, tail) * xp.sign(x)


class Erf(Function):
    name, formula, floating = "erf", "d(erf a) = 2/sqrt(pi) exp(-a^2) da", True

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return _erf(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.saved[0]
        return g * (2.0 / math.sqrt(math.pi)) * ops.array_namespace(g).exp(-a * a)


def erf(a):
    """The error function, (2/sqrt(pi)) * integral of exp(-t^2) from 0 to a."""
    return Erf.apply(a)

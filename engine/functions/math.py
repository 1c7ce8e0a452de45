"""More elementwise Functions: activations (sigmoid, silu, softplus, leaky relu, erf), abs,
sign, clip, maximum/minimum, trigonometry, logs and powers, rounding (zero gradient) and integer
division (no gradient), with the public functions that engine.functional re-exports."""

import math

import numpy as np

import ops
from engine.autograd import Function
from engine.functions.elementwise import Mul, broadcast_shape, unbroadcast


class Sigmoid(Function):
    name, formula, floating = "sigmoid", "d(sigmoid a) = y (1 - y) da", True

    @staticmethod
    def forward(ctx, a):
        xp = ops.array_namespace(a)
        y = 0.5 * (xp.tanh(a * 0.5) + 1.0)  # no overflow for large |a|
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved[0]
        return g * y * (1.0 - y)


class Softplus(Function):
    name, formula, floating = "softplus", "d(softplus a) = sigmoid(a) da", True

    @staticmethod
    def forward(ctx, a):
        xp = ops.array_namespace(a)
        ctx.save_for_backward(a)
        return xp.maximum(a, 0.0) + xp.log1p(xp.exp(-xp.abs(a)))  # log(1 + e^a), stably

    @staticmethod
    def backward(ctx, g):
        xp = ops.array_namespace(g)
        return g * 0.5 * (xp.tanh(ctx.saved[0] * 0.5) + 1.0)


class LeakyRelu(Function):
    name, formula = "leaky_relu", "d(leaky_relu a) = (1 if a > 0 else slope) da"

    @staticmethod
    def forward(ctx, a, negative_slope=0.01):
        ctx.save_for_backward(a > 0)
        ctx.slope = negative_slope
        return ops.array_namespace(a).where(a > 0, a, a * negative_slope)

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).where(ctx.saved[0], g, g * ctx.slope)


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


class Abs(Function):
    name, formula = "abs", "d(|a|) = sign(a) da"

    @staticmethod
    def forward(ctx, a):
        xp = ops.array_namespace(a)
        ctx.save_for_backward(xp.sign(a))
        return xp.abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Unary(Function):
    """A float function y = f(a) whose derivative is a formula in a and y; one subclass per
    op names it (sin, cos, log2, log1p, expm1, rsqrt)."""

    floating = True

    @staticmethod
    def forward(ctx, a, op):
        xp = ops.array_namespace(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # log2(0), rsqrt(0): inf
            y = 1.0 / xp.sqrt(a) if op == "rsqrt" else getattr(xp, op)(a)
        ctx.save_for_backward(a, y)
        ctx.op = op
        return y

    @staticmethod
    def backward(ctx, g):
        a, y = ctx.saved
        xp = ops.array_namespace(g)
        return g * {"sin": lambda: xp.cos(a), "cos": lambda: -xp.sin(a),
                    "log2": lambda: 1.0 / (a * math.log(2.0)), "log1p": lambda: 1.0 / (1.0 + a),
                    "expm1": lambda: y + 1.0, "rsqrt": lambda: -0.5 * y * y * y}[ctx.op]()


class Sin(Unary):
    name, formula = "sin", "d(sin a) = cos(a) da"


class Cos(Unary):
    name, formula = "cos", "d(cos a) = -sin(a) da"


class Log2(Unary):
    name, formula = "log2", "d(log2 a) = da / (a ln 2)"


class Log1p(Unary):
    name, formula = "log1p", "d(log1p a) = da / (1 + a)"


class Expm1(Unary):
    name, formula = "expm1", "d(expm1 a) = (y + 1) da"


class Rsqrt(Unary):
    name, formula = "rsqrt", "d(a^-1/2) = -y^3 / 2 da"


class Rounding(Function):
    """floor, ceil, round and sign: piecewise constant, so a zero gradient."""

    name, formula = "round", "d(round a) = 0"

    @staticmethod
    def forward(ctx, a, op):
        return getattr(ops.array_namespace(a), op)(a)

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).zeros_like(g)


class Floor(Rounding):
    name, formula = "floor", "d(floor a) = 0"


class Ceil(Rounding):
    name, formula = "ceil", "d(ceil a) = 0"


class Sign(Rounding):
    name, formula = "sign", "d(sign a) = 0"


class IntegerDivision(Function):
    name, formula, differentiable = "floor_divide", "no gradient (piecewise constant)", False

    @staticmethod
    def forward(ctx, a, b, op):
        broadcast_shape(op, a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return getattr(ops.array_namespace(a), op)(a, b)


class Extremum(Function):
    name, formula = "maximum", "d(maximum(a, b)) = dy to the larger (halves on ties)"

    @staticmethod
    def forward(ctx, a, b, op):
        broadcast_shape(op, a, b)
        xp = ops.array_namespace(a)
        ctx.save_for_backward(a, b)
        ctx.op = op
        return getattr(xp, op)(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        xp = ops.array_namespace(g)
        wins = (a > b) if ctx.op == "maximum" else (a < b)
        share = xp.astype(wins, g.dtype) + 0.5 * xp.astype(a == b, g.dtype)
        da = unbroadcast(g * share, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(g * (1.0 - share), b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Minimum(Extremum):
    name, formula = "minimum", "d(minimum(a, b)) = dy to the smaller (halves on ties)"


class Clip(Function):
    name, formula = "clip", "d(clip a) = [lo <= a <= hi] da"

    @staticmethod
    def forward(ctx, a, lo=None, hi=None):
        xp = ops.array_namespace(a)
        ctx.save_for_backward((a >= (-math.inf if lo is None else lo)) &
                              (a <= (math.inf if hi is None else hi)))
        return xp.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).where(ctx.saved[0], g, 0.0)


class FloatClip(Clip):
    """clip with a float bound: integer a is promoted to float32 first (the promotion rule)."""

    floating = True


class PowTensor(Function):
    name, formula, floating = "pow", "d(a^b) = b a^(b-1) da + a^b log(a) db", True

    @staticmethod
    def forward(ctx, a, b):
        broadcast_shape("pow", a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = a ** b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved
        xp = ops.array_namespace(g)
        da = db = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                da = unbroadcast(xp.where(b == 0, 0.0, g * b * a ** (b - 1)), a.shape)
            if ctx.needs_input_grad[1]:  # a^b log a, taken as 0 where a = 0 (0^b is flat)
                db = unbroadcast(xp.where(a == 0, 0.0, g * y * xp.log(xp.abs(a))), b.shape)
        return da, db


# ---- public functions ----------------------------------------------------------------------
def sigmoid(a):
    """1 / (1 + exp(-a)), computed as (tanh(a/2) + 1) / 2 (no overflow)."""
    return Sigmoid.apply(a)


def softplus(a):
    """log(1 + exp(a)), stably."""
    return Softplus.apply(a)


def silu(a):
    """a * sigmoid(a) (also called swish)."""
    return Mul.apply(a, Sigmoid.apply(a))


def leaky_relu(a, negative_slope=0.01):
    return LeakyRelu.apply(a, negative_slope=negative_slope)


def erf(a):
    """The error function, (2/sqrt(pi)) * integral of exp(-t^2) from 0 to a."""
    return Erf.apply(a)


def gelu_exact(a):
    """GELU without the tanh approximation: a * Phi(a) = 0.5 a (1 + erf(a / sqrt(2)))."""
    return Mul.apply(Mul.apply(a, 0.5), Erf.apply(Mul.apply(a, 1.0 / math.sqrt(2.0))) + 1.0)


def abs(a):
    return Abs.apply(a)


def sign(a):
    """-1, 0 or 1 by the sign of each element; zero gradient."""
    return Sign.apply(a, op="sign")


def floor(a):
    return Floor.apply(a, op="floor")


def ceil(a):
    return Ceil.apply(a, op="ceil")


def round(a):
    """Round half to even, as numpy; zero gradient."""
    return Rounding.apply(a, op="round")


def sin(a):
    return Sin.apply(a, op="sin")


def cos(a):
    return Cos.apply(a, op="cos")


def log2(a):
    return Log2.apply(a, op="log2")


def log1p(a):
    """log(1 + a), accurate for small a."""
    return Log1p.apply(a, op="log1p")


def expm1(a):
    """exp(a) - 1, accurate for small a."""
    return Expm1.apply(a, op="expm1")


def rsqrt(a):
    """1 / sqrt(a)."""
    return Rsqrt.apply(a, op="rsqrt")


def floor_divide(a, b):
    """a // b, numpy's floor division; no gradient."""
    return IntegerDivision.apply(a, b, op="floor_divide")


def remainder(a, b):
    """a % b with the sign of b, as numpy and Python; no gradient."""
    return IntegerDivision.apply(a, b, op="remainder")


def maximum(a, b):
    """Elementwise larger of a and b (broadcasting); ties split the gradient evenly."""
    return Extremum.apply(a, b, op="maximum")


def minimum(a, b):
    """Elementwise smaller of a and b (broadcasting); ties split the gradient evenly."""
    return Minimum.apply(a, b, op="minimum")


def clip(a, a_min=None, a_max=None):
    """a limited to [a_min, a_max] (Python numbers; either may be None)."""
    if a_min is None and a_max is None:
        raise ValueError("clip: give a_min, a_max or both")
    if a_min is not None and a_max is not None and a_min > a_max:
        raise ValueError(f"clip: a_min {a_min} is larger than a_max {a_max}")
    bounds_float = isinstance(a_min, float) or isinstance(a_max, float)
    return (FloatClip if bounds_float else Clip).apply(a, lo=a_min, hi=a_max)


def pow_tensor(a, b):
    """a ** b with b a tensor (or a ** b with a a Python number): differentiable in both."""
    return PowTensor.apply(a, b)


clamp, mod = clip, remainder  # PyTorch's names

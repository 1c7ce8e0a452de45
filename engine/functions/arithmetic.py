"""Arithmetic: + - * / and powers, floor division and remainder, maximum/minimum, clip,
abs, sign and rounding; each Function with its public function."""

import math

import numpy as np

import ops
from engine.autograd import Function, is_tensor
from engine.functions.args import broadcast_shape, unbroadcast


class Add(Function):
    name, formula = "add", "d(a+b) = da + db"

    @staticmethod
    def forward(ctx, a, b):
        broadcast_shape("add", a, b)
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(g, ctx.shapes[1])


def add(a, b):
    return Add.apply(a, b)


class Sub(Function):
    name, formula = "sub", "d(a-b) = da - db"

    @staticmethod
    def forward(ctx, a, b):
        broadcast_shape("sub", a, b)
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(-g, ctx.shapes[1])


def sub(a, b):
    return Sub.apply(a, b)


class Mul(Function):
    name, formula = "mul", "d(a*b) = b da + a db"

    @staticmethod
    def forward(ctx, a, b):
        broadcast_shape("mul", a, b)
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        da = unbroadcast(g * b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(g * a, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def mul(a, b):
    return Mul.apply(a, b)


class Div(Function):
    floating = True
    name, formula = "div", "d(a/b) = da/b - a db/b^2"

    @staticmethod
    def forward(ctx, a, b):
        broadcast_shape("div", a, b)
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        da = unbroadcast(g / b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-g * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def div(a, b):
    return Div.apply(a, b)


class Neg(Function):
    name, formula = "neg", "d(-a) = -da"

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


def neg(a):
    return Neg.apply(a)


class Pow(Function):
    name, formula = "pow", "d(a^p) = p a^(p-1) da"

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a ** exponent

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        p = ctx.exponent
        if p == 0:  # a^0 is constant; 0 * a^-1 would be nan at a = 0
            return ops.array_namespace(g).zeros_like(g)
        return g * p * a ** (p - 1)


class FloatPow(Pow):
    """a ** p with a float or negative p: integer a is promoted to float32 first."""

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


def pow(a, exponent):
    """a ** exponent; a tensor exponent (or a Python number base) is differentiable too."""
    if is_tensor(exponent) or not is_tensor(a):
        return pow_tensor(a, exponent)
    if not isinstance(exponent, int | float):
        raise TypeError(f"pow: the exponent must be a number or a tensor, got "
                        f"{type(exponent).__name__}")
    if isinstance(exponent, float) or exponent < 0:  # a float result: the promotion rule
        return FloatPow.apply(a, exponent=exponent)
    return Pow.apply(a, exponent=exponent)


def pow_tensor(a, b):
    """a ** b with b a tensor (or a ** b with a a Python number): differentiable in both."""
    return PowTensor.apply(a, b)


class IntegerDivision(Function):
    """floor_divide and remainder: piecewise constant, so no gradient; one subclass per op
    names it (the graph view and error messages show that name)."""

    formula, differentiable = "no gradient (piecewise constant)", False

    @staticmethod
    def forward(ctx, a, b, op):
        broadcast_shape(op, a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return getattr(ops.array_namespace(a), op)(a, b)


class FloorDivide(IntegerDivision):
    name = "floor_divide"


class Remainder(IntegerDivision):
    name = "remainder"


def floor_divide(a, b):
    """a // b, numpy's floor division; no gradient."""
    return FloorDivide.apply(a, b, op="floor_divide")


def remainder(a, b):
    """a % b with the sign of b, as numpy and Python; no gradient."""
    return Remainder.apply(a, b, op="remainder")


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


def maximum(a, b):
    """Elementwise larger of a and b (broadcasting); ties split the gradient evenly."""
    return Extremum.apply(a, b, op="maximum")


def minimum(a, b):
    """Elementwise smaller of a and b (broadcasting); ties split the gradient evenly."""
    return Minimum.apply(a, b, op="minimum")


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


def clip(a, a_min=None, a_max=None):
    """a limited to [a_min, a_max] (Python numbers; either may be None)."""
    if a_min is None and a_max is None:
        raise ValueError("clip: give a_min, a_max or both")
    if a_min is not None and a_max is not None and a_min > a_max:
        raise ValueError(f"clip: a_min {a_min} is larger than a_max {a_max}")
    bounds_float = isinstance(a_min, float) or isinstance(a_max, float)
    return (FloatClip if bounds_float else Clip).apply(a, lo=a_min, hi=a_max)


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


def abs(a):
    return Abs.apply(a)


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


clamp, mod = clip, remainder  # PyTorch's names

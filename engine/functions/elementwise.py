"""Elementwise Functions (arithmetic, unary math, where, cast, GELU) and the broadcasting helpers."""

import numpy as np

import ops
from engine.autograd import Function


def unbroadcast(grad, shape):
    """Sum `grad` over the axes broadcasting added or stretched, back to `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad.reshape(shape)


def broadcast_shape(op, a, b):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast") from None


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


class Div(Function):
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


class Neg(Function):
    name, formula = "neg", "d(-a) = -da"

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    name, formula = "pow", "d(a^p) = p a^(p-1) da"

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a ** a.dtype.type(exponent)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        p = a.dtype.type(ctx.exponent)
        if p == 0:  # a^0 is constant; 0 * a^-1 would be nan at a = 0
            return np.zeros_like(g)
        return g * p * a ** (p - 1)


class Exp(Function):
    name, formula = "exp", "d(exp a) = exp(a) da"

    @staticmethod
    def forward(ctx, a):
        y = np.exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Log(Function):
    name, formula = "log", "d(log a) = da / a"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved[0]


class Sqrt(Function):
    name, formula = "sqrt", "d(sqrt a) = da / (2 sqrt a)"

    @staticmethod
    def forward(ctx, a):
        with np.errstate(invalid="ignore"):
            y = np.sqrt(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.saved[0])


class Tanh(Function):
    name, formula = "tanh", "d(tanh a) = (1 - tanh(a)^2) da"

    @staticmethod
    def forward(ctx, a):
        y = np.tanh(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved[0]
        return g * (1 - y * y)


class Relu(Function):
    name, formula = "relu", "d(relu a) = [a > 0] da"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a > 0)
        return np.maximum(a, 0)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Where(Function):
    name, formula = "where", "d(where(c, a, b)) = where(c, dy, 0), where(c, 0, dy)"

    @staticmethod
    def forward(ctx, cond, a, b):
        cond = cond.astype(bool)
        try:
            y = np.where(cond, a, b)
        except ValueError:
            raise ValueError(f"where: condition {cond.shape}, a {a.shape} and b {b.shape} "
                             "do not broadcast") from None
        ctx.save_for_backward(cond)
        ctx.shapes = a.shape, b.shape
        return y

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved
        zero = g.dtype.type(0)
        return (None, unbroadcast(np.where(cond, g, zero), ctx.shapes[0]),
                unbroadcast(np.where(cond, zero, g), ctx.shapes[1]))


class Cast(Function):
    name, formula = "cast", "d(cast a) = cast(dy) back to a's dtype"

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)



class Gelu(Function):
    name, formula = "gelu", "d(gelu a) = (Phi~(a) + a phi~(a)) da, tanh form"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ops.kernel("gelu")(x)

    @staticmethod
    def backward(ctx, g):
        return ops.kernel("gelu_backward")(ctx.saved[0], g)

"""Elementwise Functions (arithmetic, unary math, where, casts and device moves, GELU) and the
broadcasting helpers. Array math goes through the inputs' namespace `xp` (ops.array_namespace)."""

import numpy as np

import ops
from engine.autograd import Function


def unbroadcast(grad, shape):
    """Sum `grad` over the axes broadcasting added or stretched, back to `shape`."""
    if grad.shape == shape:
        return grad
    xp = ops.array_namespace(grad)
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    if axes:
        grad = xp.sum(grad, axis=axes, keepdims=True)
    return xp.reshape(grad, shape)


def broadcast_shapes(*shapes):
    """The shape the given shapes broadcast to (numpy's rule); ValueError when they do not."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        sizes = {s[i] for s in shapes if len(s) >= -i} - {1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {', '.join(map(str, shapes))} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcast_shape(op, a, b):
    try:
        return broadcast_shapes(a.shape, b.shape)
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


class Relu(Function):
    name, formula = "relu", "d(relu a) = [a > 0] da"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a > 0)
        return ops.array_namespace(a).maximum(a, 0)

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).where(ctx.saved[0], g, 0.0)


class Where(Function):
    name, formula = "where", "d(where(c, a, b)) = where(c, dy, 0), where(c, 0, dy)"

    @staticmethod
    def forward(ctx, cond, a, b):
        xp = ops.array_namespace(a)
        if cond.dtype != xp.bool:
            cond = xp.astype(cond, xp.bool)
        try:
            y = xp.where(cond, a, b)
        except ValueError:
            raise ValueError(f"where: condition {cond.shape}, a {a.shape} and b {b.shape} "
                             "do not broadcast") from None
        ctx.save_for_backward(cond)
        ctx.shapes = a.shape, b.shape
        return y

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved
        xp = ops.array_namespace(g)
        return (None, unbroadcast(xp.where(cond, g, 0.0), ctx.shapes[0]),
                unbroadcast(xp.where(cond, 0.0, g), ctx.shapes[1]))


class Cast(Function):
    name, formula = "cast", "d(cast a) = cast(dy) back to a's dtype"

    @staticmethod
    def forward(ctx, a, dtype):
        """dtype: a standard dtype name ("float32", "float64", "int64", "bool")."""
        ctx.dtype = a.dtype
        return ops.array_namespace(a).astype(a, ops.device_of(a).dtype(dtype))

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).astype(g, ctx.dtype)


class ToDevice(Function):
    name, formula = "to_device", "d(move a) = move(dy) back to a's device"

    @staticmethod
    def forward(ctx, a, device):
        ctx.source = ops.device_of(a)
        return ops.to_device(a, device)

    @staticmethod
    def backward(ctx, g):
        return ops.to_device(g, ctx.source)


class Gelu(Function):
    floating = True
    name, formula = "gelu", "d(gelu a) = (Phi~(a) + a phi~(a)) da, tanh form"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ops.kernel_for("gelu", x)(x)

    @staticmethod
    def backward(ctx, g):
        return ops.kernel_for("gelu_backward", g)(ctx.saved[0], g)

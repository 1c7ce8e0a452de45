"""Elementwise, reduction and shape primitives: one Function each, forward beside backward.

Elementwise and reduction kernels are numpy in every backend (numpy runs them at memory
speed already); the Numba kernels live behind ops.kernel for the heavy ops in layers.py.
"""

import numpy as np

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


class Reshape(Function):
    name, formula = "reshape", "d(reshape a) = reshape(dy, a.shape)"

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {a.shape} ({a.size} elements) "
                             f"into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    name, formula = "permute", "d(permute a) = permute(dy, inverse axes)"

    @staticmethod
    def forward(ctx, a, axes):
        if sorted(ax % max(a.ndim, 1) for ax in axes) != list(range(a.ndim)):
            raise ValueError(f"permute: axes {tuple(axes)} are not a permutation of the "
                             f"{a.ndim} axes of a tensor of shape {a.shape}")
        ctx.inverse = np.argsort([ax % a.ndim for ax in axes])
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


class GetItem(Function):
    name, formula = "getitem", "d(a[i]) = scatter-add dy into zeros at i"

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            return a[index]
        except IndexError as err:
            raise IndexError(f"getitem: {err} (tensor of shape {a.shape})") from None

    @staticmethod
    def backward(ctx, g):
        out = np.zeros(ctx.shape, ctx.dtype)
        if _is_basic(ctx.index):
            out[ctx.index] = g  # slices and ints pick each element at most once
        else:
            np.add.at(out, ctx.index, g)  # scatter-add: repeated integer indices accumulate
        return out


def _is_basic(index):
    """True for numpy basic indexing (ints, slices, None, ...), which never repeats an element."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | np.integer | slice | type(None)) or i is Ellipsis
               for i in items)


class Concat(Function):
    name, formula = "concat", "d(concat a_i) = split(dy) back to each a_i"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            y = np.concatenate(arrays, axis=axis)
        except (ValueError, np.exceptions.AxisError):
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"concat: shapes {shapes} differ off axis {axis}") from None
        ctx.axis = axis
        ctx.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return y

    @staticmethod
    def backward(ctx, g):
        return tuple(np.split(g, ctx.bounds, axis=ctx.axis))


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

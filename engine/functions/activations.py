"""Activations: relu and leaky relu, sigmoid, silu, softplus, GELU (the fused tanh form and
the exact erf form), softmax and log-softmax (fused row kernels); each Function with its
public function."""

import math

import ops
from engine.autograd import Function
from engine.functions.args import axis_index
from engine.functions.arithmetic import Mul
from engine.functions.shape import transpose
from engine.functions.unary_math import Erf


class Relu(Function):
    name, formula = "relu", "d(relu a) = [a > 0] da"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a > 0)
        return ops.array_namespace(a).maximum(a, 0)

    @staticmethod
    def backward(ctx, g):
        return ops.array_namespace(g).where(ctx.saved[0], g, 0.0)


def relu(a):
    return Relu.apply(a)


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


def leaky_relu(a, negative_slope=0.01):
    return LeakyRelu.apply(a, negative_slope=negative_slope)


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


def sigmoid(a):
    """1 / (1 + exp(-a)), computed as (tanh(a/2) + 1) / 2 (no overflow)."""
    return Sigmoid.apply(a)


def silu(a):
    """a * sigmoid(a) (also called swish)."""
    return Mul.apply(a, Sigmoid.apply(a))


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


def softplus(a):
    """log(1 + exp(a)), stably."""
    return Softplus.apply(a)


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


def gelu(a, approximate="tanh"):
    """GELU. approximate="tanh" (the default here, GPT-2's form, one fused kernel):
    0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3))); approximate="none": a * Phi(a) with erf
    (PyTorch's default)."""
    if approximate == "none":
        return gelu_exact(a)
    if approximate != "tanh":
        raise ValueError(f"gelu: approximate must be 'tanh' or 'none', got {approximate!r}")
    return Gelu.apply(a)


def gelu_exact(a):
    """GELU without the tanh approximation: a * Phi(a) = 0.5 a (1 + erf(a / sqrt(2)))."""
    return Mul.apply(Mul.apply(a, 0.5), Erf.apply(Mul.apply(a, 1.0 / math.sqrt(2.0))) + 1.0)


class Softmax(Function):
    floating = True
    name, formula = "softmax", "d(softmax) = y * (dy - sum(dy * y))"

    @staticmethod
    def forward(ctx, x):
        y = ops.kernel_for("softmax", x)(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.kernel_for("softmax_backward", g)(ctx.saved[0], g)


class LogSoftmax(Function):
    floating = True
    name, formula = "log_softmax", "d(log_softmax) = dy - exp(y) * sum(dy)"

    @staticmethod
    def forward(ctx, x):
        y = ops.kernel_for("log_softmax", x)(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.kernel_for("log_softmax_backward", g)(ctx.saved[0], g)


def softmax(x, axis=-1):
    return _last_axis(Softmax, x, axis)


def log_softmax(x, axis=-1):
    return _last_axis(LogSoftmax, x, axis)


def _last_axis(fn, x, axis):
    """Kernels work on the last axis; other axes are moved there and back."""
    axis = axis_index(fn.name, axis, x.shape)
    if x.shape[axis] == 0:  # nothing to normalise: an empty result, still in the graph
        return x * 0.0
    if axis == x.ndim - 1:
        return fn.apply(x)
    return transpose(fn.apply(transpose(x, axis, -1)), axis, -1)

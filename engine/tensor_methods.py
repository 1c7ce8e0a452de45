"""The Tensor methods and operators beyond the core ones: one-line wrappers over
engine.functional (numpy names, and PyTorch's where people type them), kept apart so
engine/tensor.py stays readable. Tensor inherits them."""

import numpy as np

from engine import functional as F


def _operand(x):
    """Whether `==` and friends treat x as an operand (else Python falls back to identity,
    so `t == None` is False, as in PyTorch)."""
    return isinstance(x, TensorMethods | int | float | bool | np.ndarray | np.generic | list)


class TensorMethods:
    """Mixed into Tensor: comparisons, logic, more math, reductions and shape ops."""

    __slots__ = ()
    __hash__ = object.__hash__  # defining __eq__ would otherwise drop it

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous: "
                             "use .any() or .all()")
        return bool(self.item())

    def __eq__(self, other):
        return F.equal(self, other) if _operand(other) else NotImplemented

    def __ne__(self, other):
        return F.not_equal(self, other) if _operand(other) else NotImplemented

    def __lt__(self, other):
        return F.less(self, other) if _operand(other) else NotImplemented

    def __le__(self, other):
        return F.less_equal(self, other) if _operand(other) else NotImplemented

    def __gt__(self, other):
        return F.greater(self, other) if _operand(other) else NotImplemented

    def __ge__(self, other):
        return F.greater_equal(self, other) if _operand(other) else NotImplemented

    def __floordiv__(self, other):
        return F.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return F.floor_divide(other, self)

    def __mod__(self, other):
        return F.remainder(self, other)

    def __rmod__(self, other):
        return F.remainder(other, self)

    def __rpow__(self, base):
        return F.pow(base, self)

    def __abs__(self):
        return F.abs(self)

    def __invert__(self):
        return F.logical_not(self)

    def __and__(self, other):
        return F.logical_and(self, other)

    def __rand__(self, other):
        return F.logical_and(other, self)

    def __or__(self, other):
        return F.logical_or(self, other)

    def __ror__(self, other):
        return F.logical_or(other, self)

    def __xor__(self, other):
        return F.logical_xor(self, other)

    def abs(self):
        return F.abs(self)

    def sign(self):
        return F.sign(self)

    def sigmoid(self):
        return F.sigmoid(self)

    def silu(self):
        return F.silu(self)

    def softplus(self):
        return F.softplus(self)

    def erf(self):
        return F.erf(self)

    def sin(self):
        return F.sin(self)

    def cos(self):
        return F.cos(self)

    def log2(self):
        return F.log2(self)

    def log1p(self):
        return F.log1p(self)

    def expm1(self):
        return F.expm1(self)

    def rsqrt(self):
        return F.rsqrt(self)

    def floor(self):
        return F.floor(self)

    def ceil(self):
        return F.ceil(self)

    def round(self):
        return F.round(self)

    def isnan(self):
        return F.isnan(self)

    def isinf(self):
        return F.isinf(self)

    def isfinite(self):
        return F.isfinite(self)

    def logical_not(self):
        return F.logical_not(self)

    def leaky_relu(self, negative_slope=0.01):
        return F.leaky_relu(self, negative_slope)

    def clip(self, a_min=None, a_max=None):
        return F.clip(self, a_min, a_max)

    def clamp(self, min=None, max=None):
        return F.clip(self, min, max)

    def pow(self, exponent):
        return F.pow(self, exponent)

    def maximum(self, other):
        return F.maximum(self, other)

    def minimum(self, other):
        return F.minimum(self, other)

    def eq(self, other):
        return F.eq(self, other)

    def ne(self, other):
        return F.ne(self, other)

    def lt(self, other):
        return F.lt(self, other)

    def le(self, other):
        return F.le(self, other)

    def gt(self, other):
        return F.gt(self, other)

    def ge(self, other):
        return F.ge(self, other)

    def logical_and(self, other):
        return F.logical_and(self, other)

    def logical_or(self, other):
        return F.logical_or(self, other)

    def logical_xor(self, other):
        return F.logical_xor(self, other)

    def min(self, axis=None, keepdims=False):
        return F.min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return F.argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims=False):
        return F.argmin(self, axis=axis, keepdims=keepdims)

    def logsumexp(self, axis=None, keepdims=False):
        return F.logsumexp(self, axis=axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False):
        return F.prod(self, axis=axis, keepdims=keepdims)

    def any(self, axis=None, keepdims=False):
        return F.any(self, axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims=False):
        return F.all(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims=False, correction=0):
        return F.var(self, axis=axis, keepdims=keepdims, correction=correction)

    def std(self, axis=None, keepdims=False, correction=0):
        return F.std(self, axis=axis, keepdims=keepdims, correction=correction)

    def cumsum(self, axis=None):
        return F.cumsum(self, axis=axis)

    def squeeze(self, axis=None):
        return F.squeeze(self, axis)

    def unsqueeze(self, axis):
        return F.unsqueeze(self, axis)

    def expand_dims(self, axis):
        return F.expand_dims(self, axis)

    def expand(self, *shape):
        return F.expand(self, *shape)

    def broadcast_to(self, *shape):
        return F.broadcast_to(self, *shape)

    def flatten(self, start_axis=0, end_axis=-1):
        return F.flatten(self, start_axis, end_axis)

    def flip(self, axis=None):
        return F.flip(self, axis)

    def roll(self, shift, axis=None):
        return F.roll(self, shift, axis)

    def repeat(self, *sizes):
        return F.repeat(self, *sizes)

    def tile(self, reps):
        return F.tile(self, reps)

    def tril(self, k=0):
        return F.tril(self, k)

    def triu(self, k=0):
        return F.triu(self, k)

    def gather(self, axis, index):
        return F.gather(self, axis, index)

    def take_along_axis(self, indices, axis):
        return F.take_along_axis(self, indices, axis)

    def scatter_add(self, axis, index, src):
        return F.scatter_add(self, axis, index, src)

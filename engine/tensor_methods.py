"""Tensor's operator and method surface: every operator (+ - * / ** @ [] == < % & ...) and
every op method (t.sum(), t.reshape(), t.softmax(), ...), each a one-line call of
engine.functional (numpy names, and PyTorch's where people type them). Tensor inherits them.

Split by concept, not by length: engine/tensor.py is the Tensor itself (its data, device and
dtype, conversions, and the autodiff entry points), this file is how ops are spelled on it, so
an op added to engine.functional gets its method here and nowhere else."""

import numpy as np

from engine import functional as F


def _operand(x):
    """Whether `==` and friends treat x as an operand (else Python falls back to identity,
    so `t == None` is False, as in PyTorch)."""
    return isinstance(x, TensorMethods | int | float | bool | np.ndarray | np.generic | list)


class TensorMethods:
    """Mixed into Tensor: its operators, then its op methods, grouped as engine/functions."""

    __slots__ = ()
    __hash__ = object.__hash__  # defining __eq__ would otherwise drop it

    # ---- operators: arithmetic -------------------------------------------------------------------
    def __add__(self, other):
        return F.add(self, other)

    def __radd__(self, other):
        return F.add(other, self)

    def __sub__(self, other):
        return F.sub(self, other)

    def __rsub__(self, other):
        return F.sub(other, self)

    def __mul__(self, other):
        return F.mul(self, other)

    def __rmul__(self, other):
        return F.mul(other, self)

    def __truediv__(self, other):
        return F.div(self, other)

    def __rtruediv__(self, other):
        return F.div(other, self)

    def __floordiv__(self, other):
        return F.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return F.floor_divide(other, self)

    def __mod__(self, other):
        return F.remainder(self, other)

    def __rmod__(self, other):
        return F.remainder(other, self)

    def __neg__(self):
        return F.neg(self)

    def __pow__(self, exponent):
        return F.pow(self, exponent)

    def __rpow__(self, base):
        return F.pow(base, self)

    def __abs__(self):
        return F.abs(self)

    def __matmul__(self, other):
        return F.matmul(self, other)

    def __rmatmul__(self, other):
        return F.matmul(other, self)


    # ---- operators: comparison and logic ---------------------------------------------------------
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


    # ---- operators: indexing ---------------------------------------------------------------------
    def __getitem__(self, index):
        return F.getitem(self, index)


    # ---- arithmetic ------------------------------------------------------------------------------
    def abs(self):
        return F.abs(self)

    def sign(self):
        return F.sign(self)

    def floor(self):
        return F.floor(self)

    def ceil(self):
        return F.ceil(self)

    def round(self):
        return F.round(self)

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


    # ---- unary math ------------------------------------------------------------------------------
    def exp(self):
        return F.exp(self)

    def log(self):
        return F.log(self)

    def log2(self):
        return F.log2(self)

    def log1p(self):
        return F.log1p(self)

    def expm1(self):
        return F.expm1(self)

    def sqrt(self):
        return F.sqrt(self)

    def rsqrt(self):
        return F.rsqrt(self)

    def sin(self):
        return F.sin(self)

    def cos(self):
        return F.cos(self)

    def tanh(self):
        return F.tanh(self)

    def erf(self):
        return F.erf(self)


    # ---- activations -----------------------------------------------------------------------------
    def relu(self):
        return F.relu(self)

    def leaky_relu(self, negative_slope=0.01):
        return F.leaky_relu(self, negative_slope)

    def sigmoid(self):
        return F.sigmoid(self)

    def silu(self):
        return F.silu(self)

    def softplus(self):
        return F.softplus(self)

    def gelu(self):
        return F.gelu(self)

    def softmax(self, axis=-1):
        return F.softmax(self, axis=axis)

    def log_softmax(self, axis=-1):
        return F.log_softmax(self, axis=axis)


    # ---- comparison and logic --------------------------------------------------------------------
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

    def logical_not(self):
        return F.logical_not(self)

    def isnan(self):
        return F.isnan(self)

    def isinf(self):
        return F.isinf(self)

    def isfinite(self):
        return F.isfinite(self)


    # ---- reductions ------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return F.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return F.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return F.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return F.min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return F.argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims=False):
        return F.argmin(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims=False, correction=0):
        return F.var(self, axis=axis, keepdims=keepdims, correction=correction)

    def std(self, axis=None, keepdims=False, correction=0):
        return F.std(self, axis=axis, keepdims=keepdims, correction=correction)

    def logsumexp(self, axis=None, keepdims=False):
        return F.logsumexp(self, axis=axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False):
        return F.prod(self, axis=axis, keepdims=keepdims)

    def cumsum(self, axis=None):
        return F.cumsum(self, axis=axis)

    def any(self, axis=None, keepdims=False):
        return F.any(self, axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims=False):
        return F.all(self, axis=axis, keepdims=keepdims)


    # ---- shape -----------------------------------------------------------------------------------
    def reshape(self, *shape):
        return F.reshape(self, *shape)

    def view(self, *shape):
        return F.reshape(self, *shape)

    def permute(self, *axes):
        return F.permute(self, *axes)

    def transpose(self, axis1=None, axis2=None):
        return F.transpose(self, axis1, axis2)

    @property
    def T(self):
        return F.transpose(self)

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


    # ---- indexing and selection ------------------------------------------------------------------
    def gather(self, axis, index):
        return F.gather(self, axis, index)

    def take_along_axis(self, indices, axis):
        return F.take_along_axis(self, indices, axis)

    def scatter_add(self, axis, index, src):
        return F.scatter_add(self, axis, index, src)

    def masked_fill(self, mask, value):
        return F.masked_fill(self, mask, value)

    def tril(self, k=0):
        return F.tril(self, k)

    def triu(self, k=0):
        return F.triu(self, k)

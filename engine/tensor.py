"""Tensor: a numpy array with a gradient and the graph node that produced it."""

import numpy as np

from engine import autograd

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _as_array(data, dtype):
    """Tensor data from array-likes: floats default to float32 (a float64 ndarray stays
    float64), Python ints to int64, bools stay bool; other dtypes are refused."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind == "f" and dtype not in _FLOATS:
            raise TypeError(f"Tensor: dtype {dtype} is not supported; use float32 or float64")
        return np.asarray(data, dtype=dtype)
    keep64 = isinstance(data, np.ndarray | np.floating) and np.asarray(data).dtype == np.float64
    array = np.asarray(data)
    if array.dtype.kind == "f":
        return array if array.dtype == np.float32 or keep64 else array.astype(np.float32)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "b":
        return array
    raise TypeError(f"Tensor: cannot hold data of dtype {array.dtype}")


def as_operands(op, inputs):
    """Turn an op's inputs into Tensors under the dtype rule.

    Python scalars and numpy arrays (constants) take the dtype of the float Tensor operands;
    integer tensors meeting a float tensor are promoted to it; two float Tensors of different
    dtypes (float32 with float64) raise: no silent float64 creep into a float32 graph.
    """
    floats = {x.data.dtype for x in inputs if isinstance(x, Tensor) and x.data.dtype in _FLOATS}
    if len(floats) > 1:
        shapes = ", ".join(f"{x.dtype}{tuple(x.shape)}" for x in inputs if isinstance(x, Tensor))
        raise TypeError(f"{op}: float32 and float64 tensors mixed ({shapes}); "
                        "convert one explicitly with .float() or .double()")
    dtype = floats.pop() if floats else None
    if dtype is None:  # no float Tensor: a float constant (float32 by default) sets the dtype
        inputs = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
        dtype = next((x.dtype for x in inputs if x.dtype in _FLOATS), None)
    out = []
    for x in inputs:
        if isinstance(x, Tensor):
            if dtype is not None and x.data.dtype.kind in "iub":
                x = Tensor._make(x.data.astype(dtype), requires_grad=False)
            out.append(x)
        elif dtype is None:
            out.append(Tensor(x))
        else:
            out.append(Tensor._make(np.asarray(x).astype(dtype, copy=False)))
    return tuple(out)


class Tensor:
    """An n-dimensional array with reverse-mode autodiff.

    Tensor(data, requires_grad=False, dtype=None): floats default to float32 (float64 data
    given as a numpy array keeps float64), integers become int64. Only float tensors can
    require gradients. After `loss.backward()`, `t.grad` is a numpy array shaped like `t`.
    """

    __slots__ = ("__weakref__", "_ctx", "_op", "_prev", "data", "grad", "requires_grad")
    __array_ufunc__ = None  # numpy defers `array * tensor` to Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = _as_array(data, dtype)
        self.grad = None
        self._ctx, self._op, self._prev = None, None, ()
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @classmethod
    def _make(cls, data, requires_grad=False):
        """Wrap an array an op produced (no conversion, no copy)."""
        t = cls.__new__(cls)
        t.data, t.grad, t.requires_grad = data, None, requires_grad
        t._ctx, t._op, t._prev = None, None, ()
        return t

    def requires_grad_(self, flag=True):
        if flag and self.data.dtype not in _FLOATS:
            raise TypeError(f"only float tensors can require grad; this one is {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    # ---- array facts ---------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: "cpu")
    is_leaf = property(lambda self: not self._prev)
    grad_fn = property(lambda self: self._op.name if self._op else None)

    def __len__(self):
        return len(self.data)

    def numpy(self):
        """The data as a numpy array (shared, not copied)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        array = self.data if dtype is None else self.data.astype(dtype)
        return array.copy() if copy and array is self.data else array  # np.array(t) copies

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.size} elements")
        return self.data.item()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._make(self.data)

    def float(self):
        return F.cast(self, np.float32)  # differentiable: keeps the graph

    def double(self):
        return F.cast(self, np.float64)

    def __repr__(self):
        body = np.array2string(self.data, precision=4, separator=", ", threshold=64,
                               edgeitems=3, prefix="Tensor(")
        extra = f", dtype={self.dtype}"
        if self._op is not None:
            extra += f", grad_fn={self._op.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # ---- autodiff ------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Backpropagate from this tensor. A non-scalar needs `grad` shaped like it."""
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no "
                               "graph (was it made under no_grad(), or from constants only?)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): the tensor has shape {self.shape}; a non-scalar "
                                   "needs an explicit gradient, backward(grad) shaped like it")
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad of shape {grad.shape} does not match the "
                                 f"tensor's shape {self.shape}")
        autograd.backward(self, grad, retain_graph=retain_graph)

    def _accumulate(self, g):
        if g.shape != self.data.shape:
            raise RuntimeError(f"internal: gradient shape {g.shape} for tensor {self.shape}")
        g = g.astype(self.data.dtype, copy=False)
        self.grad = g.copy() if self.grad is None else self.grad + g

    def zero_grad(self):
        self.grad = None

    # ---- operators and methods: one-line wrappers over engine.functional ----------------
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

    def __neg__(self):
        return F.neg(self)

    def __pow__(self, exponent):
        return F.pow(self, exponent)

    def __matmul__(self, other):
        return F.matmul(self, other)

    def __rmatmul__(self, other):
        return F.matmul(other, self)

    def __getitem__(self, index):
        return F.getitem(self, index)

    def exp(self):
        return F.exp(self)

    def log(self):
        return F.log(self)

    def sqrt(self):
        return F.sqrt(self)

    def tanh(self):
        return F.tanh(self)

    def relu(self):
        return F.relu(self)

    def gelu(self):
        return F.gelu(self)

    def sum(self, axis=None, keepdims=False):
        return F.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return F.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return F.max(self, axis=axis, keepdims=keepdims)

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

    def softmax(self, axis=-1):
        return F.softmax(self, axis=axis)

    def log_softmax(self, axis=-1):
        return F.log_softmax(self, axis=axis)

    def masked_fill(self, mask, value):
        return F.masked_fill(self, mask, value)


from engine import functional as F

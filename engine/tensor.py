"""Tensor: an array on some device with a gradient and the graph node that produced it.

Host data (Python numbers, lists, numpy arrays) becomes numpy on "cpu"; an array of another
registered device stays where it is. Engine code does array math only through the device's
namespace (`ops.array_namespace`) and kernels (`ops.kernel`), so one Tensor class serves all.

This file is the Tensor itself: its data, device and dtype, conversions, and the autodiff entry
points. Its operators and op methods (t + u, t.sum(), ...) are engine/tensor_methods.py, the
mixin it inherits.
"""

import numpy as np

import ops
from engine import autograd
from engine import functional as F
from engine.tensor_methods import TensorMethods

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_HOST_TYPES = (np.ndarray, np.generic, list, tuple, int, float, bool)


def _as_array(data, dtype):
    """Tensor data from host array-likes: floats default to float32 (a float64 ndarray stays
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


def _float_dtypes(xp):
    return _FLOATS if xp is np else (xp.float32, xp.float64)


def _device_of_all(op, tensors):
    """The one device of `tensors` (CPU when there are none); two devices are an error."""
    if all(type(t.data) is np.ndarray for t in tensors):
        return ops.CPU
    device = ops.CPU
    for i, t in enumerate(tensors):
        d = ops.device_of(t.data)
        if i == 0:
            device = d
        elif d is not device:
            raise ops.DeviceError(f"{op}: tensors on different devices, '{device.name}' and "
                                  f"'{d.name}'; move one with .to('{device.name}')")
    return device


def _constant(op, x, dtype, device):
    """A non-Tensor operand (Python or numpy scalar, numpy array) as an array of `device`."""
    if device is ops.CPU:
        return np.asarray(x) if dtype is None else np.asarray(x).astype(dtype, copy=False)
    if isinstance(x, np.generic):
        x = x.item()
    if not isinstance(x, int | float | bool):
        raise ops.DeviceError(f"{op}: a host {type(x).__name__} cannot be mixed with tensors on "
                              f"device '{device.name}'; move it first with "
                              f"Tensor(...).to('{device.name}')")
    xp = device.xp
    if dtype is None:
        dtype = xp.bool if isinstance(x, bool) else xp.int64 if isinstance(x, int) else xp.float32
    return xp.asarray(x, dtype=dtype, device=device.array_device)


def as_operands(op, inputs, floating=False):
    """Turn an op's inputs into Tensors of one device under the dtype rule.

    Python scalars and numpy arrays (constants) take the dtype of the float Tensor operands;
    integer tensors meeting a float tensor are promoted to it; two float Tensors of different
    dtypes (float32 with float64) raise: no silent float64 creep into a float32 graph.
    The promotion rule, in this one place: an op whose result is a float function (`floating`:
    true division, exp, log, sqrt, mean, ...) on integer or bool inputs only computes in
    float32, the default float (numpy would give float64).
    Tensors on different devices raise, and so does a numpy array meeting a device tensor.
    """
    if len(inputs) == 1 and type(inputs[0]) is Tensor:  # unary ops: nothing to reconcile
        x = inputs[0]
        if not floating or (type(x.data) is np.ndarray and x.data.dtype in _FLOATS):
            return inputs  # the common case, checked first
        xp = ops.array_namespace(x.data)
        if x.data.dtype in _float_dtypes(xp):
            return inputs
        return (Tensor._make(xp.astype(x.data, xp.float32)),)
    tensors = [x for x in inputs if isinstance(x, Tensor)]
    device = _device_of_all(op, tensors)
    xp = device.xp
    float_types = _float_dtypes(xp)
    floats = {x.data.dtype for x in tensors if x.data.dtype in float_types}
    if len(floats) > 1:
        shapes = ", ".join(f"{x.dtype}{tuple(x.shape)}" for x in tensors)
        raise TypeError(f"{op}: float32 and float64 tensors mixed ({shapes}); "
                        "convert one explicitly with .float() or .double()")
    dtype = floats.pop() if floats else None
    if dtype is None and len(tensors) < len(inputs):
        # No float Tensor: a float constant (float32 by default) sets the dtype.
        host = [Tensor(x) for x in inputs if not isinstance(x, Tensor)]
        dtype = next((h.data.dtype for h in host if h.data.dtype in _FLOATS), None)
        if dtype is not None and device is not ops.CPU:
            dtype = device.dtype(dtype.name)
    if dtype is None and floating:
        dtype = np.dtype(np.float32) if device is ops.CPU else xp.float32
    out = []
    for x in inputs:
        if isinstance(x, Tensor):
            if dtype is not None and x.data.dtype not in float_types:
                x = Tensor._make(xp.astype(x.data, dtype), requires_grad=False)
            out.append(x)
        elif dtype is None and device is ops.CPU:
            out.append(Tensor(x))
        else:
            out.append(Tensor._make(_constant(op, x, dtype, device)))
    return tuple(out)


class Tensor(TensorMethods):
    """An n-dimensional array with reverse-mode autodiff.

    Tensor(data, requires_grad=False, dtype=None, device=None): floats default to float32
    (float64 data given as a numpy array keeps float64), integers become int64. Only float
    tensors can require gradients. After `loss.backward()`, `t.grad` is an array of the
    tensor's device shaped like `t` (a numpy array on "cpu"). `t.to("strict")`, `t.to("cpu")`,
    `t.to("float64")` move or convert; `t.numpy()` and `t.item()` copy to the host.
    """

    __slots__ = ("__weakref__", "_ctx", "_op", "_prev", "data", "grad", "requires_grad")
    __array_ufunc__ = None  # numpy defers `array * tensor` to Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        if isinstance(data, _HOST_TYPES):
            data = _as_array(data, dtype)
        elif dtype is not None:  # an array of another device: convert there
            owner = ops.device_of(data)
            data = owner.xp.astype(data, owner.dtype(ops.dtype_name(dtype, owner)))
        else:
            ops.device_of(data)  # refuses arrays no device owns
        self.data = data if device is None else ops.to_device(data, device)
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
        if flag and self.data.dtype not in _float_dtypes(ops.array_namespace(self.data)):
            raise TypeError(f"only float tensors can require grad; this one is {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    # ---- array facts ---------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: ops.device_of(self.data).name)
    is_leaf = property(lambda self: not self._prev)
    grad_fn = property(lambda self: self._op.name if self._op else None)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def numpy(self):
        """The data as a numpy array: shared on "cpu", an explicit copy from other devices."""
        return ops.to_host(self.data)

    def __array__(self, dtype=None, copy=None):
        if ops.device_of(self.data) is not ops.CPU:
            raise TypeError(f"a tensor on device '{self.device}' is not converted to numpy "
                            "implicitly: call .numpy() (a copy to the host) or .to('cpu')")
        array = self.data if dtype is None else self.data.astype(dtype)
        return array.copy() if copy and array is self.data else array  # np.array(t) copies

    def item(self):
        if self.size != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.size} elements")
        return self.numpy().item()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._make(self.data)

    def to(self, *args, dtype=None, device=None):
        """A tensor on another device and/or of another dtype, PyTorch style: `to("cpu")`,
        `to("strict")`, `to(np.float64)`, `to("float64")`, `to("cpu", "float32")`.
        Differentiable (gradients flow back to this tensor's device and dtype); returns self
        when nothing changes."""
        device, dtype = ops.device_and_dtype(args, device, dtype)
        out = self
        if dtype is not None:
            name = ops.dtype_name(dtype, ops.device_of(self.data))
            if name != ops.device_of(self.data).dtype_name(self.dtype):
                out = F.cast(out, name)
        if device is not None and ops.get_device(device) is not ops.device_of(self.data):
            out = F.to_device(out, device)
        return out

    def cpu(self):
        return self.to("cpu")

    def float(self):
        return F.cast(self, "float32")  # differentiable: keeps the graph

    def double(self):
        return F.cast(self, "float64")

    def __repr__(self):
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=64,
                               edgeitems=3, prefix="Tensor(")
        device = ops.device_of(self.data)
        extra = ("" if device is ops.CPU else f", device='{device.name}'")
        extra += f", dtype={device.dtype_name(self.dtype)}"
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
            grad = ops.array_namespace(self.data).ones_like(self.data)
        else:
            grad = ops.to_device(grad.data if isinstance(grad, Tensor) else
                                 _as_array(grad, None), ops.device_of(self.data))
            xp = ops.array_namespace(grad)
            grad = grad if grad.dtype == self.dtype else xp.astype(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad of shape {grad.shape} does not match the "
                                 f"tensor's shape {self.shape}")
        autograd.backward(self, grad, retain_graph=retain_graph)

    def _accumulate(self, g):
        if g.shape != self.data.shape:
            raise RuntimeError(f"internal: gradient shape {g.shape} for tensor {self.shape}")
        xp = ops.array_namespace(g)
        if g.dtype != self.data.dtype:
            g = xp.astype(g, self.data.dtype)
        self.grad = xp.asarray(g, copy=True) if self.grad is None else self.grad + g

    def zero_grad(self):
        self.grad = None


autograd.bind_tensor(Tensor, as_operands)

"""Helpers shared by the Functions and their public functions: the device of the tensors
given, non-differentiable array arguments (indices, targets, masks) on that device, axis
checks, and numpy's broadcasting rule (the broadcast shape, and a gradient summed back to an
input's shape)."""

import operator

import numpy as np

import ops
from engine.autograd import is_tensor


def _device(*xs):
    """The device of the first tensor among xs (CPU when there is none)."""
    return next((ops.device_of(x.data) for x in xs if is_tensor(x)), ops.CPU)


def _array_arg(op, x, device):
    """A non-differentiable argument (a Tensor, array or list) as an array of `device`."""
    x = x.data if is_tensor(x) else x
    if isinstance(x, list | tuple | int | float | bool):
        x = np.asarray(x)
    owner = ops.device_of(x)
    if owner is not device:
        what = "a host array" if owner is ops.CPU else f"an array on device '{owner.name}'"
        raise ops.DeviceError(f"{op}: {what} cannot be used with tensors on device "
                              f"'{device.name}'; move it with Tensor(...).to('{device.name}')")
    return x


def _int_array(op, what, x, device):
    """Integer `x` as an int64 array of `device`; a TypeError names op and dtype otherwise."""
    x = _array_arg(op, x, device)
    xp = device.xp
    if not xp.isdtype(x.dtype, "integral"):
        raise TypeError(f"{op}: {what} must be integers, got {device.dtype_name(x.dtype)}")
    return x if x.dtype == xp.int64 else xp.astype(x, xp.int64)


def _any(mask):
    """Whether any element of a boolean array is true (one scalar read on a device)."""
    return mask.size > 0 and bool(ops.array_namespace(mask).any(mask))


def axis_index(op, axis, shape, extra=0):
    """`axis` as a non-negative int for a tensor of `shape` (`extra` more positions allowed,
    as for an inserted axis); a ValueError names the op, the axis and the shape."""
    ndim = len(shape) + extra
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{op}: axis must be an int, got {type(axis).__name__}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of shape "
                         f"{tuple(shape)}")
    return axis % ndim


def axes_tuple(op, axis, shape):
    """`axis` (None: all, an int or a sequence) as a sorted tuple of distinct axes."""
    if axis is None:
        return tuple(range(len(shape)))
    items = tuple(axis) if isinstance(axis, tuple | list) else (axis,)
    axes = tuple(sorted(axis_index(op, a, shape) for a in items))
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: repeated axis in {axis} for a tensor of shape {tuple(shape)}")
    return axes


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
    """The shape arrays a and b broadcast to; a ValueError names the op and both shapes."""
    try:
        return broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast") from None


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

"""Argument helpers shared by the public wrappers: the device of the tensors given, non-
differentiable array arguments (indices, targets, masks) on that device, and axis checks."""

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

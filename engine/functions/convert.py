"""Conversions: a tensor cast to another dtype, or moved to another device; differentiable
(the gradient goes back to the input's dtype and device)."""

import ops
from engine.autograd import Function


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


def cast(a, dtype):
    """a converted to `dtype` (differentiable: the gradient is cast back)."""
    return Cast.apply(a, dtype=dtype)


class ToDevice(Function):
    name, formula = "to_device", "d(move a) = move(dy) back to a's device"

    @staticmethod
    def forward(ctx, a, device):
        ctx.source = ops.device_of(a)
        return ops.to_device(a, device)

    @staticmethod
    def backward(ctx, g):
        return ops.to_device(g, ctx.source)


def to_device(a, device):
    """a moved to `device` (differentiable: the gradient moves back)."""
    return ToDevice.apply(a, device=device)

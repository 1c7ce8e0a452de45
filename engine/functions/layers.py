"""The layers' own Functions on fused kernels: layer norm, embedding lookup and dropout, with
their public functions and the engine's default random generator (dropout draws from it, and
so do engine.creation's rand/randn and engine.nn's initialisers). Linear is a matmul: see
engine.functions.linalg."""

import numpy as np

import ops
from engine.autograd import Function, make_tensor
from engine.functions.args import _any, _device, _int_array

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the engine's default generator (dropout, and anything drawing from it)."""
    global _generator
    _generator = np.random.default_rng(seed)


def default_generator():
    return _generator


class LayerNormOp(Function):
    floating = True
    name, formula = "layer_norm", "d(LN) = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))"

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):
        c = x.shape[-1:]
        if weight.shape != c or bias.shape != c:
            raise ValueError(f"layer_norm: input {x.shape} needs weight and bias of shape {c}, "
                             f"got {weight.shape} and {bias.shape}")
        y, mean, rstd = ops.kernel_for("layer_norm", x)(x, weight, bias, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.kernel_for("layer_norm_backward", g)(g, *ctx.saved)


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """Normalise over the last axis, then scale by weight and shift by bias."""
    if x.ndim == 0:
        raise ValueError("layer_norm: x must have at least one axis (it normalises the last); "
                         "got a 0-d tensor")
    c, xp = x.shape[-1], ops.array_namespace(x.data)
    if c == 0 or 0 in x.shape:  # nothing to normalise: an empty result, still in the graph
        return x * 0.0
    dtype = x.dtype if xp.isdtype(x.dtype, "real floating") else xp.float32
    if weight is None:
        weight = make_tensor(xp.ones(c, dtype=dtype, device=x.data.device))
    if bias is None:
        bias = make_tensor(xp.zeros(c, dtype=dtype, device=x.data.device))
    return LayerNormOp.apply(x, weight, bias, eps=eps)


class EmbeddingOp(Function):
    name, formula = "embedding", "d(W[idx]) = scatter-add dy into rows idx"

    @staticmethod
    def forward(ctx, weight, idx):
        ctx.save_for_backward(idx)
        ctx.rows = weight.shape[0]
        return ops.kernel_for("embedding", weight)(weight, idx)

    @staticmethod
    def backward(ctx, g):
        return ops.kernel_for("embedding_backward", g)(ctx.saved[0], g, ctx.rows)


def embedding(idx, weight):
    """Rows of `weight` (V, C) picked by the integer array `idx` (any shape): (..., C)."""
    idx = _int_array("embedding", "indices", idx, _device(weight))
    bad = (idx < 0) | (idx >= weight.shape[0])
    if _any(bad):
        first = ops.to_host(idx)[ops.to_host(bad)][0]
        raise IndexError(f"embedding: index {first} out of range for {weight.shape[0]} rows")
    return EmbeddingOp.apply(weight, idx=idx)


class DropoutOp(Function):
    name, formula = "dropout", "d(dropout a) = mask / (1 - p) * da"

    @staticmethod
    def forward(ctx, x, p, generator):
        dtype = ops.device_of(x).dtype_name(x.dtype)
        scale = ops.kernel_for("dropout_mask", x)(x.shape, p, dtype, generator)  # 0 or 1/(1-p)
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1-p); identity in eval."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    return DropoutOp.apply(x, p=p, generator=generator or _generator)

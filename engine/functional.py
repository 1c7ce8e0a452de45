"""The public functional API (`import engine.functional as F`): one line per primitive, and
the derived ops composed from primitives, which need no backward of their own.

Non-differentiable array arguments (indices, targets, masks) must live on the device of the
tensors they go with: a numpy array meeting a tensor of another device is an error, never a
silent copy (integer indices for getitem are the exception: moved explicitly, and counted).
"""

import builtins
import itertools
import math

import numpy as np

import ops
from engine.autograd import is_tensor, make_tensor
from engine.functions.args import _any, _array_arg, _device, _int_array, axis_index
from engine.functions.attention import Attention, SelfAttentionQKV
from engine.functions.elementwise import (
    Add,
    Cast,
    Div,
    Exp,
    FloatPow,
    Gelu,
    Log,
    Mul,
    Neg,
    Pow,
    Relu,
    Sqrt,
    Sub,
    Tanh,
    ToDevice,
    Where,
    broadcast_shapes,
)
from engine.functions.linalg import LinearOp, MatMul
from engine.functions.nn import (
    DropoutOp,
    EmbeddingOp,
    LayerNormOp,
    LogSoftmax,
    Softmax,
)
from engine.functions.reduce import Max, Mean, Sum
from engine.functions.shape import Concat, GetItem, Permute, Reshape

# isort: off
# The ops beyond the core live beside their Functions; this module is their public face.
from engine.functions.compare import (  # noqa: F401
    all, any, eq, equal, ge, greater, greater_equal, gt, isfinite, isinf, isnan, le, less,
    less_equal, logical_and, logical_not, logical_or, logical_xor, lt, ne, not_equal
)
from engine.functions.layout import (  # noqa: F401
    broadcast_to, cat, concatenate, expand, expand_dims, flatten, flip, gather, one_hot, pad,
    repeat, roll, scatter_add, squeeze, stack, take_along_axis, tile, tril, triu, unsqueeze
)
from engine.functions.losses import (  # noqa: F401
    IGNORE_INDEX, binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss
)
from engine.functions.math import (  # noqa: F401
    abs, ceil, clamp, clip, cos, erf, expm1, floor, floor_divide, gelu_exact, leaky_relu, log1p,
    log2, maximum, minimum, mod, pow_tensor, remainder, round, rsqrt, sigmoid, sign, silu, sin,
    softplus
)
from engine.functions.stats import (  # noqa: F401
    argmax, argmin, cumsum, logsumexp, min, prod, std, var
)
# isort: on

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the engine's default generator (dropout, and anything drawing from it)."""
    global _generator
    _generator = np.random.default_rng(seed)


def default_generator():
    return _generator


# ---- elementwise ---------------------------------------------------------------------------
def add(a, b):
    return Add.apply(a, b)


def sub(a, b):
    return Sub.apply(a, b)


def mul(a, b):
    return Mul.apply(a, b)


def div(a, b):
    return Div.apply(a, b)


def neg(a):
    return Neg.apply(a)


def pow(a, exponent):
    """a ** exponent; a tensor exponent (or a Python number base) is differentiable too."""
    if is_tensor(exponent) or not is_tensor(a):
        return pow_tensor(a, exponent)
    if not isinstance(exponent, int | float):
        raise TypeError(f"pow: the exponent must be a number or a tensor, got "
                        f"{type(exponent).__name__}")
    if isinstance(exponent, float) or exponent < 0:  # a float result: the promotion rule
        return FloatPow.apply(a, exponent=exponent)
    return Pow.apply(a, exponent=exponent)


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)


def sqrt(a):
    return Sqrt.apply(a)


def tanh(a):
    return Tanh.apply(a)


def relu(a):
    return Relu.apply(a)


def cast(a, dtype):
    """a converted to `dtype` (differentiable: the gradient is cast back)."""
    return Cast.apply(a, dtype=dtype)


def to_device(a, device):
    """a moved to `device` (differentiable: the gradient moves back)."""
    return ToDevice.apply(a, device=device)


def gelu(a, approximate="tanh"):
    """GELU. approximate="tanh" (the default here, GPT-2's form, one fused kernel):
    0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3))); approximate="none": a * Phi(a) with erf
    (PyTorch's default)."""
    if approximate == "none":
        return gelu_exact(a)
    if approximate != "tanh":
        raise ValueError(f"gelu: approximate must be 'tanh' or 'none', got {approximate!r}")
    return Gelu.apply(a)


# ---- reductions ----------------------------------------------------------------------------
def sum(a, axis=None, keepdims=False):
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    return Mean.apply(a, axis=axis, keepdims=keepdims)


def max(a, axis=None, keepdims=False):
    return Max.apply(a, axis=axis, keepdims=keepdims)


# ---- shapes --------------------------------------------------------------------------------
def reshape(a, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
    return Reshape.apply(a, shape=shape)


def permute(a, *axes):
    axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
    return Permute.apply(a, axes=axes)


def transpose(a, axis1=None, axis2=None):
    """Swap two axes (PyTorch style); with no axes, reverse them all (numpy style)."""
    if axis1 is None:
        return permute(a, tuple(reversed(range(a.ndim))))
    axes = list(range(a.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return permute(a, axes)


def _index_item(i, device):
    """One index item for getitem: Tensors give their data, integer arrays move to `device`."""
    if is_tensor(i):
        i = i.data
    if isinstance(i, np.ndarray | list) and device is not ops.CPU:
        i = ops.to_device(np.asarray(i), device)  # an explicit, counted host -> device copy
    return i


def getitem(a, index):
    device = _device(a)
    if isinstance(index, tuple):
        index = tuple(_index_item(i, device) for i in index)
    else:
        index = _index_item(index, device)
    return GetItem.apply(a, index=index)


def concat(tensors, axis=0):
    return Concat.apply(*tensors, axis=axis)


def split(a, sections, axis=-1):
    """Split into `sections` equal parts (an int) or parts of the given sizes (a list)."""
    n = a.shape[axis]
    if isinstance(sections, int):
        if sections <= 0 or n % sections:
            raise ValueError(f"split: axis {axis} of size {n} does not split into {sections}")
        sizes = [n // sections] * sections
    else:
        sizes = list(sections)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to axis {axis} of size {n}")
    starts = itertools.accumulate([0] + sizes)
    lead = (slice(None),) * (axis % a.ndim)
    return [getitem(a, lead + (slice(s, s + k), ...)) for s, k in zip(starts, sizes)]


def where(cond, a, b):
    """Elements of a where cond is true, else of b; cond is a boolean array (not differentiated)."""
    cond = _array_arg("where", cond, _device(a, b))
    return Where.apply(make_tensor(cond), a, b)


def masked_fill(a, mask, value):
    """a with `value` wherever the boolean `mask` is true."""
    device = _device(a)
    m = _array_arg("masked_fill", mask, device)
    if m.dtype != device.xp.bool:
        raise TypeError(f"masked_fill: mask must be boolean, got {m.dtype}; pass a bool mask "
                        f"(e.g. mask == 1)")
    try:
        broadcast_shapes(m.shape, a.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask {m.shape} does not broadcast to a "
                         f"{a.shape}") from None
    return where(m, value, a)


# ---- layers --------------------------------------------------------------------------------
def matmul(a, b):
    return MatMul.apply(a, b)


def linear(x, weight, bias=None):
    """x @ weight.T + bias, with weight (out_features, in_features) as in PyTorch."""
    return LinearOp.apply(x, weight) if bias is None else LinearOp.apply(x, weight, bias)


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


def embedding(idx, weight):
    """Rows of `weight` (V, C) picked by the integer array `idx` (any shape): (..., C)."""
    idx = _int_array("embedding", "indices", idx, _device(weight))
    bad = (idx < 0) | (idx >= weight.shape[0])
    if _any(bad):
        first = ops.to_host(idx)[ops.to_host(bad)][0]
        raise IndexError(f"embedding: index {first} out of range for {weight.shape[0]} rows")
    return EmbeddingOp.apply(weight, idx=idx)


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1-p); identity in eval."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    return DropoutOp.apply(x, p=p, generator=generator or _generator)


def _attention_args(q, k, v, mask, scale):
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"scaled_dot_product_attention: q, k, v must be (B, H, T, D); got "
                         f"{q.shape}, {k.shape}, {v.shape}")
    if k.shape[:2] != q.shape[:2] or v.shape[:3] != k.shape[:3] or k.shape[3] != q.shape[3]:
        raise ValueError(f"scaled_dot_product_attention: shapes q {q.shape}, k {k.shape}, "
                         f"v {v.shape} do not fit (B, H, Tq, D), (B, H, Tk, D), (B, H, Tk, Dv)")
    _need_float("scaled_dot_product_attention", q=q, k=k, v=v)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if mask is not None:
        device = _device(q)
        m, xp = _array_arg("scaled_dot_product_attention", mask, device), device.xp
        if m.dtype == xp.bool:  # True = may attend: 0, else -inf
            m = xp.where(m, xp.zeros(m.shape, dtype=q.dtype, device=m.device), -math.inf)
        elif m.dtype not in (xp.float32, xp.float64):  # a 0/1 int mask would be added
            raise TypeError(f"scaled_dot_product_attention: mask of dtype {m.dtype} is "
                            f"neither boolean nor float; pass a bool mask (True = may "
                            f"attend), e.g. mask == 1")
        elif m.dtype != q.dtype:
            m = xp.astype(m, q.dtype)
        try:
            if m.ndim > 4:  # would broadcast the result to more axes than (B, H, Tq, Dv)
                raise ValueError
            broadcast_shapes(m.shape, q.shape[:3] + k.shape[2:3])
        except ValueError:
            raise ValueError(f"scaled_dot_product_attention: mask {m.shape} does not broadcast "
                             f"to {q.shape[:3] + k.shape[2:3]}") from None
        mask = m
    return mask, scale


def _need_float(op, **tensors):
    """TypeError naming the first of `tensors` that is not floating point (attention kernels
    compute in the inputs' dtype: integers would be truncated, or fail to compile)."""
    for name, t in tensors.items():
        data = t.data if is_tensor(t) else t
        if not ops.array_namespace(data).isdtype(data.dtype, "real floating"):
            raise TypeError(f"{op}: {name} must be floating point, got {data.dtype}; convert "
                            f"it with .float()")


def scaled_dot_product_attention(q, k, v, mask=None, causal=False, scale=None):
    """softmax(q k^T * scale + mask) v, fused (flash-style on the numba backend).

    q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv) -> (B, H, Tq, Dv). `mask`,
    broadcastable to (B, H, Tq, Tk): bool masks (True = may attend, as in PyTorch); float
    masks are added to the scores (0 or -inf, not 1 or 0); integer masks are a TypeError.
    `causal`: query i sees key j iff j <= i + Tk - Tq. scale defaults to 1/sqrt(D).
    A query that sees no key at all gets a zero output.
    """
    mask, scale = _attention_args(q, k, v, mask, scale)
    return Attention.apply(q, k, v, mask=mask, causal=bool(causal), scale=scale)


def self_attention(qkv, n_head, causal=True, scale=None):
    """Multi-head self-attention straight from a fused projection: qkv (B, T, 3C) holds q,
    k, v side by side, each split into n_head heads of C / n_head; returns (B, T, C) with the
    heads side by side, the same as splitting, transposing to (B, H, T, D), calling
    scaled_dot_product_attention and merging back, without those copies on the numba backend.
    scale defaults to 1/sqrt(C / n_head)."""
    _need_float("self_attention", qkv=qkv)
    if qkv.ndim != 3 or qkv.shape[-1] % 3:
        raise ValueError(f"self_attention: qkv must be (B, T, 3C); got shape {qkv.shape}")
    c = qkv.shape[-1] // 3
    if int(n_head) != n_head or n_head < 1 or c % n_head:
        raise ValueError(f"self_attention: C = {c} is not divisible into n_head = {n_head} "
                         f"heads")
    scale = 1.0 / math.sqrt(c // n_head) if scale is None else float(scale)
    return SelfAttentionQKV.apply(qkv, n_head=int(n_head), causal=bool(causal), scale=scale)


def attention_weights(q, k, mask=None, causal=False, scale=None):
    """The attention probabilities (B, H, Tq, Tk), composed from primitives (for plots)."""
    mask, scale = _attention_args(q, k, k, mask, scale)
    scores = matmul(q, transpose(k, -2, -1)) * scale  # (B, H, Tq, Tk)
    if mask is not None:
        scores = scores + make_tensor(mask)
    if causal:
        tq, tk, xp = q.shape[2], k.shape[2], ops.array_namespace(q.data)
        rows = xp.reshape(xp.arange(tq, device=q.data.device), (tq, 1))  # (Tq, 1)
        future = xp.arange(tk, device=q.data.device) > rows + (tk - tq)  # (Tq, Tk)
        scores = masked_fill(scores, future, -math.inf)
    return softmax(scores, axis=-1)

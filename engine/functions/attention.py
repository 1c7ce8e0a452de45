"""Attention: fused scaled-dot-product attention and self-attention from a fused QKV
projection (flash-style kernels behind ops.kernel), each Function with its public function,
and the attention probabilities composed from primitives (for plots)."""

import math

import ops
from engine.autograd import Function, is_tensor, make_tensor
from engine.functions.activations import softmax
from engine.functions.args import _array_arg, _device, broadcast_shapes
from engine.functions.indexing import masked_fill
from engine.functions.linalg import matmul
from engine.functions.shape import transpose


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


class Attention(Function):
    name, formula = "attention", "d(softmax(QK^T s + M) V): flash backward from saved lse"

    @staticmethod
    def forward(ctx, q, k, v, mask=None, causal=False, scale=1.0):
        # q, k, v usually arrive as transposed views of the fused QKV projection; make them
        # contiguous once here, so the kernels' own copies are no-ops in forward and backward.
        contiguous = ops.kernel_for("contiguous", q)
        q, k, v = (contiguous(a) for a in (q, k, v))
        o, lse = ops.kernel_for("attention", q)(q, k, v, causal, scale, mask)
        ctx.save_for_backward(q, k, v, o, lse, mask)
        ctx.causal, ctx.scale = causal, scale
        return o

    @staticmethod
    def backward(ctx, g):
        q, k, v, o, lse, mask = ctx.saved
        dq, dk, dv = ops.kernel_for("attention_backward", g)(g, q, k, v, o, lse, ctx.causal,
                                                      ctx.scale, mask)
        return dq, dk, dv


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


class SelfAttentionQKV(Function):
    name = "self_attention"
    formula = "d(softmax(QK^T s) V) with Q, K, V the thirds of one (B, T, 3C) input"

    @staticmethod
    def forward(ctx, qkv, n_head=1, causal=True, scale=1.0):
        qkv = ops.kernel_for("contiguous", qkv)(qkv)
        y, lse = ops.kernel_for("attention_qkv", qkv)(qkv, n_head, causal, scale)
        ctx.save_for_backward(qkv, y, lse)
        ctx.n_head, ctx.causal, ctx.scale = n_head, causal, scale
        return y

    @staticmethod
    def backward(ctx, g):
        qkv, y, lse = ctx.saved
        g = ops.kernel_for("contiguous", g)(g)
        return ops.kernel_for("attention_qkv_backward", g)(g, qkv, y, lse, ctx.n_head,
                                                            ctx.causal, ctx.scale)


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

"""Scaled dot-product attention, forward and backward, as a numpy reference and fused kernels."""

import numpy as np

from ops import attention_cpu as _cpu
from ops.devices import array_namespace, kernel_for
from ops.registry import register


def _scores(q, k, causal, scale, mask):
    """s = q k^T * scale + mask, causal entries set to -inf: (B, H, Tq, Tk) in q's dtype."""
    xp = array_namespace(q)
    s = xp.matmul(q, xp.matrix_transpose(k))
    # In place: numpy reuses no temporary for `temp * python_float` (it does for a numpy
    # scalar), and a fresh (B, H, Tq, Tk) array costed 10% of the forward. float(scale) is
    # cast to q's dtype (a numpy float64 scale would promote a float32 product).
    s *= float(scale)
    if mask is not None:
        s = s + xp.astype(mask, q.dtype, copy=False)
    if causal:
        tq, tk = q.shape[-2], k.shape[-2]
        # query i is the (i + tk - tq)-th position: it sees keys j <= i + (tk - tq)
        keys, queries = xp.arange(tk, device=q.device), xp.arange(tq, device=q.device)
        hidden = keys[None, :] > queries[:, None] + (tk - tq)
        s = xp.where(hidden, -xp.inf, s)
    return s


def _finite_or_zero(x):
    """x with -inf/inf replaced by 0, so `s - x` stays -inf (not NaN) on fully masked rows."""
    xp = array_namespace(x)
    return xp.where(xp.isfinite(x), x, 0.0)


def _probabilities(s, lse):
    """p = exp(s - lse) (B, H, Tq, Tk); rows with lse = -inf have s = -inf and give p = 0."""
    return array_namespace(s).exp(s - _finite_or_zero(lse)[..., None])


def _row_max(s):
    """max over the last axis; -inf for rows with no keys (Tk = 0)."""
    xp = array_namespace(s)
    if xp is np:  # numpy's `initial` (not in the standard) ran this 2x faster on short rows
        return np.max(s, axis=-1, initial=-np.inf)
    if s.shape[-1] == 0:
        return xp.full(s.shape[:-1], -xp.inf, dtype=s.dtype, device=s.device)
    return xp.max(s, axis=-1)


def attention_reference(q, k, v, causal, scale, mask):
    """Materialise the (B, H, Tq, Tk) scores, softmax them stably; return (o, lse)."""
    xp = array_namespace(q)
    s = _scores(q, k, causal, scale, mask)
    m = _finite_or_zero(_row_max(s))                          # (B, H, Tq)
    with np.errstate(divide="ignore"):                        # log(0) = -inf: fully masked
        lse = m + xp.log(xp.sum(xp.exp(s - m[..., None]), axis=-1))
    p = _probabilities(s, lse)
    o = xp.matmul(p, v)                                       # (B, H, Tq, Dv)
    return xp.astype(o, q.dtype, copy=False), xp.astype(lse, q.dtype, copy=False)


def attention_backward_reference(do, q, k, v, o, lse, causal, scale, mask):
    """Gradients (dq, dk, dv) from the probabilities recomputed as exp(s - lse)."""
    xp = array_namespace(q)
    s = _scores(q, k, causal, scale, mask)
    p = _probabilities(s, lse)                                # (B, H, Tq, Tk)
    dv = xp.matmul(xp.matrix_transpose(p), do)                # (B, H, Tk, Dv)
    dp = xp.matmul(do, xp.matrix_transpose(v))                # (B, H, Tq, Tk)
    d_row = xp.sum(do * o, axis=-1, keepdims=True)            # (B, H, Tq, 1)
    ds = p * (dp - d_row)
    dq = xp.matmul(ds, k)                                     # (B, H, Tq, D)
    dk = xp.matmul(xp.matrix_transpose(ds), q)                # (B, H, Tk, D)
    dq *= float(scale)                                        # in place: see _scores
    dk *= float(scale)
    return dq, dk, dv


def attention_cpu(q, k, v, causal, scale, mask):
    """Fused flash-style forward (ops/attention_cpu.py): never builds the (Tq, Tk) scores,
    saves only lse. With a mask it delegates to the reference (the model's path is causal
    with no mask)."""
    if mask is not None or not (q.shape[-1] and v.shape[-1]):
        return attention_reference(q, k, v, causal, scale, mask)
    return _cpu.flash_forward(q, k, v, causal, scale, _cpu.BLOCK_Q, _cpu.BLOCK_K)


def attention_backward_cpu(do, q, k, v, o, lse, causal, scale, mask):
    """Fused backward recomputing p per key tile from lse; with a mask, delegates to the
    reference."""
    if mask is not None or not (q.shape[-1] and v.shape[-1]):
        return attention_backward_reference(do, q, k, v, o, lse, causal, scale, mask)
    return _cpu.flash_backward(do, q, k, v, o, lse, causal, scale, _cpu.BLOCK_K, _cpu.BLOCK_Q)


def _heads(xp, x, n_head):
    """(B, T, C) -> (B, H, T, C/H) (a view where the device allows)."""
    b, t, c = x.shape
    return xp.permute_dims(xp.reshape(x, (b, t, n_head, c // n_head)), (0, 2, 1, 3))


def _merge(xp, x):
    """(B, H, T, D) -> (B, T, H*D)."""
    b, h, t, d = x.shape
    return xp.reshape(xp.permute_dims(x, (0, 2, 1, 3)), (b, t, h * d))


def _qkv_heads(qkv, n_head):
    """q, k, v (B, H, T, D) from the fused projection qkv (B, T, 3C), made contiguous."""
    xp = array_namespace(qkv)
    c = qkv.shape[-1] // 3
    contiguous = kernel_for("contiguous", qkv)
    return [contiguous(_heads(xp, qkv[..., i * c:(i + 1) * c], n_head)) for i in range(3)]


def attention_qkv_composite(qkv, n_head, causal, scale):
    """Self-attention from the fused projection qkv (B, T, 3C): split, heads, the device's
    "attention" kernel, heads merged back; returns (y (B, T, C), lse (B, H, T))."""
    q, k, v = _qkv_heads(qkv, n_head)
    o, lse = kernel_for("attention", q)(q, k, v, causal, scale, None)
    return _merge(array_namespace(o), o), lse


def attention_qkv_backward_composite(dy, qkv, y, lse, n_head, causal, scale):
    """d qkv (B, T, 3C) of attention_qkv_composite, through the device's attention_backward."""
    xp = array_namespace(qkv)
    q, k, v = _qkv_heads(qkv, n_head)
    contiguous = kernel_for("contiguous", qkv)
    do, o = (contiguous(_heads(xp, a, n_head)) for a in (dy, y))
    grads = kernel_for("attention_backward", q)(do, q, k, v, o, lse, causal, scale, None)
    return xp.concat([_merge(xp, g) for g in grads], axis=-1)


def attention_qkv_cpu(qkv, n_head, causal, scale):
    """The fused kernels reading q, k, v in place from qkv and writing y (B, T, C) with the
    heads side by side: no head transposes and no copies (ops/attention_cpu.py)."""
    return _cpu.flash_forward_qkv(qkv, n_head, causal, scale, _cpu.BLOCK_Q, _cpu.BLOCK_K)


def attention_qkv_backward_cpu(dy, qkv, y, lse, n_head, causal, scale):
    """d qkv (B, T, 3C) written in place by the fused backward, dq, dk, dv side by side."""
    return _cpu.flash_backward_qkv(dy, qkv, y, lse, n_head, causal, scale, _cpu.BLOCK_Q,
                                   _cpu.BLOCK_K)


register("attention_qkv", "reference", attention_qkv_composite)
register("attention_qkv_backward", "reference", attention_qkv_backward_composite)
register("attention_qkv", "cpu", attention_qkv_cpu)
register("attention_qkv_backward", "cpu", attention_qkv_backward_cpu)
register("attention", "reference", attention_reference)
register("attention_backward", "reference", attention_backward_reference)
register("attention", "cpu", attention_cpu)
register("attention_backward", "cpu", attention_backward_cpu)

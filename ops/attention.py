"""Scaled dot-product attention, forward and backward, as a numpy reference and fused kernels."""

import numpy as np

from ops import attention_cpu as _cpu
from ops.registry import register


def _scores(q, k, causal, scale, mask):
    """s = q k^T * scale + mask, causal entries set to -inf: (B, H, Tq, Tk) in q's dtype."""
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(scale)
    if mask is not None:
        s = s + np.asarray(mask, dtype=q.dtype)
    if causal:
        tq, tk = q.shape[-2], k.shape[-2]
        # query i is the (i + tk - tq)-th position: it sees keys j <= i + (tk - tq)
        hidden = np.arange(tk)[None, :] > np.arange(tq)[:, None] + (tk - tq)
        s = np.where(hidden, q.dtype.type(-np.inf), s)
    return s


def _finite_or_zero(x):
    """x with -inf/inf replaced by 0, so `s - x` stays -inf (not NaN) on fully masked rows."""
    return np.where(np.isfinite(x), x, x.dtype.type(0))


def _probabilities(s, lse):
    """p = exp(s - lse) (B, H, Tq, Tk); rows with lse = -inf have s = -inf and give p = 0."""
    return np.exp(s - _finite_or_zero(lse)[..., None])


def attention_reference(q, k, v, causal, scale, mask):
    """Materialise the (B, H, Tq, Tk) scores, softmax them stably; return (o, lse)."""
    s = _scores(q, k, causal, scale, mask)
    m = _finite_or_zero(s.max(axis=-1, initial=-np.inf))      # (B, H, Tq)
    with np.errstate(divide="ignore"):                        # log(0) = -inf: fully masked
        lse = m + np.log(np.exp(s - m[..., None]).sum(axis=-1))
    p = _probabilities(s, lse)
    o = np.matmul(p, v)                                       # (B, H, Tq, Dv)
    return o.astype(q.dtype, copy=False), lse.astype(q.dtype, copy=False)


def attention_backward_reference(do, q, k, v, o, lse, causal, scale, mask):
    """Gradients (dq, dk, dv) from the probabilities recomputed as exp(s - lse)."""
    s = _scores(q, k, causal, scale, mask)
    p = _probabilities(s, lse)                                # (B, H, Tq, Tk)
    dv = np.matmul(np.swapaxes(p, -1, -2), do)                # (B, H, Tk, Dv)
    dp = np.matmul(do, np.swapaxes(v, -1, -2))                # (B, H, Tq, Tk)
    d_row = (do * o).sum(axis=-1, keepdims=True)              # (B, H, Tq, 1)
    ds = p * (dp - d_row)
    sc = q.dtype.type(scale)
    dq = np.matmul(ds, k) * sc                                # (B, H, Tq, D)
    dk = np.matmul(np.swapaxes(ds, -1, -2), q) * sc           # (B, H, Tk, D)
    return dq, dk, dv


def attention_cpu(q, k, v, causal, scale, mask):
    """Fused flash-style forward (ops/attention_cpu.py): never builds the (Tq, Tk) scores,
    saves only lse. With a mask it delegates to the reference (the model's path is causal
    with no mask)."""
    if mask is not None:
        return attention_reference(q, k, v, causal, scale, mask)
    return _cpu.flash_forward(q, k, v, causal, scale, _cpu.BLOCK_Q, _cpu.BLOCK_K)


def attention_backward_cpu(do, q, k, v, o, lse, causal, scale, mask):
    """Fused backward recomputing p per key tile from lse; with a mask, delegates to the
    reference."""
    if mask is not None:
        return attention_backward_reference(do, q, k, v, o, lse, causal, scale, mask)
    return _cpu.flash_backward(do, q, k, v, o, lse, causal, scale, _cpu.BLOCK_K)


register("attention", "reference", attention_reference)
register("attention_backward", "reference", attention_backward_reference)
register("attention", "cpu", attention_cpu)
register("attention_backward", "cpu", attention_backward_cpu)

"""Fused softmax cross-entropy over rows of logits, forward and backward, numpy and Numba forms."""

import numpy as np

from ops.registry import register


def cross_entropy_reference(logits, targets, ignore_index):
    """(mean NLL over rows with target != ignore_index as a 0-d array, lse (N,)).

    logits (N, V) float, targets (N,) int64. The loss is 0 when no row counts.
    """
    m = logits.max(axis=-1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(axis=-1, keepdims=True)))[..., 0]
    counted = targets != ignore_index
    safe = np.where(counted, targets, 0)  # ignored rows may hold an out-of-range index
    picked = np.take_along_axis(logits, safe[..., None], axis=-1)[..., 0]
    count = int(counted.sum())
    total = np.where(counted, lse - picked, 0).sum(dtype=logits.dtype)
    loss = total / count if count else np.zeros((), logits.dtype)
    return np.asarray(loss, dtype=logits.dtype), lse


def cross_entropy_backward_reference(logits, targets, lse, ignore_index, grad):
    """dlogits = (softmax - onehot(target)) * grad / count on counted rows, 0 on ignored rows."""
    counted = targets != ignore_index
    count = int(counted.sum())
    if count == 0:
        return np.zeros_like(logits)
    dlogits = np.exp(logits - lse[..., None])
    safe = np.where(counted, targets, 0)
    np.put_along_axis(dlogits, safe[..., None],
                      np.take_along_axis(dlogits, safe[..., None], axis=-1) - 1, axis=-1)
    scale = np.asarray(grad / count, dtype=logits.dtype)
    return dlogits * np.where(counted, scale, 0).astype(logits.dtype)[..., None]


register("cross_entropy", "reference", cross_entropy_reference)
register("cross_entropy_backward", "reference", cross_entropy_backward_reference)

"""Softmax and log-softmax over the last axis, forward and backward, in numpy and Numba forms."""

import numpy as np

from ops.registry import register


def softmax_reference(x):
    """exp(x - max) / sum(exp(x - max)) over the last axis; a row of all -inf gives NaN."""
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def softmax_backward_reference(y, dy):
    """dx = y * (dy - sum(dy * y)) over the last axis, for y = softmax(x)."""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def log_softmax_reference(x):
    """x - max - log(sum(exp(x - max))) over the last axis; a row of all -inf gives NaN."""
    with np.errstate(invalid="ignore"):
        shifted = x - x.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_softmax_backward_reference(y, dy):
    """dx = dy - exp(y) * sum(dy) over the last axis, for y = log_softmax(x)."""
    return dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)


register("softmax", "reference", softmax_reference)
register("softmax_backward", "reference", softmax_backward_reference)
register("log_softmax", "reference", log_softmax_reference)
register("log_softmax_backward", "reference", log_softmax_backward_reference)

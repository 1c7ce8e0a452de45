"""Layer normalisation over the last axis, forward and backward, in numpy and Numba forms."""

import numpy as np

from ops.registry import register


def layer_norm_reference(x, weight, bias, eps):
    """(y, mean, rstd): y = (x - mean) * rstd * weight + bias, rstd = 1/sqrt(var + eps).

    x (..., C); the variance is the biased one; mean and rstd have shape x.shape[:-1].
    """
    mean = x.mean(axis=-1)
    centred = x - mean[..., None]
    var = (centred * centred).mean(axis=-1)
    rstd = (1 / np.sqrt(var + eps)).astype(x.dtype)
    y = centred * rstd[..., None] * weight + bias
    return y, mean, rstd


def layer_norm_backward_reference(dy, x, weight, mean, rstd):
    """(dx, dweight, dbias) for y = layer_norm(x); xhat = (x - mean) * rstd, g = dy * weight:
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), dweight = sum(dy * xhat), dbias = sum(dy)."""
    xhat = (x - mean[..., None]) * rstd[..., None]
    g = dy * weight
    dx = rstd[..., None] * (g - g.mean(axis=-1, keepdims=True)
                            - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    rows = tuple(range(x.ndim - 1))
    return dx, (dy * xhat).sum(axis=rows), dy.sum(axis=rows)


register("layer_norm", "reference", layer_norm_reference)
register("layer_norm_backward", "reference", layer_norm_backward_reference)

"""GELU (tanh form) forward and backward, in numpy and Numba forms."""

import numpy as np

from ops.registry import register

_K = float(np.sqrt(2.0 / np.pi))  # sqrt(2/pi)
_A = 0.044715


def gelu_reference(x):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + np.tanh(_K * (x + _A * x * x * x)))


def gelu_backward_reference(x, dy):
    """dy * gelu'(x) = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))."""
    t = np.tanh(_K * (x + _A * x * x * x))
    return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _K * (1 + 3 * _A * x * x))


register("gelu", "reference", gelu_reference)
register("gelu_backward", "reference", gelu_backward_reference)

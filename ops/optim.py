"""The AdamW parameter update, in place, in numpy and Numba forms."""

import numpy as np

from ops.registry import register


def adamw_update_reference(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """One AdamW step on param, m, v in place (formula in ops/README.md); returns None."""
    dtype = param.dtype.type
    m *= dtype(beta1)
    m += dtype(1.0 - beta1) * grad
    v *= dtype(beta2)
    v += dtype(1.0 - beta2) * (grad * grad)
    param -= dtype(lr * weight_decay) * param
    m_hat = m / dtype(1.0 - beta1 ** step)
    v_hat = v / dtype(1.0 - beta2 ** step)
    param -= dtype(lr) * m_hat / (np.sqrt(v_hat) + dtype(eps))


register("adamw_update", "reference", adamw_update_reference)

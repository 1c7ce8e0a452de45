"""Matrix products a @ b, a @ b^T and a^T @ b, 2-D or batched 3-D, in numpy and Numba forms."""

import numpy as np

from ops.registry import register


def _check(name, a, b):
    """Raise a ValueError naming the kernel unless a and b are both 2-D or both 3-D."""
    if a.ndim != b.ndim or a.ndim not in (2, 3):
        raise ValueError(f"{name}: expected two 2-D or two 3-D arrays, "
                         f"got shapes {a.shape} and {b.shape}")


def matmul_reference(a, b):
    """a @ b for a (M, K), b (K, N), or batched (S, M, K) @ (S, K, N)."""
    _check("matmul", a, b)
    return np.matmul(a, b)


def matmul_nt_reference(a, b):
    """a @ b^T for a (.., M, K), b (.., N, K) -> (.., M, N)."""
    _check("matmul_nt", a, b)
    return np.matmul(a, np.swapaxes(b, -1, -2))


def matmul_tn_reference(a, b):
    """a^T @ b for a (.., K, M), b (.., K, N) -> (.., M, N)."""
    _check("matmul_tn", a, b)
    return np.matmul(np.swapaxes(a, -1, -2), b)


register("matmul", "reference", matmul_reference)
register("matmul_nt", "reference", matmul_nt_reference)
register("matmul_tn", "reference", matmul_tn_reference)

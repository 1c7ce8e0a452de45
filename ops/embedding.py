"""Embedding lookup weight[idx] and its scatter-add gradient, in numpy and Numba forms."""

import numpy as np

from ops.registry import register


def embedding_reference(weight, idx):
    """weight[idx]: weight (V, C), idx int64 (...) -> (..., C), a new array."""
    return weight[idx]


def embedding_backward_reference(idx, dout, num_embeddings):
    """dweight (V, C): row v is the sum of dout rows whose index is v (duplicates summed)."""
    c = dout.shape[-1]
    dweight = np.zeros((num_embeddings, c), dtype=dout.dtype)
    np.add.at(dweight, idx.reshape(-1), dout.reshape(-1, c))
    return dweight


register("embedding", "reference", embedding_reference)
register("embedding_backward", "reference", embedding_backward_reference)

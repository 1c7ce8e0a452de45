"""Embedding lookup weight[idx] and its scatter-add gradient, in numpy and Numba forms."""

import numpy as np

from ops.devices import array_namespace
from ops.numba_config import jit
from ops.registry import register


def embedding_reference(weight, idx):
    """weight[idx]: weight (V, C), idx int64 (...) -> (..., C), a new array."""
    xp = array_namespace(weight)
    rows = xp.take(weight, xp.reshape(idx, (-1,)), axis=0)
    return xp.reshape(rows, tuple(idx.shape) + (weight.shape[1],))


def embedding_backward_reference(idx, dout, num_embeddings):
    """dweight (V, C): row v is the sum of dout rows whose index is v (duplicates summed).

    numpy only (np.add.at: the array API has no scatter); ops/strict.py has the standard-only
    form."""
    c = dout.shape[-1]
    dweight = np.zeros((num_embeddings, c), dtype=dout.dtype)
    np.add.at(dweight, idx.reshape(-1), dout.reshape(-1, c))
    return dweight


@jit
def _check_indices(idx, num_rows):
    """Raise IndexError unless every index lies in [0, num_rows): a bad index would otherwise
    read or write outside the table silently (bounds checks are off in compiled code)."""
    for n in range(idx.size):
        if idx[n] < 0 or idx[n] >= num_rows:
            raise IndexError("embedding: index out of range [0, num_embeddings)")


@jit
def _gather(weight, idx, out):
    """out[n, :] = weight[idx[n], :]; weight (V, C), idx (N,), out (N, C), all contiguous."""
    # Serial: a prange form was no faster at (16384, 256) rows (memory and page-fault bound)
    # and much slower on small inputs (a launch costs ~0.1 ms with workqueue). Explicit
    # loops: slice assignment built an array view per row and ran 4x slower.
    for n in range(idx.size):
        r = idx[n]
        for c in range(out.shape[1]):
            out[n, c] = weight[r, c]


def embedding_cpu(weight, idx):
    """weight[idx] with Numba: weight (V, C), idx int64 (...) -> (..., C)."""
    weight = np.ascontiguousarray(weight)
    flat = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
    _check_indices(flat, weight.shape[0])
    out = np.empty((flat.size, weight.shape[1]), dtype=weight.dtype)
    _gather(weight, flat, out)
    return out.reshape(idx.shape + (weight.shape[1],))


@jit
def _scatter_add(idx, dout, dweight):
    """dweight[idx[n], :] += dout[n, :] in index order: idx (N,), dout (N, C), dweight (V, C).

    Serial on purpose. Parallel forms (threads owning column strips, or owning vocabulary
    row ranges) were deterministic but measured slower at idx (32, 64) / C=64 / V=64 and
    (16, 128) / C=128 / V=64 (one prange launch costs more than the whole scatter), and at
    (64, 256) / C=256 / V=50257 the time goes on first-touch page faults of the 51 MB result,
    which threads did not speed up on these 2-core machines. Summing in index order also
    makes the result equal to np.add.at's, bit for bit.
    """
    for n in range(idx.size):
        r = idx[n]
        for c in range(dout.shape[1]):
            dweight[r, c] += dout[n, c]


def embedding_backward_cpu(idx, dout, num_embeddings):
    """dweight (V, C) with duplicates summed, with Numba; see _scatter_add."""
    c = dout.shape[-1]
    flat = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
    rows = np.ascontiguousarray(dout).reshape(-1, c)
    _check_indices(flat, num_embeddings)
    dweight = np.zeros((num_embeddings, c), dtype=rows.dtype)
    _scatter_add(flat, rows, dweight)
    return dweight


register("embedding", "reference", embedding_reference)
register("embedding", "cpu", embedding_cpu)
register("embedding_backward", "reference", embedding_backward_reference)
register("embedding_backward", "cpu", embedding_backward_cpu)

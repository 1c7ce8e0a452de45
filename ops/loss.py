"""Fused softmax cross-entropy over rows of logits, forward and backward, numpy and Numba forms."""

import math

import numpy as np
from numba import prange

from ops.elementwise import as_rows, exp_t, row_max, sub_add, typed, use_threads
from ops.numba_config import jit
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


# ---- Numba forms: logits (N, V) C-contiguous; one loop iteration owns row i ----------------
# With `threads` the row loop is a prange (each row written by one iteration: deterministic),
# without it runs on the calling thread (small inputs, where a parallel launch costs more).

@jit(inline="always")
def _cross_entropy_row(row, t, ignore_index, lse, nll, i):
    """lse[i] = logsumexp(row); nll[i] = lse[i] - row[t], or 0 if t is ignore_index."""
    m = row_max(row)
    s = typed(0.0, m)
    for j in range(row.size):
        s += exp_t(row[j] - m)
    log_s = typed(math.log(s), m)
    lse[i] = m + log_s
    # (m - x_t) + log s: m - x_t is exact near the max; sub_add blocks reassociation
    nll[i] = sub_add(m, row[t], log_s) if t != ignore_index else typed(0.0, m)


@jit(parallel=True)
def _cross_entropy_rows(logits, targets, ignore_index, lse, nll, threads):
    """Fills lse and nll (N,); returns (sum of nll in float64, summed serially in row order,
    so deterministic; number of counted rows)."""
    if threads:
        for i in prange(logits.shape[0]):
            _cross_entropy_row(logits[i], targets[i], ignore_index, lse, nll, i)
    else:
        for i in range(logits.shape[0]):
            _cross_entropy_row(logits[i], targets[i], ignore_index, lse, nll, i)
    total, count = 0.0, 0
    for i in range(nll.size):
        total += nll[i]
        count += targets[i] != ignore_index
    return total, count


@jit(inline="always")
def _cross_entropy_backward_row(row, t, lse, ignore_index, scale, out):
    """out = (exp(row - lse) - onehot(t)) * scale, or 0 for an ignored row."""
    if t == ignore_index:
        for j in range(out.size):
            out[j] = 0
    else:
        for j in range(row.size):
            out[j] = exp_t(row[j] - lse) * scale
        out[t] -= scale


@jit(parallel=True)
def _cross_entropy_backward_rows(logits, targets, lse, ignore_index, scale, dlogits, threads):
    if threads:
        for i in prange(logits.shape[0]):
            _cross_entropy_backward_row(logits[i], targets[i], lse[i], ignore_index, scale,
                                        dlogits[i])
    else:
        for i in range(logits.shape[0]):
            _cross_entropy_backward_row(logits[i], targets[i], lse[i], ignore_index, scale,
                                        dlogits[i])


def _flat_targets(targets):
    return np.ascontiguousarray(targets, dtype=np.int64).reshape(-1)


def cross_entropy_cpu(logits, targets, ignore_index):
    """(mean NLL over counted rows as a 0-d array, lse (N,)); logits (N, V), targets (N,)."""
    rows = as_rows(logits)
    if rows.shape[1] == 0:
        raise ValueError(f"cross_entropy: logits {np.shape(logits)} have no classes")
    lse = np.empty(rows.shape[0], rows.dtype)
    nll = np.empty_like(lse)
    total, count = _cross_entropy_rows(rows, _flat_targets(targets), np.int64(ignore_index),
                                       lse, nll, use_threads(rows.size))
    loss = np.asarray(total / count if count else 0.0, dtype=rows.dtype)
    return loss, lse.reshape(np.shape(targets))


def cross_entropy_backward_cpu(logits, targets, lse, ignore_index, grad):
    """dlogits = (softmax - onehot) * grad / count on counted rows, 0 on ignored rows."""
    rows = as_rows(logits)
    flat_t = _flat_targets(targets)
    count = int(np.count_nonzero(flat_t != ignore_index))
    if count == 0:
        return np.zeros_like(rows).reshape(np.shape(logits))
    dlogits = np.empty_like(rows)
    _cross_entropy_backward_rows(rows, flat_t, np.ascontiguousarray(lse, rows.dtype).reshape(-1),
                                 np.int64(ignore_index), rows.dtype.type(grad / count), dlogits,
                                 use_threads(rows.size))
    return dlogits.reshape(np.shape(logits))


register("cross_entropy", "reference", cross_entropy_reference)
register("cross_entropy_backward", "reference", cross_entropy_backward_reference)
register("cross_entropy", "cpu", cross_entropy_cpu)
register("cross_entropy_backward", "cpu", cross_entropy_backward_cpu)

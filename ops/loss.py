"""Fused softmax cross-entropy over rows of logits, forward and backward, numpy and Numba forms."""

import math

import numpy as np
from numba import prange

from ops.devices import array_namespace
from ops.elementwise import as_rows, chunk_bounds, exp_t, row_max_sumexp, run_chunks, sub_add, typed
from ops.numba_config import jit
from ops.registry import register


def cross_entropy_reference(logits, targets, ignore_index):
    """(mean NLL over rows with target != ignore_index as a 0-d array, lse (N,)).

    logits (N, V) float, targets (N,) int64. The loss is 0 when no row counts.
    """
    xp = array_namespace(logits)
    m = xp.max(logits, axis=-1, keepdims=True)
    lse = (m + xp.log(xp.sum(xp.exp(logits - m), axis=-1, keepdims=True)))[..., 0]
    counted = targets != ignore_index
    safe = xp.where(counted, targets, 0)  # ignored rows may hold an out-of-range index
    picked = xp.take_along_axis(logits, safe[..., None], axis=-1)[..., 0]
    total = xp.sum(xp.where(counted, lse - picked, 0.0), dtype=logits.dtype)
    # the count rounded to logits' dtype, as `total / count` does; no row counted: 0 / 1
    count = xp.astype(xp.asarray(xp.count_nonzero(counted)), logits.dtype)
    return xp.asarray(total / xp.maximum(count, 1.0)), lse


def cross_entropy_backward_reference(logits, targets, lse, ignore_index, grad):
    """dlogits = (softmax - onehot(target)) * grad / count on counted rows, 0 on ignored rows.

    numpy only: the one-hot is subtracted in place (np.put_along_axis); the array API has no
    scatter, and a one-hot matrix costs three more passes over (N, V). ops/strict.py has the
    standard-only form."""
    counted = targets != ignore_index
    count = int(np.count_nonzero(counted))
    if count == 0:
        return np.zeros_like(logits)
    dlogits = np.exp(logits - lse[..., None])
    safe = np.where(counted, targets, 0)
    np.put_along_axis(dlogits, safe[..., None],
                      np.take_along_axis(dlogits, safe[..., None], axis=-1) - 1, axis=-1)
    scale = np.asarray(float(grad) / count, dtype=logits.dtype)  # grad: 0-d array or float
    return dlogits * np.where(counted, scale, 0).astype(logits.dtype)[..., None]


# ---- Numba forms: logits (N, V) C-contiguous ---------------------------------------------
# A `_block` function does rows [lo, hi) on the calling thread; its `_threads` driver gives each
# prange iteration one contiguous range of rows and runs the block there, so each row has one
# owner and results do not depend on the thread count; the serial and threaded paths agree to
# rounding (see ops/softmax.py: the two compiled copies of a block may round differently).

@jit
def _cross_entropy_block(logits, targets, ignore_index, lse, nll, lo, hi):
    """lse[i] = logsumexp(logits[i]); nll[i] = lse[i] - logits[i, t], or 0 if t is ignored."""
    for i in range(lo, hi):
        row, t = logits[i], targets[i]
        m, s = row_max_sumexp(row)
        log_s = typed(math.log(s), m)
        lse[i] = m + log_s
        # (m - x_t) + log s: m - x_t is exact near the max; sub_add blocks reassociation
        nll[i] = sub_add(m, row[t], log_s) if t != ignore_index else typed(0.0, m)


@jit(parallel=True)
def _cross_entropy_threads(logits, targets, ignore_index, lse, nll, chunks):
    for k in prange(chunks):
        lo, hi = chunk_bounds(k, chunks, logits.shape[0])
        _cross_entropy_block(logits, targets, ignore_index, lse, nll, lo, hi)


@jit
def _cross_entropy_backward_block(logits, targets, lse, ignore_index, scale, dlogits, lo, hi):
    """dlogits[i] = (exp(logits[i] - lse[i]) - onehot(t)) * scale, or 0 for an ignored row."""
    for i in range(lo, hi):
        row, out, t = logits[i], dlogits[i], targets[i]
        if t == ignore_index:
            for j in range(out.size):
                out[j] = 0
            continue
        c = lse[i]
        for j in range(row.size):
            out[j] = exp_t(row[j] - c) * scale
        out[t] -= scale


@jit(parallel=True)
def _cross_entropy_backward_threads(logits, targets, lse, ignore_index, scale, dlogits, chunks):
    for k in prange(chunks):
        lo, hi = chunk_bounds(k, chunks, logits.shape[0])
        _cross_entropy_backward_block(logits, targets, lse, ignore_index, scale, dlogits, lo, hi)


def _flat_targets(targets):
    return np.ascontiguousarray(targets, dtype=np.int64).reshape(-1)


def cross_entropy_cpu(logits, targets, ignore_index):
    """(mean NLL over counted rows as a 0-d array, lse (N,)); logits (N, V), targets (N,)."""
    rows, flat_t = as_rows(logits), _flat_targets(targets)
    if rows.shape[1] == 0:
        raise ValueError(f"cross_entropy: logits {np.shape(logits)} have no classes")
    lse = np.empty(rows.shape[0], rows.dtype)
    nll = np.empty_like(lse)
    run_chunks(_cross_entropy_block, _cross_entropy_threads, rows.size, rows.shape[0],
               rows, flat_t, np.int64(ignore_index), lse, nll)
    count = int(np.count_nonzero(flat_t != ignore_index))
    total = nll.sum(dtype=np.float64)  # ignored rows hold 0; float64 then one rounding
    loss = np.asarray(total / count if count else 0.0, dtype=rows.dtype)
    return loss, lse.reshape(np.shape(targets))


def cross_entropy_backward_cpu(logits, targets, lse, ignore_index, grad):
    """dlogits = (softmax - onehot) * grad / count on counted rows, 0 on ignored rows; grad a
    0-d array or a Python float."""
    rows, flat_t = as_rows(logits), _flat_targets(targets)
    count = int(np.count_nonzero(flat_t != ignore_index))
    if count == 0:
        return np.zeros_like(rows).reshape(np.shape(logits))
    dlogits = np.empty_like(rows)
    args = (rows, flat_t, np.ascontiguousarray(lse, rows.dtype).reshape(-1),
            np.int64(ignore_index), rows.dtype.type(float(grad) / count), dlogits)
    run_chunks(_cross_entropy_backward_block, _cross_entropy_backward_threads, rows.size,
               rows.shape[0], *args)
    return dlogits.reshape(np.shape(logits))


register("cross_entropy", "reference", cross_entropy_reference)
register("cross_entropy_backward", "reference", cross_entropy_backward_reference)
register("cross_entropy", "cpu", cross_entropy_cpu)
register("cross_entropy_backward", "cpu", cross_entropy_backward_cpu)

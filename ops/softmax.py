"""Softmax and log-softmax over the last axis, forward and backward, in numpy and Numba forms."""

import math

import numpy as np
from numba import prange

from ops.elementwise import as_rows, exp_t, row_max, sub_add, typed, use_threads
from ops.numba_config import jit
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


# ---- Numba forms: x is (R, N) C-contiguous; one loop iteration owns row i -------------------
# With `threads`, rows are split over threads by prange (each row written by exactly one
# iteration: deterministic); without, the same loop runs on the calling thread (small inputs).
# A row is read from memory once: the max pass brings it into cache and the later passes hit
# L1/L2. float32 rows are computed in float32 throughout (exp_f32).

@jit(inline="always")
def _softmax_row(row, out):
    m = row_max(row)  # a row of all -inf gives m = -inf, -inf - m = NaN: NaN as numpy does
    s = typed(0.0, m)
    for j in range(row.size):
        e = exp_t(row[j] - m)
        out[j] = e
        s += e
    inv = typed(1.0, m) / s
    for j in range(row.size):
        out[j] *= inv


@jit(inline="always")
def _softmax_backward_row(y, dy, dx):
    dot = typed(0.0, y[0])
    for j in range(y.size):
        dot += y[j] * dy[j]
    for j in range(y.size):
        dx[j] = y[j] * (dy[j] - dot)


@jit(inline="always")
def _log_softmax_row(row, out):
    m = row_max(row)
    s = typed(0.0, m)
    for j in range(row.size):
        s += exp_t(row[j] - m)
    neg_log_s = typed(-math.log(s), m)
    for j in range(row.size):
        out[j] = sub_add(row[j], m, neg_log_s)  # x - m first: exact near the max


@jit(inline="always")
def _log_softmax_backward_row(y, dy, dx):
    total = typed(0.0, y[0])
    for j in range(y.size):
        total += dy[j]
    for j in range(y.size):
        dx[j] = dy[j] - exp_t(y[j]) * total


@jit(parallel=True)
def _softmax_rows(x, y, threads):
    if threads:
        for i in prange(x.shape[0]):
            _softmax_row(x[i], y[i])
    else:
        for i in range(x.shape[0]):
            _softmax_row(x[i], y[i])


@jit(parallel=True)
def _softmax_backward_rows(y, dy, dx, threads):
    if threads:
        for i in prange(y.shape[0]):
            _softmax_backward_row(y[i], dy[i], dx[i])
    else:
        for i in range(y.shape[0]):
            _softmax_backward_row(y[i], dy[i], dx[i])


@jit(parallel=True)
def _log_softmax_rows(x, y, threads):
    if threads:
        for i in prange(x.shape[0]):
            _log_softmax_row(x[i], y[i])
    else:
        for i in range(x.shape[0]):
            _log_softmax_row(x[i], y[i])


@jit(parallel=True)
def _log_softmax_backward_rows(y, dy, dx, threads):
    if threads:
        for i in prange(y.shape[0]):
            _log_softmax_backward_row(y[i], dy[i], dx[i])
    else:
        for i in range(y.shape[0]):
            _log_softmax_backward_row(y[i], dy[i], dx[i])


def _rowwise(kernel, *arrays):
    """Run `kernel(*rows, out, threads)` on arrays (..., N) viewed as contiguous (R, N) of the
    first array's dtype; returns out shaped like the first array."""
    shape, dtype = np.shape(arrays[0]), np.asarray(arrays[0]).dtype
    rows = [as_rows(a, dtype) for a in arrays]
    out = np.empty_like(rows[0])
    if out.size:
        kernel(*rows, out, use_threads(out.size))
    return out.reshape(shape)


def softmax_cpu(x):
    """softmax over the last axis of x (..., N)."""
    return _rowwise(_softmax_rows, x)


def softmax_backward_cpu(y, dy):
    """y * (dy - sum(dy * y)) over the last axis."""
    return _rowwise(_softmax_backward_rows, y, dy)


def log_softmax_cpu(x):
    """log-softmax over the last axis of x (..., N)."""
    return _rowwise(_log_softmax_rows, x)


def log_softmax_backward_cpu(y, dy):
    """dy - exp(y) * sum(dy) over the last axis."""
    return _rowwise(_log_softmax_backward_rows, y, dy)


register("softmax", "reference", softmax_reference)
register("softmax_backward", "reference", softmax_backward_reference)
register("log_softmax", "reference", log_softmax_reference)
register("log_softmax_backward", "reference", log_softmax_backward_reference)
register("softmax", "cpu", softmax_cpu)
register("softmax_backward", "cpu", softmax_backward_cpu)
register("log_softmax", "cpu", log_softmax_cpu)
register("log_softmax_backward", "cpu", log_softmax_backward_cpu)

"""Softmax and log-softmax over the last axis, forward and backward, in numpy and Numba forms."""

import math

import numpy as np
from numba import prange

from ops.devices import array_namespace
from ops.elementwise import (
    chunk_bounds,
    exp_t,
    map_rows,
    row_max,
    row_max_sumexp,
    sub_add,
    typed,
)
from ops.numba_config import jit
from ops.registry import register


def softmax_reference(x):
    """exp(x - max) / sum(exp(x - max)) over the last axis; a row of all -inf gives NaN."""
    xp = array_namespace(x)
    with np.errstate(invalid="ignore"):
        e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_backward_reference(y, dy):
    """dx = y * (dy - sum(dy * y)) over the last axis, for y = softmax(x)."""
    xp = array_namespace(y)
    return y * (dy - xp.sum(dy * y, axis=-1, keepdims=True))


def log_softmax_reference(x):
    """x - max - log(sum(exp(x - max))) over the last axis; a row of all -inf gives NaN."""
    xp = array_namespace(x)
    with np.errstate(invalid="ignore"):
        shifted = x - xp.max(x, axis=-1, keepdims=True)
        return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def log_softmax_backward_reference(y, dy):
    """dx = dy - exp(y) * sum(dy) over the last axis, for y = log_softmax(x)."""
    xp = array_namespace(y)
    return dy - xp.exp(y) * xp.sum(dy, axis=-1, keepdims=True)


# ---- Numba forms: x is (R, N) C-contiguous -------------------------------------------------
# Each kernel is a `_block` / `_threads` pair (see run_chunks in ops/elementwise.py). The serial
# call and the copy of the block that LLVM inlines into the driver are compiled separately and may
# be contracted or vectorised differently: the two paths agree to an ulp or two, not always bit for
# bit (measured on a 2-core Intel Xeon: 18% of softmax outputs differed in the last bit after a
# cached load). A row is read from memory once: the max pass brings it into cache and the later
# passes hit L1/L2. float32 rows are computed in float32 throughout (exp_f32).

@jit
def _softmax_block(x, y, lo, hi):
    for i in range(lo, hi):
        row, out = x[i], y[i]
        m = row_max(row)  # a row of all -inf gives m = -inf, -inf - m = NaN, as numpy does
        s = typed(0.0, m)
        for j in range(row.size):
            e = exp_t(row[j] - m)
            out[j] = e
            s += e
        inv = typed(1.0, m) / s
        for j in range(row.size):
            out[j] *= inv


@jit(parallel=True)
def _softmax_threads(x, y, chunks):
    for k in prange(chunks):
        _softmax_block(x, y, *chunk_bounds(k, chunks, x.shape[0]))


@jit
def _softmax_backward_block(y, dy, dx, lo, hi):
    for i in range(lo, hi):
        yr, dyr, out = y[i], dy[i], dx[i]
        dot = typed(0.0, yr[0])
        for j in range(yr.size):
            dot += yr[j] * dyr[j]
        for j in range(yr.size):
            out[j] = yr[j] * (dyr[j] - dot)


@jit(parallel=True)
def _softmax_backward_threads(y, dy, dx, chunks):
    for k in prange(chunks):
        _softmax_backward_block(y, dy, dx, *chunk_bounds(k, chunks, y.shape[0]))


@jit
def _log_softmax_block(x, y, lo, hi):
    for i in range(lo, hi):
        row, out = x[i], y[i]
        m, s = row_max_sumexp(row)
        neg_log_s = typed(-math.log(s), m)
        for j in range(row.size):
            out[j] = sub_add(row[j], m, neg_log_s)  # x - m first: exact near the max


@jit(parallel=True)
def _log_softmax_threads(x, y, chunks):
    for k in prange(chunks):
        _log_softmax_block(x, y, *chunk_bounds(k, chunks, x.shape[0]))


@jit
def _log_softmax_backward_block(y, dy, dx, lo, hi):
    for i in range(lo, hi):
        yr, dyr, out = y[i], dy[i], dx[i]
        total = typed(0.0, yr[0])
        for j in range(yr.size):
            total += dyr[j]
        for j in range(yr.size):
            out[j] = dyr[j] - exp_t(yr[j]) * total


@jit(parallel=True)
def _log_softmax_backward_threads(y, dy, dx, chunks):
    for k in prange(chunks):
        _log_softmax_backward_block(y, dy, dx, *chunk_bounds(k, chunks, y.shape[0]))


def softmax_cpu(x):
    """softmax over the last axis of x (..., N)."""
    return map_rows(_softmax_block, _softmax_threads, x)


def softmax_backward_cpu(y, dy):
    """y * (dy - sum(dy * y)) over the last axis."""
    return map_rows(_softmax_backward_block, _softmax_backward_threads, y, dy)


def log_softmax_cpu(x):
    """log-softmax over the last axis of x (..., N)."""
    return map_rows(_log_softmax_block, _log_softmax_threads, x)


def log_softmax_backward_cpu(y, dy):
    """dy - exp(y) * sum(dy) over the last axis."""
    return map_rows(_log_softmax_backward_block, _log_softmax_backward_threads, y, dy)


register("softmax", "reference", softmax_reference)
register("softmax_backward", "reference", softmax_backward_reference)
register("log_softmax", "reference", log_softmax_reference)
register("log_softmax_backward", "reference", log_softmax_backward_reference)
register("softmax", "cpu", softmax_cpu)
register("softmax_backward", "cpu", softmax_backward_cpu)
register("log_softmax", "cpu", log_softmax_cpu)
register("log_softmax_backward", "cpu", log_softmax_backward_cpu)

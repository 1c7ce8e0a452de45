"""Layer normalisation over the last axis, forward and backward, in numpy and Numba forms."""

import numpy as np
from numba import prange

from ops.elementwise import as_rows, typed, use_threads
from ops.numba_config import jit
from ops.registry import register

_MAX_CHUNKS = 64  # row chunks of the backward's dweight/dbias partial sums


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


# ---- Numba forms: x is (R, C) C-contiguous; float32 math stays float32 ------------------------
# With `threads` the outer loop is a prange over independent outputs, without it the same loop
# runs on the calling thread (small inputs, where a parallel launch costs more than it saves).

@jit(inline="always")
def _layer_norm_row(row, weight, bias, eps, out, mean, rstd, i):
    n = row.size
    total = typed(0.0, eps)
    for j in range(n):
        total += row[j]
    mu = total / typed(n, eps)  # a plain `/ n` (int64) would promote to float64
    sq = typed(0.0, eps)
    for j in range(n):  # second pass over the cached row: no E[x^2] - mu^2 cancellation
        d = row[j] - mu
        sq += d * d
    r = typed(1.0, eps) / np.sqrt(sq / typed(n, eps) + eps)
    for j in range(n):
        out[j] = (row[j] - mu) * r * weight[j] + bias[j]
    mean[i] = mu
    rstd[i] = r


@jit(parallel=True)
def _layer_norm_rows(x, weight, bias, eps, y, mean, rstd, threads):
    """y[i] = (x[i] - mean[i]) * rstd[i] * weight + bias; iteration i owns row i."""
    if threads:
        for i in prange(x.shape[0]):
            _layer_norm_row(x[i], weight, bias, eps, y[i], mean, rstd, i)
    else:
        for i in range(x.shape[0]):
            _layer_norm_row(x[i], weight, bias, eps, y[i], mean, rstd, i)


@jit(inline="always")
def _backward_chunk(dy, x, weight, mean, rstd, dx, pw, pb, start, stop):
    """dx for rows [start, stop); their dy * xhat and dy summed into pw, pb (C,) in row order."""
    n = x.shape[1]
    for j in range(n):  # a loop, not `pw[:] = 0`: parallel=True would make that a parfor
        pw[j] = 0
        pb[j] = 0
    for i in range(start, stop):
        mu, r = mean[i], rstd[i]
        sg = typed(0.0, r)
        sgx = typed(0.0, r)
        for j in range(n):
            xhat = (x[i, j] - mu) * r
            g = dy[i, j] * weight[j]
            sg += g
            sgx += g * xhat
            pw[j] += dy[i, j] * xhat
            pb[j] += dy[i, j]
        a = sg / typed(n, r)
        b = sgx / typed(n, r)
        for j in range(n):
            dx[i, j] = r * (dy[i, j] * weight[j] - a - (x[i, j] - mu) * r * b)


@jit(parallel=True)
def _layer_norm_backward_rows(dy, x, weight, mean, rstd, dx, pw, pb, dweight, dbias, threads):
    """Rows are split into pw.shape[0] fixed chunks (a function of R only, not of the thread
    count); iteration k owns chunk k's rows and partial sums pw[k], pb[k]. The partials are
    then summed per column in chunk order: deterministic whatever the threads."""
    rows, chunks = x.shape[0], pw.shape[0]
    if threads:
        for k in prange(chunks):
            _backward_chunk(dy, x, weight, mean, rstd, dx, pw[k], pb[k],
                            k * rows // chunks, (k + 1) * rows // chunks)
    else:
        for k in range(chunks):
            _backward_chunk(dy, x, weight, mean, rstd, dx, pw[k], pb[k],
                            k * rows // chunks, (k + 1) * rows // chunks)
    for j in range(x.shape[1]):
        sw, sb = pw[0, j], pb[0, j]
        for k in range(1, chunks):
            sw += pw[k, j]
            sb += pb[k, j]
        dweight[j] = sw
        dbias[j] = sb


def layer_norm_cpu(x, weight, bias, eps):
    """(y, mean, rstd) over the last axis of x (..., C); mean, rstd shaped x.shape[:-1]."""
    rows = as_rows(x)
    dt = rows.dtype
    y = np.empty_like(rows)
    mean = np.empty(rows.shape[0], dt)
    rstd = np.empty(rows.shape[0], dt)
    _layer_norm_rows(rows, np.ascontiguousarray(weight, dt), np.ascontiguousarray(bias, dt),
                     dt.type(eps), y, mean, rstd, use_threads(rows.size))
    lead = np.shape(x)[:-1]
    return y.reshape(np.shape(x)), mean.reshape(lead), rstd.reshape(lead)


def layer_norm_backward_cpu(dy, x, weight, mean, rstd):
    """(dx, dweight, dbias) for y = layer_norm(x, weight, bias)."""
    rows = as_rows(x)
    dt = rows.dtype
    r, c = rows.shape
    chunks = max(1, min(_MAX_CHUNKS, r))
    dx = np.empty_like(rows)
    pw, pb = np.empty((chunks, c), dt), np.empty((chunks, c), dt)
    dweight, dbias = np.empty(c, dt), np.empty(c, dt)
    _layer_norm_backward_rows(as_rows(dy, dt), rows, np.ascontiguousarray(weight, dt),
                              np.ascontiguousarray(mean, dt).reshape(-1),
                              np.ascontiguousarray(rstd, dt).reshape(-1),
                              dx, pw, pb, dweight, dbias, use_threads(rows.size))
    return dx.reshape(np.shape(x)), dweight, dbias


register("layer_norm", "reference", layer_norm_reference)
register("layer_norm_backward", "reference", layer_norm_backward_reference)
register("layer_norm", "cpu", layer_norm_cpu)
register("layer_norm_backward", "cpu", layer_norm_backward_cpu)

"""Layer normalisation over the last axis, forward and backward, in numpy and Numba forms."""

import numpy as np
from numba import prange

from ops.devices import array_namespace
from ops.elementwise import as_rows, chunk_bounds, run_chunks, typed, use_threads
from ops.numba_config import jit
from ops.registry import register

_CHUNKS = 64  # row ranges of the backward's dweight/dbias partial sums (at most)


# _STATS: the mean and variance of a row are accumulated in float64 on every backend, then
# rounded to x's dtype. In float32 a row holding 1e20 squares to 1e40, past float32's 3.4e38:
# the variance became inf (all-zero output) or inf - inf (all-NaN). In float64 the squares of
# any float32 row stay finite, so y is right for every finite float32 input whose deviations
# from the row mean fit in float32. The float64 passes read float32 data and cost no more
# time in the Numba block (a rough A/B measurement); the reference pays one float64 copy.

def layer_norm_reference(x, weight, bias, eps):
    """(y, mean, rstd): y = (x - mean) * rstd * weight + bias, rstd = 1/sqrt(var + eps).

    x (..., C); the variance is the biased one; mean and rstd have shape x.shape[:-1].
    Statistics are accumulated in float64 (_STATS).
    """
    xp = array_namespace(x)
    wide = xp.astype(x, xp.float64) if x.dtype == xp.float32 else x  # see _STATS below
    mean = xp.mean(wide, axis=-1)
    centred = wide - mean[..., None]
    with np.errstate(over="ignore"):  # squares past float64's range: scaled below
        var = xp.mean(centred * centred, axis=-1)
    rstd = 1 / xp.sqrt(var + eps)
    if not bool(xp.all(var < xp.inf)):  # as the Numba form: var = s^2 mean((d/s)^2)
        s = xp.max(xp.abs(centred), axis=-1)
        s = xp.where(s > 0, s, xp.ones_like(s))
        scaled = centred / s[..., None]
        rstd = xp.where(var < xp.inf, rstd,
                        1 / (s * xp.sqrt(xp.mean(scaled * scaled, axis=-1))))
    mean = xp.astype(mean, x.dtype, copy=False)
    rstd = xp.astype(rstd, x.dtype, copy=False)
    y = (x - mean[..., None]) * rstd[..., None] * weight + bias
    return y, mean, rstd


def layer_norm_backward_reference(dy, x, weight, mean, rstd):
    """(dx, dweight, dbias) for y = layer_norm(x); xhat = (x - mean) * rstd, g = dy * weight:
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), dweight = sum(dy * xhat), dbias = sum(dy)."""
    xp = array_namespace(x)
    xhat = (x - mean[..., None]) * rstd[..., None]
    g = dy * weight
    dx = rstd[..., None] * (g - xp.mean(g, axis=-1, keepdims=True)
                            - xhat * xp.mean(g * xhat, axis=-1, keepdims=True))
    rows = tuple(range(x.ndim - 1))
    return dx, xp.sum(dy * xhat, axis=rows), xp.sum(dy, axis=rows)


# ---- Numba forms: x is (R, C) C-contiguous; float32 math stays float32 ------------------------
# A `_block` function does rows [lo, hi) on the calling thread; its `_threads` driver gives each
# prange iteration one contiguous range of rows and runs the same compiled block there.

@jit
def _layer_norm_block(x, weight, bias, eps, y, mean, rstd, lo, hi):
    """y[i] = (x[i] - mean[i]) * rstd[i] * weight + bias for rows i in [lo, hi)."""
    n = x.shape[1]
    for i in range(lo, hi):
        row, out = x[i], y[i]
        total = np.float64(0.0)  # statistics in float64 (_STATS)
        for j in range(n):
            total += row[j]
        mu64 = total / n
        sq = np.float64(0.0)
        for j in range(n):  # second pass over the cached row: no E[x^2] - mu^2 cancellation
            d = row[j] - mu64
            sq += d * d
        if sq == np.inf:  # float64 deviations past ~1e154 overflow when squared (_STATS)
            r64 = _scaled_rstd(row, mu64)
        else:
            r64 = 1.0 / np.sqrt(sq / n + eps)
        mu = typed(mu64, eps)
        r = typed(r64, eps)
        for j in range(n):
            out[j] = (row[j] - mu) * r * weight[j] + bias[j]
        mean[i] = mu
        rstd[i] = r


@jit
def _scaled_rstd(row, mu):
    """1/sqrt(var) of a row whose squared deviations overflow: var = s^2 mean((d/s)^2) with
    s = max |d| (eps is far below such a variance and drops out)."""
    n = row.shape[0]
    s = 0.0
    for j in range(n):
        s = max(s, abs(row[j] - mu))
    sq = 0.0
    for j in range(n):
        d = (row[j] - mu) / s
        sq += d * d
    return 1.0 / (s * np.sqrt(sq / n))


@jit(parallel=True)
def _layer_norm_threads(x, weight, bias, eps, y, mean, rstd, chunks):
    for k in prange(chunks):
        lo, hi = chunk_bounds(k, chunks, x.shape[0])
        _layer_norm_block(x, weight, bias, eps, y, mean, rstd, lo, hi)


@jit
def _backward_block(dy, x, weight, mean, rstd, dx, pw, pb, lo, hi):
    """dx for rows [lo, hi); their dy * xhat and dy summed in row order into pw, pb (C,)."""
    n = x.shape[1]
    pw[:] = 0
    pb[:] = 0
    for i in range(lo, hi):
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


@jit
def _backward_serial(dy, x, weight, mean, rstd, dx, pw, pb):
    """Chunk k (rows k*R//K .. (k+1)*R//K, K = pw.shape[0]) fills partial-sum rows pw[k], pb[k]."""
    chunks = pw.shape[0]
    for k in range(chunks):
        lo, hi = chunk_bounds(k, chunks, x.shape[0])
        _backward_block(dy, x, weight, mean, rstd, dx, pw[k], pb[k], lo, hi)


@jit(parallel=True)
def _backward_threads(dy, x, weight, mean, rstd, dx, pw, pb):
    """As _backward_serial, with prange iteration k owning chunk k and its partial rows."""
    chunks = pw.shape[0]
    for k in prange(chunks):
        lo, hi = chunk_bounds(k, chunks, x.shape[0])
        _backward_block(dy, x, weight, mean, rstd, dx, pw[k], pb[k], lo, hi)


def layer_norm_cpu(x, weight, bias, eps):
    """(y, mean, rstd) over the last axis of x (..., C); mean, rstd shaped x.shape[:-1]."""
    rows = as_rows(x)
    dt, r = rows.dtype, rows.shape[0]
    y = np.empty_like(rows)
    mean, rstd = np.empty(r, dt), np.empty(r, dt)
    args = (rows, np.ascontiguousarray(weight, dt), np.ascontiguousarray(bias, dt), dt.type(eps),
            y, mean, rstd)
    run_chunks(_layer_norm_block, _layer_norm_threads, rows.size, r, *args)
    lead = np.shape(x)[:-1]
    return y.reshape(np.shape(x)), mean.reshape(lead), rstd.reshape(lead)


def layer_norm_backward_cpu(dy, x, weight, mean, rstd):
    """(dx, dweight, dbias) for y = layer_norm(x, weight, bias). dweight and dbias are sums over
    rows: each of _CHUNKS fixed row ranges (set by R alone, not by the thread count) is summed
    in row order into its own partial row, and the partials are added in chunk order, so the
    result is deterministic on either path."""
    rows = as_rows(x)
    dt, (r, c) = rows.dtype, rows.shape
    chunks = max(1, min(_CHUNKS, r))
    dx = np.empty_like(rows)
    pw, pb = np.empty((chunks, c), dt), np.empty((chunks, c), dt)
    args = (as_rows(dy, dt), rows, np.ascontiguousarray(weight, dt),
            np.ascontiguousarray(mean, dt).reshape(-1), np.ascontiguousarray(rstd, dt).reshape(-1),
            dx, pw, pb)
    (_backward_threads if use_threads(rows.size) else _backward_serial)(*args)
    return dx.reshape(np.shape(x)), pw.sum(axis=0), pb.sum(axis=0)  # partials in chunk order


register("layer_norm", "reference", layer_norm_reference)
register("layer_norm_backward", "reference", layer_norm_backward_reference)
register("layer_norm", "cpu", layer_norm_cpu)
register("layer_norm_backward", "cpu", layer_norm_backward_cpu)

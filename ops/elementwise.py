"""GELU (tanh form) forward and backward, plus the dtype-typed scalar helpers row kernels share."""

import math

import numpy as np
from numba import prange, types
from numba.extending import overload

from ops.fastexp import exp_f32
from ops.numba_config import jit
from ops.registry import register

_K = float(np.sqrt(2.0 / np.pi))  # sqrt(2/pi)
_A = 0.044715
_BLOCK = 4096  # elements per prange iteration in the flat kernels


def gelu_reference(x):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + np.tanh(_K * (x + _A * x * x * x)))


def gelu_backward_reference(x, dy):
    """dy * gelu'(x) = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))."""
    t = np.tanh(_K * (x + _A * x * x * x))
    return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _K * (1 + 3 * _A * x * x))


# ---- typed scalar helpers: one source for float32 and float64 kernels -------------------------
# Numba types a Python float constant as float64 and would promote float32 math; these pick the
# float32 or float64 form at compile time from the argument's type. Numba's cache does not notice
# edits here from kernels in other files: after changing a helper, delete the cached
# ops/__pycache__/{softmax,loss,layernorm}.*.nb? files (or touch those sources).

def exp_t(x):
    """exp(x): ops.fastexp.exp_f32 (vectorisable) for float32, math.exp for float64."""
    raise NotImplementedError("only callable inside Numba kernels")


@overload(exp_t)
def _exp_t(x):
    if x == types.float32:
        return lambda x: exp_f32(x)
    return lambda x: math.exp(x)


def typed(value, like):
    """`value` converted to the float type of `like` (a scalar)."""
    raise NotImplementedError("only callable inside Numba kernels")


@overload(typed)
def _typed(value, like):
    if like == types.float32:
        return lambda value, like: np.float32(value)
    return lambda value, like: np.float64(value)


@jit(fastmath=False)
def sub_add(a, b, c):
    """(a - b) + c in that order: compiled without fastmath, so LLVM cannot reassociate it into
    a - (b - c), which loses digits when a and b are large and close (logits of 1e4). Use the
    result as it is: negating it let LLVM fold the negation in and reassociate anyway."""
    return (a - b) + c


@jit(inline="always")
def row_max(r):
    """max of a 1-D array with at least one element, kept in 8 independent lanes: half the
    time of one running max (shorter dependency chains). NaN may or may not win: callers only
    need NaN to reach their output, and exp(NaN - m) does that whatever m is."""
    n = r.size
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = r[0]
    j = 0
    while j + 8 <= n:
        m0, m1, m2, m3 = max(m0, r[j]), max(m1, r[j + 1]), max(m2, r[j + 2]), max(m3, r[j + 3])
        m4, m5, m6, m7 = max(m4, r[j + 4]), max(m5, r[j + 5]), max(m6, r[j + 6]), \
            max(m7, r[j + 7])
        j += 8
    m = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    for k in range(j, n):
        m = max(m, r[k])
    return m


# Below this many elements a kernel runs on the calling thread: a parallel launch costs about
# 20 us on an idle 2-core machine and 60-100 us on a busy one, more than the work it splits.
PARALLEL_MIN = 1 << 17


def use_threads(size):
    """Whether a kernel over `size` elements should run its prange loop in parallel."""
    return size >= PARALLEL_MIN


def as_rows(a, dtype=None):
    """a (..., N) as a C-contiguous (rows, N) array of `dtype` (a view when already so)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a.reshape(-1, a.shape[-1])


# ---- GELU --------------------------------------------------------------------------------------
# 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)), so gelu(x) = x / (1 + exp(-2u)) with u the tanh
# argument: one exponential, no tanh call, and no cancellation in 1 + tanh(u) for negative u.

@jit(inline="always")
def _gelu_block(x, y, start, stop):
    for i in range(start, stop):
        v = x[i]
        u = typed(_K, v) * (v + typed(_A, v) * v * v * v)
        y[i] = v / (typed(1.0, v) + exp_t(typed(-2.0, v) * u))


@jit(inline="always")
def _gelu_backward_block(x, dy, dx, start, stop):
    """gelu' = s + x s (1 - s) 2 sqrt(2/pi) (1 + 3a x^2) with s = sigmoid(2u), since
    0.5 (1 + t) = s and 1 - t^2 = 4 s (1 - s); 1 - s = E s for E = exp(-2u) (no cancellation).
    Where -2u > 40 (x < -5.2) the true gelu' is below 2e-16 and is returned as 0: computing it
    there could meet inf * 0 once fastmath reassociates the products."""
    for i in range(start, stop):
        v = x[i]
        one = typed(1.0, v)
        w = typed(-2.0 * _K, v) * (v + typed(_A, v) * v * v * v)
        e = exp_t(min(w, typed(40.0, v)))  # NaN passes through min
        s = one / (one + e)
        du = typed(2.0 * _K, v) * (one + typed(3.0 * _A, v) * v * v)
        d = dy[i] * (s + v * s * (e * s) * du)
        dx[i] = typed(0.0, v) if w > typed(40.0, v) else d


@jit(parallel=True)
def _gelu_flat(x, y, threads):
    """y = gelu(x) over flat arrays; iteration b owns elements [b*_BLOCK, (b+1)*_BLOCK)."""
    n = x.size
    if threads:
        for b in prange((n + _BLOCK - 1) // _BLOCK):
            _gelu_block(x, y, b * _BLOCK, min(n, (b + 1) * _BLOCK))
    else:
        _gelu_block(x, y, 0, n)


@jit(parallel=True)
def _gelu_backward_flat(x, dy, dx, threads):
    """dx = dy * gelu'(x) over flat arrays, blocked like _gelu_flat."""
    n = x.size
    if threads:
        for b in prange((n + _BLOCK - 1) // _BLOCK):
            _gelu_backward_block(x, dy, dx, b * _BLOCK, min(n, (b + 1) * _BLOCK))
    else:
        _gelu_backward_block(x, dy, dx, 0, n)


def gelu_cpu(x):
    """gelu(x) elementwise, any shape."""
    xf = np.ascontiguousarray(x).reshape(-1)
    y = np.empty_like(xf)
    _gelu_flat(xf, y, use_threads(xf.size))
    return y.reshape(np.shape(x))


def gelu_backward_cpu(x, dy):
    """dy * gelu'(x) elementwise, any shape."""
    xf = np.ascontiguousarray(x).reshape(-1)
    dyf = np.ascontiguousarray(dy, dtype=xf.dtype).reshape(-1)
    dx = np.empty_like(xf)
    _gelu_backward_flat(xf, dyf, dx, use_threads(xf.size))
    return dx.reshape(np.shape(x))


register("gelu", "reference", gelu_reference)
register("gelu_backward", "reference", gelu_backward_reference)
register("gelu", "cpu", gelu_cpu)
register("gelu_backward", "cpu", gelu_backward_cpu)

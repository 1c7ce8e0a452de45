"""GELU (tanh form) forward and backward, plus the dtype-typed scalar helpers row kernels share."""

import math

import numpy as np
from numba import prange, types
from numba.extending import overload

from ops.devices import array_namespace
from ops.fastexp import exp_f32
from ops.numba_config import jit, num_threads
from ops.registry import register

_K = float(np.sqrt(2.0 / np.pi))  # sqrt(2/pi)
_A = 0.044715


def gelu_reference(x):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    xp = array_namespace(x)
    return 0.5 * x * (1 + xp.tanh(_K * (x + _A * x * x * x)))


def gelu_backward_reference(x, dy):
    """dy * gelu'(x) = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))."""
    t = array_namespace(x).tanh(_K * (x + _A * x * x * x))
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


@jit(inline="always")
def row_max_sumexp(r):
    """(m, s): row_max(r) and the sum of exp(r - m): the row passes log-softmax and
    cross-entropy share (inlined by Numba, so no call and no extra compile of its own)."""
    m = row_max(r)
    s = typed(0.0, m)
    for j in range(r.size):
        s += exp_t(r[j] - m)
    return m, s


# Below this many elements a kernel runs on the calling thread. A parallel launch (workqueue
# layer) measured 55-85 us on this busy 2-core machine, and with other processes running the
# threaded path only won on inputs well above this size.
PARALLEL_MIN = 1 << 18


def use_threads(size):
    """Whether a kernel over `size` elements should take its threaded (prange) path."""
    return size >= PARALLEL_MIN


def num_chunks(n):
    """How many contiguous ranges a threaded driver splits n rows (or elements) into."""
    return max(1, min(n, num_threads()))


@jit(inline="always")
def chunk_bounds(k, chunks, n):
    """(lo, hi) of range k when [0, n) is cut into `chunks` near-equal contiguous ranges."""
    return k * n // chunks, (k + 1) * n // chunks


def as_rows(a, dtype=None):
    """a (..., N) as a C-contiguous (rows, N) array of `dtype` (a view when already so)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])  # not -1: (3, 0) has 0 elements


# A Numba kernel over rows comes as a pair: `block(*args, lo, hi)` computes rows [lo, hi) on
# the calling thread; `threads(*args, chunks)` splits the rows into `chunks` contiguous
# ranges (fixed by the row count), one per prange iteration, and runs the block on each, so
# results do not depend on the thread count. The two are written out per kernel (a jitted
# driver taking the block as an argument would be compiled again for every block, and
# ops/warm_manifest.json names each driver); choosing between them is done here, once.

def run_chunks(block, threads, size, n, *args):
    """threads(*args, num_chunks(n)) when the `size` elements are worth the threads, else
    block(*args, 0, n): the n rows (or elements) on the calling thread."""
    if use_threads(size):
        threads(*args, num_chunks(n))
    else:
        block(*args, 0, n)


def map_rows(block, threads, *arrays, flat=False):
    """out = the kernel pair (block, threads) over arrays (..., N) viewed as contiguous (R, N)
    arrays of the first one's dtype (flat: as 1-D arrays of all their elements, the same
    shape each), called as block(*views, out, lo, hi); returns out shaped like the first."""
    shape, dtype = np.shape(arrays[0]), np.asarray(arrays[0]).dtype
    views = [np.ascontiguousarray(a, dtype=dtype).reshape(-1) if flat else as_rows(a, dtype)
             for a in arrays]
    out = np.empty_like(views[0])
    if out.size:
        run_chunks(block, threads, out.size, out.shape[0], *views, out)
    return out.reshape(shape)


# ---- GELU --------------------------------------------------------------------------------------
# 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)), so gelu(x) = x / (1 + exp(-2u)) with u the tanh
# argument: one exponential (exp_f32 in float32, so it vectorises), no tanh call, and no
# cancellation in 1 + tanh(u) for negative u. float32 accuracy against the exact value on
# [-12, 12] (measured; tests/ops/test_elementwise_kernels.py asserts 5x looser): gelu within
# 1.2e-7 * max(1, |x|), gelu' within 1.9e-7 absolute; the float32 numpy reference, which
# cancels in 1 - tanh^2, has gelu' off by up to 1.2e-6 there.

# error_model="numpy": a division in a loop otherwise carries Numba's ZeroDivisionError check,
# a branch that stops LLVM from vectorising the loop (here 1 + E >= 1, so it never fires).

@jit(error_model="numpy")
def _gelu_block(x, y, lo, hi):
    """y[i] = gelu(x[i]) for i in [lo, hi) of flat arrays."""
    xs, ys = x[lo:hi], y[lo:hi]  # indices from 0: no negative-index check, so LLVM vectorises
    for i in range(xs.size):
        v = xs[i]
        u = typed(_K, v) * (v + typed(_A, v) * v * v * v)
        ys[i] = v / (typed(1.0, v) + exp_t(typed(-2.0, v) * u))


@jit(error_model="numpy")
def _gelu_backward_block(x, dy, dx, lo, hi):
    """dx[i] = dy[i] * gelu'(x[i]) for i in [lo, hi). gelu' = s + x s (1 - s) 2 sqrt(2/pi)
    (1 + 3a x^2) with s = sigmoid(2u), since 0.5 (1 + t) = s and 1 - t^2 = 4 s (1 - s); and
    1 - s = E s for E = exp(-2u) (no cancellation). Where -2u > 40 (x < -7.35) the true gelu'
    is below 4.1e-16 and is returned as 0: computing it there could meet inf * 0 once fastmath
    reassociates the products."""
    xs, dys, dxs = x[lo:hi], dy[lo:hi], dx[lo:hi]
    for i in range(xs.size):
        v = xs[i]
        one = typed(1.0, v)
        w = typed(-2.0 * _K, v) * (v + typed(_A, v) * v * v * v)
        e = exp_t(min(w, typed(40.0, v)))  # NaN passes through min
        s = one / (one + e)
        du = typed(2.0 * _K, v) * (one + typed(3.0 * _A, v) * v * v)
        d = dys[i] * (s + v * s * (e * s) * du)
        dxs[i] = typed(0.0, v) if w > typed(40.0, v) else d


@jit(parallel=True)
def _gelu_threads(x, y, chunks):
    """prange iteration k owns the k-th contiguous range of the flat arrays."""
    for k in prange(chunks):
        _gelu_block(x, y, *chunk_bounds(k, chunks, x.size))


@jit(parallel=True)
def _gelu_backward_threads(x, dy, dx, chunks):
    for k in prange(chunks):
        _gelu_backward_block(x, dy, dx, *chunk_bounds(k, chunks, x.size))


def gelu_cpu(x):
    """gelu(x) elementwise, any shape."""
    return map_rows(_gelu_block, _gelu_threads, x, flat=True)


def gelu_backward_cpu(x, dy):
    """dy * gelu'(x) elementwise, any shape."""
    return map_rows(_gelu_backward_block, _gelu_backward_threads, x, dy, flat=True)


register("gelu", "reference", gelu_reference)
register("gelu_backward", "reference", gelu_backward_reference)
register("gelu", "cpu", gelu_cpu)
register("gelu_backward", "cpu", gelu_backward_cpu)

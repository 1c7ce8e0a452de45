"""Matrix products a @ b, a @ b^T and a^T @ b, 2-D or batched 3-D, in numpy and Numba forms."""

import numba
import numpy as np

from ops import matmul_cpu as cpu
from ops.devices import array_namespace
from ops.numba_config import num_threads
from ops.registry import register

# Below this many multiply-adds (M*N*K summed over the batch) one thread does the whole
# product: starting a parallel region costs ~2-5 us with the tbb or omp threading layers
# here, and a 64^3 product takes ~10 us serially.
SERIAL_WORK = 1 << 21
# The "workqueue" layer polls with sleeps: an empty region costs ~150-350 us here
# (benchmarks/threading_layers.py), so under it the serial range is this much wider.
WORKQUEUE_FACTOR = 16
# A batch with at least as many matrices as threads gives whole matrices to threads, unless
# the matrices are this big and the batch short (then each matrix is cut into a grid).
GRID_WORK = 1 << 24


def _check(name, a, b):
    """Raise a ValueError naming the kernel unless a and b are both 2-D or both 3-D."""
    if a.ndim != b.ndim or a.ndim not in (2, 3):
        raise ValueError(f"{name}: expected two 2-D or two 3-D arrays, "
                         f"got shapes {a.shape} and {b.shape}")


def matmul_reference(a, b):
    """a @ b for a (M, K), b (K, N), or batched (S, M, K) @ (S, K, N)."""
    _check("matmul", a, b)
    return array_namespace(a).matmul(a, b)


def matmul_nt_reference(a, b):
    """a @ b^T for a (.., M, K), b (.., N, K) -> (.., M, N)."""
    _check("matmul_nt", a, b)
    xp = array_namespace(a)
    return xp.matmul(a, xp.matrix_transpose(b))


def matmul_tn_reference(a, b):
    """a^T @ b for a (.., K, M), b (.., K, N) -> (.., M, N)."""
    _check("matmul_tn", a, b)
    xp = array_namespace(a)
    return xp.matmul(xp.matrix_transpose(a), b)


def _operand(x, transposed):
    """(flat C-ordered data, leading dimension, transposed flag) for the stored matrix x.

    A C-contiguous transpose (x.T of a C array, or x.swapaxes(-1, -2)) is read through the
    flipped flag instead of being copied; anything else is made contiguous (and writeable).
    """
    if not x.flags.writeable:  # a read-only array would compile a second set of kernels
        x = x.copy()
    if not x.flags.c_contiguous:
        xt = np.swapaxes(x, -1, -2)
        if xt.flags.c_contiguous:
            x, transposed = xt, not transposed
        else:
            x = np.ascontiguousarray(x)
    return x.reshape(-1), x.shape[-1], int(transposed)


def _dims(name, a, ta, b, tb):
    """(S, M, N, K) of op(a) @ op(b), S = 0 for 2-D; raise ValueError if they do not fit."""
    _check(name, a, b)
    m, k = a.shape[-2:][::-1] if ta else a.shape[-2:]
    k2, n = b.shape[-2:][::-1] if tb else b.shape[-2:]
    if k != k2 or a.shape[:-2] != b.shape[:-2]:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} do not fit")
    return (a.shape[0] if a.ndim == 3 else 0), m, n, k


def _gemm(name, a, ta, b, tb, bias=None):
    """op(a) @ op(b) (+ bias along the last axis) with the Numba kernels (op = transpose
    where the flag is set)."""
    s, m, n, k = _dims(name, a, ta, b, tb)
    batched = a.ndim == 3
    dtype = a.dtype if a.dtype == b.dtype else np.result_type(a, b)
    if dtype.char not in "fd":  # outside the contract (not float32/float64): numpy's answer
        out = np.matmul(np.swapaxes(a, -1, -2) if ta else a, np.swapaxes(b, -1, -2) if tb else b)
        return out if bias is None else out + bias
    s = max(s, 1)
    out = np.empty((s, m, n), dtype) if k else np.zeros((s, m, n), dtype)
    if m and n and k:
        a, lda, ta = _operand(a.astype(dtype, copy=False), ta)
        b, ldb, tb = _operand(b.astype(dtype, copy=False), tb)
        _run(a, lda, ta, b, ldb, tb, out.reshape(-1), s, m, n, k,
             cpu.padded_bias(bias, n, dtype))
    elif bias is not None:  # k == 0: the product is 0, the bias remains
        out += bias
    return out if batched else out[0]


def _run(a, lda, ta, b, ldb, tb, c, s, m, n, k, bias):
    """Pick the schedule: one thread, whole matrices per thread, or a grid per matrix."""
    blocks = (cpu.MC, cpu.KC, cpu.NC)
    fn = cpu.GEMM_BLOCK.address(c.dtype)
    threads = num_threads() if s * m * n * k >= _serial_work() else 1
    with_bias = bias.size > 0
    if threads == 1:
        cpu.gemm_serial(fn, a, lda, ta, b, ldb, tb, c, s, m, n, k, blocks, False, bias,
                        with_bias)
        return
    whole = s >= threads and (s >= 4 * threads or m * n * k < GRID_WORK)
    tm, tn = (1, 1) if whole else _grid(m, n, threads)
    workers = min(threads, s * tm * tn)
    cpu.gemm_parallel(fn, a, lda, ta, b, ldb, tb, c, s, m, n, k, tm, tn, workers, blocks, False,
                      bias, with_bias)


def _serial_work():
    """SERIAL_WORK, scaled up when the threading layer is the slow-to-start "workqueue"."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet: the layer asked for
        layer = numba.config.THREADING_LAYER
    return SERIAL_WORK * (WORKQUEUE_FACTOR if layer == "workqueue" else 1)


def _grid(m, n, threads):
    """(tm, tn) with tm * tn = threads cutting the (m, n) output into blocks.

    A row block packs its own B panel and a column block its own A block, so pick the cut
    that packs least: minimise tn*m + tm*n, with at least one micro-tile per block.
    """
    best = None
    for tm in range(1, threads + 1):
        tn = threads // tm
        if tm * tn != threads or tm > -(-m // cpu.MR) or tn > -(-n // 8):
            continue
        cost = tn * m + tm * n
        if best is None or cost < best[0]:
            best = (cost, tm, tn)
    return best[1:] if best else (1, 1)


def matmul_cpu(a, b):
    """a @ b for a (M, K), b (K, N), or batched (S, M, K) @ (S, K, N); Numba, no BLAS."""
    return _gemm("matmul", a, False, b, False)


def matmul_nt_cpu(a, b):
    """a @ b^T for a (.., M, K), b (.., N, K) -> (.., M, N); Numba, no BLAS."""
    return _gemm("matmul_nt", a, False, b, True)


def matmul_tn_cpu(a, b):
    """a^T @ b for a (.., K, M), b (.., K, N) -> (.., M, N); Numba, no BLAS."""
    return _gemm("matmul_tn", a, True, b, False)


def _check_linear(x, w, b):
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"linear: x {x.shape} and w {w.shape} must be (N, in) and (out, in)")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"linear: bias {b.shape} must be ({w.shape[0]},) for w {w.shape}")


def linear_reference(x, w, b):
    """x @ w^T + b for x (N, in), w (out, in), b (out,) or None: the linear layer's map."""
    _check_linear(x, w, b)
    y = matmul_nt_reference(x, w)
    return y if b is None else y + b


def linear_cpu(x, w, b):
    """x @ w^T + b with the bias added inside the matrix product (its first block starts
    from it), not by a pass of its own over the output; Numba, no BLAS."""
    _check_linear(x, w, b)
    return _gemm("linear", x, False, w, True, bias=b)


def sum_rows_reference(x):
    """The column sums of x (N, C) -> (C,): the bias gradient of a linear layer."""
    return array_namespace(x).sum(x, axis=0)


def sum_rows_cpu(x):
    """sum_rows with the Numba kernel (matmul_cpu.sum_rows: fixed blocks of rows summed in
    parallel, then in order: the same result for any thread count)."""
    if x.ndim != 2 or x.dtype.char not in "fd" or x.shape[0] == 0:
        return sum_rows_reference(x)
    x = np.ascontiguousarray(x)
    if not x.flags.writeable:  # one compiled form: read-only arrays are another Numba type
        x = x.copy()
    return cpu.sum_rows(x)


register("linear", "reference", linear_reference)
register("linear", "cpu", linear_cpu)
register("sum_rows", "reference", sum_rows_reference)
register("sum_rows", "cpu", sum_rows_cpu)
register("matmul", "reference", matmul_reference)
register("matmul_nt", "reference", matmul_nt_reference)
register("matmul_tn", "reference", matmul_tn_reference)
register("matmul", "cpu", matmul_cpu)
register("matmul_nt", "cpu", matmul_nt_cpu)
register("matmul_tn", "cpu", matmul_tn_cpu)

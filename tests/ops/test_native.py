"""ops.native: routines compiled once and called by address from kernels."""

import numpy as np
import pytest
from numba import prange
from numba.core.errors import TypingError

from ops import attention_cpu, matmul_cpu
from ops.native import Entry
from ops.numba_config import jit


def _scale_rows(x, first, rows, width, f):
    """x[r*width + j] *= f for rows first .. first+rows-1."""
    for r in range(first, first + rows):
        for j in range(width):
            x[r * width + j] *= f


SCALE_ROWS = Entry(_scale_rows, "aiiif")
_call = SCALE_ROWS.caller()


@jit(parallel=True)
def _scale_all(fn, x, rows, width, f, workers):
    for w in prange(workers):
        first = w * rows // workers
        _call(fn, x, first, (w + 1) * rows // workers - first, width, f)


@jit(cache=False)  # typed afresh each run: a cached success would skip the check
def _wrong_kind(fn, x):
    _call(fn, x, 0.5, 1, 1, x[0])  # a float where an int64 is declared


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_calls_entry_by_address(dtype):
    x = np.arange(24, dtype=dtype)
    _scale_all(SCALE_ROWS.address(dtype), x, 6, 4, dtype(2.5), 3)
    np.testing.assert_array_equal(x, np.arange(24, dtype=dtype) * dtype(2.5))


def test_argument_of_the_wrong_kind_is_a_typing_error():
    x = np.ones(4, np.float32)
    with pytest.raises(TypingError, match=r"_scale_rows: argument 1 is float64"):
        _wrong_kind(SCALE_ROWS.address(np.float32), x)


def test_spec_must_fit_the_function_and_dtype_must_be_float():
    with pytest.raises(ValueError, match="_scale_rows: spec 'aii'"):
        Entry(_scale_rows, "aii")
    with pytest.raises(TypeError, match="float32 or float64 only, not int64"):
        SCALE_ROWS.address(np.int64)


def _defined_functions(kernel, *args):
    """Names of the functions whose bodies a fresh compile of the kernel holds in its LLVM
    module (compiled here, not loaded: Numba cannot inspect cached code)."""
    fresh = jit(cache=False, parallel=True)(kernel.py_func)
    fresh(*args)
    return " ".join(line.split("@", 1)[1].split("(", 1)[0]
                    for text in fresh.inspect_llvm().values() for line in text.splitlines()
                    if line.startswith("define "))


@pytest.mark.slow
def test_parallel_kernels_hold_no_copy_of_the_block_routines():
    # why the routines are called by address: a linked copy is compiled again in every caller
    # (ops/native.py); these are the routines' own helpers
    f32, mm, ac = np.float32, matmul_cpu, attention_cpu
    a = np.ones(64 * 64, f32)
    gemm = mm.GEMM_BLOCK.address(f32)
    blocks = (mm.MC, mm.KC, mm.NC)
    layout = (0, 8 * 4, 8 * 4, 4)  # one head of 8 rows of 4
    q, o, lse = np.ones(32, f32), np.zeros(32, f32), np.zeros(8, f32)
    shape = (1, 1, 8, 8, 4, 4, True, f32(0.5))
    cases = [(mm.gemm_parallel, (gemm, a, 64, 0, a, 64, 0, np.empty_like(a), 1, 64, 64, 64,
                                 1, 1, 1, blocks, False, a[:0], False)),
             (ac._forward_kernel, (ac.FORWARD_BLOCK.address(f32), gemm, q, q, q, o, lse,
                                   *shape, 4, 4, 1, layout, layout, layout, layout)),
             (ac._backward_kernel, (ac.BACKWARD_HEAD.address(f32), gemm, q, q, q, o, o, lse,
                                    np.zeros_like(q), np.zeros_like(q), np.zeros_like(q),
                                    *shape, 4, 4, 1, layout, layout, layout, layout))]
    for kernel, args in cases:
        defined = _defined_functions(kernel, *args)
        for helper in ("_macro", "_micro", "_pack", "_online_softmax", "_unseen_row"):
            assert helper not in defined, (kernel.__name__, helper)

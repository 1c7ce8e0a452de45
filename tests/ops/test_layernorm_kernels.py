"""Layer-norm kernels: Numba forms against the reference, the reference against hand formulas
and float64 finite differences, deterministic dweight/dbias, large offsets, layouts."""

import numba
import numpy as np
import pytest

import ops
from ops import elementwise
from ops.layernorm import (
    layer_norm_backward_cpu,
    layer_norm_backward_reference,
    layer_norm_cpu,
    layer_norm_reference,
)

DTYPES = [np.float32, np.float64]
SIZES = [1, 3, 17, 63, 65, 1000]
EPS = 1e-5
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-5}, np.float64: {"rtol": 1e-11, "atol": 1e-11}}


def _problem(rng, shape, dtype, offset=1.0):
    c = shape[-1]
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    weight = (1 + 0.5 * rng.standard_normal(c)).astype(dtype)
    bias = rng.standard_normal(c).astype(dtype)
    return x, dy, weight, bias


def _assert_close(got, expected, dtype):
    """allclose with atol scaled by the largest expected magnitude (sums over many rows)."""
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == dtype
        scale = max(1.0, float(np.abs(e).max())) if e.size else 1.0
        np.testing.assert_allclose(g, e, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * scale)


def test_registry_picks_the_cpu_forms():
    assert ops.kernel("layer_norm", backend="numba") is layer_norm_cpu
    assert ops.kernel("layer_norm_backward", backend="numba") is layer_norm_backward_cpu
    assert ops.kernel("layer_norm", backend="numpy") is layer_norm_reference
    assert ops.kernel("layer_norm_backward", backend="numpy") is layer_norm_backward_reference


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", SIZES)
def test_forward_and_backward_match_reference(rng, threads, dtype, c):
    x, dy, weight, bias = _problem(rng, (2, 5, c), dtype)
    out = layer_norm_cpu(x, weight, bias, EPS)
    ref = layer_norm_reference(x, weight, bias, EPS)
    assert out[1].shape == (2, 5) and out[2].shape == (2, 5)
    _assert_close(out, ref, dtype)
    grads = layer_norm_backward_cpu(dy, x, weight, ref[1], ref[2])
    assert grads[1].shape == (c,) and grads[2].shape == (c,)
    _assert_close(grads, layer_norm_backward_reference(dy, x, weight, ref[1], ref[2]), dtype)


@pytest.mark.parametrize("rows", [1, 3, 63, 65, 1000])
def test_row_counts_around_the_chunking(rng, threads, rows):
    x, dy, weight, bias = _problem(rng, (rows, 17), np.float32)
    _, mean, rstd = layer_norm_reference(x, weight, bias, EPS)
    _assert_close(layer_norm_backward_cpu(dy, x, weight, mean, rstd),
                  layer_norm_backward_reference(dy, x, weight, mean, rstd), np.float32)


def test_reference_matches_hand_formulas(rng):
    x, _, weight, bias = _problem(rng, (4, 9), np.float64)
    y, mean, rstd = layer_norm_reference(x, weight, bias, EPS)
    np.testing.assert_allclose(mean, x.mean(-1), rtol=1e-14)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(x.var(-1) + EPS), rtol=1e-14)
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + EPS)
    np.testing.assert_allclose(y, expected * weight + bias, rtol=1e-13, atol=1e-14)


def test_reference_backward_matches_finite_differences(rng):
    x, dy, weight, bias = _problem(rng, (3, 6), np.float64)
    _, mean, rstd = layer_norm_reference(x, weight, bias, EPS)
    grads = layer_norm_backward_reference(dy, x, weight, mean, rstd)
    inputs = [x, weight, bias]

    def objective(i, value):  # sum(dy * y) with input i replaced
        args = inputs[:i] + [value] + inputs[i + 1:]
        return (dy * layer_norm_reference(*args, EPS)[0]).sum()

    for i, grad in enumerate(grads):
        for _ in range(2):  # directional derivative along a random v equals sum(grad * v)
            v, h = rng.standard_normal(inputs[i].shape), 1e-6
            numeric = (objective(i, inputs[i] + h * v) - objective(i, inputs[i] - h * v)) / (2 * h)
            np.testing.assert_allclose((grad * v).sum(), numeric, rtol=1e-7, atol=1e-9)


def test_gradients_do_not_depend_on_the_thread_count(rng, monkeypatch):
    x, dy, weight, bias = _problem(rng, (1000, 65), np.float32)
    _, mean, rstd = layer_norm_reference(x, weight, bias, EPS)
    monkeypatch.setattr(elementwise, "PARALLEL_MIN", 0)
    results, before = [], numba.get_num_threads()
    try:
        for n in sorted({1, before}) + [before]:
            numba.set_num_threads(n)
            results.append(layer_norm_backward_cpu(dy, x, weight, mean, rstd))
    finally:
        numba.set_num_threads(before)
    for other in results[1:]:  # row chunks depend on the row count only: bit for bit equal
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    # The serial path runs a separately compiled copy of the block, which LLVM may contract
    # differently (ops/softmax.py): the same sums, equal to an ulp or two.
    monkeypatch.setattr(elementwise, "PARALLEL_MIN", 1 << 62)
    for a, b in zip(layer_norm_backward_cpu(dy, x, weight, mean, rstd), results[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * float(np.abs(b).max()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_offset_keeps_the_variance(rng, threads, dtype):
    # mean 1e3, std 2: the two-pass variance stays accurate where E[x^2] - mean^2 would not
    x, _, weight, bias = _problem(rng, (8, 256), dtype, offset=1e3)
    y, _, rstd = layer_norm_cpu(x, weight, bias, EPS)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(x64.var(-1) + EPS), rtol=1e-5)
    ref = layer_norm_reference(x64, weight.astype(np.float64), bias.astype(np.float64), EPS)
    np.testing.assert_allclose(y, ref[0], rtol=1e-4, atol=1e-4)


def test_constant_rows_give_the_bias(threads):
    x = np.full((3, 5), 2.5, np.float32)
    weight, bias = np.arange(5, dtype=np.float32), np.linspace(-1, 1, 5, dtype=np.float32)
    y, mean, rstd = layer_norm_cpu(x, weight, bias, EPS)
    np.testing.assert_array_equal(y, np.broadcast_to(bias, (3, 5)))
    np.testing.assert_array_equal(mean, 2.5)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(EPS), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(rng, threads, dtype):
    base_x, base_dy, weight, bias = _problem(rng, (66, 40), dtype)
    x, dy = base_x.T[:, ::2], np.asfortranarray(base_dy.T[:, 1::2])  # (40, 33)
    weight, bias = np.resize(weight, 66)[::2], np.resize(bias, 99)[::3]
    out = layer_norm_cpu(x, weight, bias, EPS)
    _assert_close(out, layer_norm_reference(x, weight, bias, EPS), dtype)
    _assert_close(layer_norm_backward_cpu(dy, x, weight, out[1], out[2]),
                  layer_norm_backward_reference(dy, x, weight, out[1], out[2]), dtype)


def test_one_dimensional_input(rng, threads):
    x, dy, weight, bias = _problem(rng, (17,), np.float64)
    out = layer_norm_cpu(x, weight, bias, EPS)
    assert out[1].shape == () and out[2].shape == ()
    _assert_close(out, layer_norm_reference(x, weight, bias, EPS), np.float64)
    _assert_close(layer_norm_backward_cpu(dy, x, weight, out[1], out[2]),
                  layer_norm_backward_reference(dy, x, weight, out[1], out[2]), np.float64)


@pytest.mark.parametrize("big", [1e20, -3e37, 1e-30])
def test_huge_finite_float32_values_give_the_right_finite_result(rng, threads, big):
    """A float32 row holding 1e20 was all-NaN on numba and all-zero on numpy (the
    variance overflowed float32); statistics in float64 give the right answer on both."""
    x, _, weight, bias = _problem(rng, (6, 64), np.float32)
    x[0, 5] = big  # one huge value among ordinary ones
    x[1] = big * np.linspace(-1, 1, 64)  # a whole row of huge values
    x[2] = big  # a constant huge row: normalises to the bias
    wide = x.astype(np.float64)
    mean = wide.mean(-1, keepdims=True)
    want = (wide - mean) / np.sqrt(((wide - mean) ** 2).mean(-1, keepdims=True) + EPS)
    want = want * weight + bias
    got_cpu = layer_norm_cpu(x, weight, bias, EPS)
    got_ref = layer_norm_reference(x, weight, bias, EPS)
    for got in (got_cpu, got_ref):
        assert all(np.isfinite(a).all() for a in got)
        np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)
    for a, b in zip(got_cpu, got_ref):  # the two backends agree to rounding
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)

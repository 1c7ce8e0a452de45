"""GELU kernels: Numba forms against the reference and an accurate float64 form, the reference
backward against finite differences, huge inputs, shapes and layouts."""

import numpy as np
import pytest

import ops
from ops import elementwise
from ops.elementwise import (
    gelu_backward_cpu,
    gelu_backward_reference,
    gelu_cpu,
    gelu_reference,
)

DTYPES = [np.float32, np.float64]
SIZES = [1, 3, 17, 63, 65, 1000]
TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-14}}
K, A = np.sqrt(2 / np.pi), 0.044715


def _accurate(x):
    """gelu and gelu' in float64 through s = sigmoid(2u) = 0.5 (1 + tanh u): unlike the
    reference's 1 + tanh(u), it does not cancel for negative x."""
    x = x.astype(np.float64)
    s = 1 / (1 + np.exp(-2 * K * (x + A * x ** 3)))
    return x * s, s + x * s * (1 - s) * 2 * K * (1 + 3 * A * x * x)


def test_registry_picks_the_cpu_forms():
    assert ops.kernel("gelu", backend="numba") is gelu_cpu
    assert ops.kernel("gelu_backward", backend="numba") is gelu_backward_cpu
    assert ops.kernel("gelu", backend="numpy") is gelu_reference
    assert ops.kernel("gelu_backward", backend="numpy") is gelu_backward_reference


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_matches_reference(rng, threads, dtype, n):
    x = (rng.standard_normal((3, n)) * 3).astype(dtype)
    dy = rng.standard_normal((3, n)).astype(dtype)
    y, dx = gelu_cpu(x), gelu_backward_cpu(x, dy)
    assert y.shape == dx.shape == x.shape and y.dtype == dx.dtype == dtype
    # in float32 the reference's own 1 + tanh(u) and 1 - t^2 cancel for negative x (errors
    # ~1e-6 absolute), so it is evaluated in float64 on the same inputs
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    np.testing.assert_allclose(y, gelu_reference(x64), **TOL[dtype])
    np.testing.assert_allclose(dx, gelu_backward_reference(x64, dy64), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_accuracy_over_a_dense_range(threads, dtype):
    # float32: the sigmoid form with exp_f32 stays within 6e-7 * max(1, |x|) of the exact
    # value on [-12, 12] (measured 1.2e-7); gelu' within 1e-6 absolute (measured 1.9e-7).
    x = np.linspace(-12, 12, 200_001).astype(dtype)
    y, dy = _accurate(x)
    tol = {np.float32: (6e-7, 1e-6), np.float64: (1e-14, 5e-14)}[dtype]
    assert np.all(np.abs(gelu_cpu(x) - y) <= tol[0] * np.maximum(1, np.abs(x)))
    assert np.all(np.abs(gelu_backward_cpu(x, np.ones_like(x)) - dy) <= tol[1])


def test_reference_matches_finite_differences(rng):
    x = rng.standard_normal(50) * 3
    h = 1e-6
    numeric = (gelu_reference(x + h) - gelu_reference(x - h)) / (2 * h)
    np.testing.assert_allclose(gelu_backward_reference(x, np.ones_like(x)), numeric,
                               rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gelu_reference(x), _accurate(x)[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_inputs(threads, dtype):
    x = np.array([1e4, -1e4, 50.0, -50.0, 0.0], dtype)
    y, dx = gelu_cpu(x), gelu_backward_cpu(x, np.ones_like(x))
    np.testing.assert_array_equal(y, np.array([1e4, 0, 50, 0, 0], dtype))
    np.testing.assert_array_equal(dx, np.array([1, 0, 1, 0, 0.5], dtype))


def test_nan_propagates(threads):
    x = np.array([np.nan, 1.0], np.float32)
    assert np.isnan(gelu_cpu(x)[0]) and np.isnan(gelu_backward_cpu(x, np.ones_like(x))[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_and_layouts(rng, threads, dtype):
    base = rng.standard_normal((30, 40)).astype(dtype)
    for x in (base.T, base[::2, 1::3], base[3, 5], np.zeros((0, 4), dtype), base[None]):
        dy = np.ones_like(x)
        y, dx = gelu_cpu(x), gelu_backward_cpu(x, dy)
        assert y.shape == dx.shape == np.shape(x) and y.dtype == dx.dtype == dtype
        x64 = np.asarray(x, np.float64)
        np.testing.assert_allclose(y, gelu_reference(x64), **TOL[dtype])
        np.testing.assert_allclose(dx, gelu_backward_reference(x64, np.ones_like(x64)),
                                   **TOL[dtype])


def test_serial_and_threaded_paths_agree_to_rounding(rng, monkeypatch):
    x = (rng.standard_normal(10_001) * 4).astype(np.float32)
    dy = rng.standard_normal(10_001).astype(np.float32)
    results = []
    for threshold in (0, 1 << 62):
        monkeypatch.setattr(elementwise, "PARALLEL_MIN", threshold)
        results.append((gelu_cpu(x), gelu_backward_cpu(x, dy)))
    for a, b in zip(*results):  # separately compiled copies of one block (ops/softmax.py)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * float(np.abs(b).max()))

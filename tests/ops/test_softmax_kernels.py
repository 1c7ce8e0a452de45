"""Softmax and log-softmax kernels: Numba forms against the reference, the reference against
hand formulas and float64 finite differences, masking with -inf, huge logits, layouts."""

import numpy as np
import pytest

import ops
from ops import elementwise
from ops.softmax import (
    log_softmax_backward_cpu,
    log_softmax_backward_reference,
    log_softmax_cpu,
    log_softmax_reference,
    softmax_backward_cpu,
    softmax_backward_reference,
    softmax_cpu,
    softmax_reference,
)

DTYPES = [np.float32, np.float64]
SIZES = [1, 3, 17, 63, 65, 1000]
# float32: exp_f32 is within 3.5e-7 relative and row sums are float32; log-softmax values reach
# |30| here, so its absolute error is a few ulp of 30.
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def _logits(rng, shape, dtype, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def test_registry_picks_the_cpu_forms():
    for name, cpu, ref in [("softmax", softmax_cpu, softmax_reference),
                           ("softmax_backward", softmax_backward_cpu, softmax_backward_reference),
                           ("log_softmax", log_softmax_cpu, log_softmax_reference),
                           ("log_softmax_backward", log_softmax_backward_cpu,
                            log_softmax_backward_reference)]:
        assert ops.kernel(name, backend="numba") is cpu
        assert ops.kernel(name, backend="numpy") is ref


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_forward_matches_reference(rng, threads, dtype, n):
    x = _logits(rng, (2, 3, n), dtype)
    for cpu, ref in [(softmax_cpu, softmax_reference), (log_softmax_cpu, log_softmax_reference)]:
        out = cpu(x)
        assert out.shape == x.shape and out.dtype == dtype and not np.shares_memory(out, x)
        np.testing.assert_allclose(out, ref(x), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_backward_matches_reference(rng, threads, dtype, n):
    x, dy = _logits(rng, (5, n), dtype), rng.standard_normal((5, n)).astype(dtype)
    y = softmax_reference(x)
    dx = softmax_backward_cpu(y, dy)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, softmax_backward_reference(y, dy), **TOL[dtype])
    y = log_softmax_reference(x)
    dx = log_softmax_backward_cpu(y, dy)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, log_softmax_backward_reference(y, dy), **TOL[dtype])


def test_reference_matches_hand_formulas(rng):
    x = _logits(rng, (4, 9), np.float64, scale=1.0)
    e = np.exp(x)
    np.testing.assert_allclose(softmax_reference(x), e / e.sum(-1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(log_softmax_reference(x), np.log(e / e.sum(-1, keepdims=True)),
                               rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_reference_backward_matches_finite_differences(rng, which):
    fwd, bwd = {"softmax": (softmax_reference, softmax_backward_reference),
                "log_softmax": (log_softmax_reference, log_softmax_backward_reference)}[which]
    x, dy = rng.standard_normal((3, 7)), rng.standard_normal((3, 7))
    for _ in range(3):  # d/dt sum(dy * f(x + t v)) at t=0 equals sum(dx * v)
        v, h = rng.standard_normal(x.shape), 1e-6
        numeric = ((dy * fwd(x + h * v)).sum() - (dy * fwd(x - h * v)).sum()) / (2 * h)
        np.testing.assert_allclose((bwd(fwd(x), dy) * v).sum(), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(rng, threads, dtype):
    base = _logits(rng, (40, 66), dtype)
    for x in (base[:, ::2], base.T, base[::3, 1:-1]):
        dy = np.asfortranarray(rng.standard_normal(x.shape).astype(dtype))
        np.testing.assert_allclose(softmax_cpu(x), softmax_reference(x), **TOL[dtype])
        np.testing.assert_allclose(log_softmax_cpu(x), log_softmax_reference(x), **TOL[dtype])
        y = softmax_reference(x)
        np.testing.assert_allclose(softmax_backward_cpu(y, dy),
                                   softmax_backward_reference(y, dy), **TOL[dtype])
        y = log_softmax_reference(x)
        np.testing.assert_allclose(log_softmax_backward_cpu(y, dy),
                                   log_softmax_backward_reference(y, dy), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_do_not_overflow(threads, dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4 - 1, 0, 5]], dtype)
    y, logy = softmax_cpu(x), log_softmax_cpu(x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(logy))
    np.testing.assert_allclose(y, softmax_reference(x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    # x - max is exact here, so even float32 keeps log(1/2), log(1/4) and log(1/(1+e^-1))
    expected = np.log([0.5, 0.25, 1 / (1 + np.exp(-1.0))]).astype(dtype)
    np.testing.assert_allclose([logy[0, 0], logy[1, 2], logy[2, 0]], expected, rtol=1e-6)
    np.testing.assert_array_equal(logy[0, 1], dtype(-2e4 + np.log(0.5)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_minus_inf_masks_entries(rng, threads, dtype):
    x = _logits(rng, (6, 65), dtype)
    mask = rng.random(x.shape) < 0.4
    mask[:, 0] = False  # every row keeps at least one entry
    x[mask] = -np.inf
    y, logy = softmax_cpu(x), log_softmax_cpu(x)
    assert np.all(y[mask] == 0) and np.all(np.isneginf(logy[mask]))
    np.testing.assert_allclose(y, softmax_reference(x), **TOL[dtype])
    np.testing.assert_allclose(logy[~mask], log_softmax_reference(x)[~mask], **TOL[dtype])
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert np.all(softmax_backward_cpu(y, dy)[mask] == 0)
    assert np.all(log_softmax_backward_cpu(logy, dy)[mask] == dy[mask])  # exp(-inf) = 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_of_all_minus_inf_gives_nan_like_numpy(threads, dtype):
    x = np.array([[-np.inf] * 5, [0.0, 1.0, -np.inf, 2.0, -np.inf]], dtype)
    for cpu, ref in [(softmax_cpu, softmax_reference), (log_softmax_cpu, log_softmax_reference)]:
        out, expected = cpu(x), ref(x)
        assert np.all(np.isnan(out[0])) and np.all(np.isnan(expected[0]))
        np.testing.assert_allclose(out[1], expected[1], **TOL[dtype])


def test_nan_reaches_its_row_only(threads):
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]], np.float32)
    for cpu in (softmax_cpu, log_softmax_cpu):
        out = cpu(x)
        assert np.all(np.isnan(out[0])) and np.all(np.isfinite(out[1]))


def test_one_dimensional_and_single_element_rows(threads):
    x = np.array([2.0, 1.0, 0.0], np.float32)
    np.testing.assert_allclose(softmax_cpu(x), softmax_reference(x), rtol=1e-6)
    np.testing.assert_array_equal(softmax_cpu(np.zeros((4, 1))), np.ones((4, 1)))
    np.testing.assert_array_equal(log_softmax_cpu(np.full((4, 1), 7.0)), np.zeros((4, 1)))
    assert softmax_cpu(np.zeros((0, 5), np.float32)).shape == (0, 5)


def test_serial_and_threaded_paths_agree_to_rounding(rng, monkeypatch):
    x, dy = _logits(rng, (300, 65), np.float32), rng.standard_normal((300, 65)).astype(np.float32)
    results = []
    for threshold in (0, 1 << 62):
        monkeypatch.setattr(elementwise, "PARALLEL_MIN", threshold)
        y, logy = softmax_cpu(x), log_softmax_cpu(x)
        results.append((y, logy, softmax_backward_cpu(y, dy), log_softmax_backward_cpu(logy, dy)))
    for a, b in zip(*results):
        _agree_to_rounding(a, b)


def _agree_to_rounding(a, b):
    """The serial path and the threaded driver run separately compiled copies of one block,
    which LLVM may contract differently: equal to an ulp or two (ops/softmax.py)."""
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(b).max())))

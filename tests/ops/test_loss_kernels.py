"""Cross-entropy kernels: Numba forms against the reference, the reference against
-mean(log_softmax[target]) and float64 finite differences, ignored rows, huge logits."""

import numba
import numpy as np
import pytest

import ops
from ops import elementwise
from ops.loss import (
    cross_entropy_backward_cpu,
    cross_entropy_backward_reference,
    cross_entropy_cpu,
    cross_entropy_reference,
)
from ops.softmax import log_softmax_reference

DTYPES = [np.float32, np.float64]
SIZES = [1, 3, 17, 63, 65, 1000]
IGNORE = -100
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def _problem(rng, n, v, dtype, ignore_every=3):
    logits = (rng.standard_normal((n, v)) * 3).astype(dtype)
    targets = rng.integers(0, v, size=n)
    targets[1::ignore_every] = IGNORE  # row 0 always counts
    return logits, targets


def _nll_by_hand(logits, targets, ignore_index):
    """-mean(log_softmax[target]) over counted rows, in float64."""
    counted = targets != ignore_index
    logp = log_softmax_reference(logits.astype(np.float64))
    return -logp[counted, targets[counted]].mean()


def test_registry_picks_the_cpu_forms():
    assert ops.kernel("cross_entropy", backend="numba") is cross_entropy_cpu
    assert ops.kernel("cross_entropy_backward", backend="numba") is cross_entropy_backward_cpu
    assert ops.kernel("cross_entropy", backend="numpy") is cross_entropy_reference
    assert ops.kernel("cross_entropy_backward", backend="numpy") is \
        cross_entropy_backward_reference


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 17, 65])
@pytest.mark.parametrize("v", SIZES)
def test_forward_matches_reference_and_log_softmax(rng, threads, dtype, n, v):
    logits, targets = _problem(rng, n, v, dtype)
    loss, lse = cross_entropy_cpu(logits, targets, IGNORE)
    ref_loss, ref_lse = cross_entropy_reference(logits, targets, IGNORE)
    assert loss.shape == () and loss.dtype == dtype and lse.shape == (n,) and lse.dtype == dtype
    np.testing.assert_allclose(lse, ref_lse, **TOL[dtype])
    np.testing.assert_allclose(loss, ref_loss, **TOL[dtype])
    np.testing.assert_allclose(loss, _nll_by_hand(logits, targets, IGNORE), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 17, 65])
@pytest.mark.parametrize("v", SIZES)
def test_backward_matches_reference(rng, threads, dtype, n, v):
    logits, targets = _problem(rng, n, v, dtype)
    _, lse = cross_entropy_reference(logits, targets, IGNORE)
    d = cross_entropy_backward_cpu(logits, targets, lse, IGNORE, 0.7)
    assert d.shape == logits.shape and d.dtype == dtype
    np.testing.assert_allclose(d, cross_entropy_backward_reference(logits, targets, lse, IGNORE,
                                                                   0.7), **TOL[dtype])
    assert np.all(d[targets == IGNORE] == 0)


def test_reference_backward_matches_finite_differences(rng):
    logits, targets = _problem(rng, 6, 5, np.float64)
    _, lse = cross_entropy_reference(logits, targets, IGNORE)
    d = cross_entropy_backward_reference(logits, targets, lse, IGNORE, 1.5)
    for _ in range(3):  # d/dt 1.5 * loss(x + t v) at t=0 equals sum(d * v)
        v, h = rng.standard_normal(logits.shape), 1e-6
        up = cross_entropy_reference(logits + h * v, targets, IGNORE)[0]
        down = cross_entropy_reference(logits - h * v, targets, IGNORE)[0]
        np.testing.assert_allclose((d * v).sum(), 1.5 * (up - down) / (2 * h), rtol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_rows_ignored(rng, threads, dtype):
    logits = rng.standard_normal((4, 7)).astype(dtype)
    targets = np.full(4, IGNORE)
    for fwd, bwd in [(cross_entropy_cpu, cross_entropy_backward_cpu),
                     (cross_entropy_reference, cross_entropy_backward_reference)]:
        loss, lse = fwd(logits, targets, IGNORE)
        assert loss == 0 and loss.dtype == dtype and np.all(np.isfinite(lse))
        d = bwd(logits, targets, lse, IGNORE, 1.0)
        assert d.dtype == dtype and np.all(d == 0)


def test_ignore_index_may_be_a_class_index(rng, threads):
    logits, targets = _problem(rng, 30, 4, np.float64, ignore_every=30)
    targets = np.where(targets == IGNORE, 0, targets)  # class 0 rows are the ignored ones
    loss, lse = cross_entropy_cpu(logits, targets, 0)
    np.testing.assert_allclose(loss, _nll_by_hand(logits, targets, 0), rtol=1e-12)
    d = cross_entropy_backward_cpu(logits, targets, lse, 0, 1.0)
    np.testing.assert_allclose(d, cross_entropy_backward_reference(logits, targets, lse, 0, 1.0),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_do_not_overflow(threads, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [0.0, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype)
    targets = np.array([0, 2, 1])
    loss, lse = cross_entropy_cpu(logits, targets, IGNORE)
    # nll rows: 0, log 2, log 3; the max-subtracted form keeps them exact even in float32
    np.testing.assert_allclose(loss, (np.log(2) + np.log(3)) / 3, rtol=1e-6)
    d = cross_entropy_backward_cpu(logits, targets, lse, IGNORE, 1.0)
    assert np.all(np.isfinite(d)) and np.all(np.isfinite(lse))
    # the contract passes lse in the logits' dtype: in float32 lse ~ 1e4 is rounded to 5e-4,
    # and exp(x - lse) carries that as a relative error (the reference does the same)
    x64 = logits.astype(np.float64)
    exact = cross_entropy_backward_reference(x64, targets,
                                             cross_entropy_reference(x64, targets, IGNORE)[1],
                                             IGNORE, 1.0)
    np.testing.assert_allclose(d, exact, atol=1e-3 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_logits_and_int32_targets(rng, threads, dtype):
    base = (rng.standard_normal((66, 40)) * 2).astype(dtype)
    logits = base.T[:, ::2]  # (40, 33), neither C nor F contiguous
    targets = rng.integers(0, 33, size=40).astype(np.int32)
    targets[5] = IGNORE
    loss, lse = cross_entropy_cpu(logits, targets, IGNORE)
    ref_loss, ref_lse = cross_entropy_reference(logits, targets, IGNORE)
    np.testing.assert_allclose(loss, ref_loss, **TOL[dtype])
    np.testing.assert_allclose(lse, ref_lse, **TOL[dtype])
    np.testing.assert_allclose(cross_entropy_backward_cpu(logits, targets, lse, IGNORE, 2.0),
                               cross_entropy_backward_reference(logits, targets, lse, IGNORE,
                                                                2.0), **TOL[dtype])


def test_result_does_not_depend_on_the_thread_count(rng, monkeypatch):
    logits, targets = _problem(rng, 257, 65, np.float32)
    monkeypatch.setattr(elementwise, "PARALLEL_MIN", 0)
    results, before = [], numba.get_num_threads()
    try:
        for n in sorted({1, before}) + [before]:
            numba.set_num_threads(n)
            loss, lse = cross_entropy_cpu(logits, targets, IGNORE)
            results.append((loss, lse, cross_entropy_backward_cpu(logits, targets, lse, IGNORE,
                                                                  1.0)))
    finally:
        numba.set_num_threads(before)
    for other in results[1:]:  # each row has one owner, the loss is summed in row order
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)

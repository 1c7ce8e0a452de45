"""AdamW update kernels: hand-computed steps, the Numba form against the reference, errors."""

import math

import numpy as np
import pytest

import ops
import ops.optim
from ops.optim import adamw_update_cpu, adamw_update_reference

FORMS = [adamw_update_reference, adamw_update_cpu]
HYPER = {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.1}


def _by_hand(p, m, v, g, step, lr, beta1, beta2, eps, weight_decay):
    """The ops/README.md formula on Python floats (float64), one element."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    p = p - lr * weight_decay * p
    p = p - lr * (m / (1 - beta1 ** step)) / (math.sqrt(v / (1 - beta2 ** step)) + eps)
    return p, m, v


def test_registry_picks_the_cpu_form():
    assert ops.kernel("adamw_update", backend="numba") is adamw_update_cpu
    assert ops.kernel("adamw_update", backend="numpy") is adamw_update_reference


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_three_steps_match_the_formula(form, dtype, weight_decay):
    hyper = dict(HYPER, weight_decay=weight_decay)
    values = [1.5, -0.25, 0.0, 3.0]
    grads = [[0.1, -2.0, 0.5, 0.0], [0.3, 1.0, -0.5, 1e-3], [-0.2, 0.0, 0.25, 4.0]]
    param = np.array(values, dtype)
    m, v = np.zeros(4, dtype), np.zeros(4, dtype)
    expected = [(x, 0.0, 0.0) for x in values]
    for step, grad in enumerate(grads, start=1):
        assert form(param, np.array(grad, dtype), m, v, step=step, **hyper) is None
        expected = [_by_hand(*state, g, step, **hyper) for state, g in zip(expected, grad)]
        tol = {"rtol": 2e-6, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-12,
                                                                        "atol": 1e-15}
        for k, arr in enumerate((param, m, v)):
            np.testing.assert_allclose(arr, [e[k] for e in expected], **tol)


@pytest.mark.parametrize("form", FORMS)
def test_first_step_moves_each_weight_by_about_lr(form):
    # With step=1 the bias corrections make m_hat = g and v_hat = g^2: each update is
    # lr * sign(g) (up to eps), whatever the size of the gradient.
    param = np.zeros(3)
    grad = np.array([1e-3, -5.0, 200.0])
    form(param, grad, np.zeros(3), np.zeros(3), step=1, **HYPER)
    np.testing.assert_allclose(param, -HYPER["lr"] * np.sign(grad), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 3, 17, 63, 65, 1000])
def test_cpu_matches_reference(rng, dtype, size):
    state = [rng.standard_normal(size).astype(dtype) for _ in range(2)]
    state.append(rng.random(size).astype(dtype))  # v >= 0
    ours, ref = [a.copy() for a in state], [a.copy() for a in state]
    for step in (1, 2, 7):
        grad = rng.standard_normal(size).astype(dtype)
        adamw_update_cpu(ours[0], grad, ours[1], ours[2], step=step, **HYPER)
        adamw_update_reference(ref[0], grad, ref[1], ref[2], step=step, **HYPER)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12,
                                                                    "atol": 1e-14}
    for a, b in zip(ours, ref):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **tol)


def test_parallel_path_matches_reference(rng, monkeypatch):
    # Shrink the thresholds so a small parameter goes through the prange kernel and its
    # chunk boundaries, including a short last chunk.
    monkeypatch.setattr(ops.optim, "PARALLEL_MIN", 100)
    monkeypatch.setattr(ops.optim, "CHUNK", 64)
    param = rng.standard_normal((10, 33)).astype(np.float32)
    ours, ref = [param.copy(), np.zeros_like(param), np.zeros_like(param)], None
    ref = [a.copy() for a in ours]
    grad = rng.standard_normal(param.shape).astype(np.float32)
    adamw_update_cpu(ours[0], grad, ours[1], ours[2], step=1, **HYPER)
    adamw_update_reference(ref[0], grad, ref[1], ref[2], step=1, **HYPER)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_non_contiguous_grad_is_accepted(rng):
    param, m, v = np.ones((4, 5)), np.zeros((4, 5)), np.zeros((4, 5))
    grad = rng.standard_normal((5, 4)).T
    expected = [param.copy(), m.copy(), v.copy()]
    adamw_update_reference(*expected[:1], grad, *expected[1:], step=1, **HYPER)
    adamw_update_cpu(param, grad, m, v, step=1, **HYPER)
    np.testing.assert_allclose(param, expected[0], rtol=1e-12)


@pytest.mark.parametrize("which", ["param", "m", "v"])
def test_non_contiguous_state_raises(which):
    arrays = {"param": np.ones((4, 6)), "m": np.zeros((4, 6)), "v": np.zeros((4, 6))}
    arrays[which] = np.zeros((6, 4)).T  # (4, 6), Fortran order: an in-place update would be lost
    with pytest.raises(ValueError, match=which):
        adamw_update_cpu(arrays["param"], np.ones((4, 6)), arrays["m"], arrays["v"],
                         step=1, **HYPER)

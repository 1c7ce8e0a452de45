"""Losses against numpy written out by hand, gradients against finite differences on every
device, and their argument errors."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor


def _log_softmax(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def _ce_reference(z, t, reduction="mean", smoothing=0.0, ignore=-100):
    """Cross-entropy with class axis 1 (PyTorch's layout), integer or probability targets."""
    logp = np.moveaxis(_log_softmax(z, axis=1), 1, -1)  # classes last
    c = logp.shape[-1]
    if t.dtype.kind == "f":
        q = np.moveaxis(t, 1, -1) * (1 - smoothing) + smoothing / c
        loss = -(q * logp).sum(-1)
        return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
    valid = t != ignore
    picked = np.take_along_axis(logp, np.where(valid, t, 0)[..., None], -1)[..., 0]
    loss = np.where(valid, -(1 - smoothing) * picked - smoothing * logp.mean(-1), 0.0)
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / max(valid.sum(), 1)}[reduction]


CASES = [((4, 5), [0, 4, -100, 2]), ((3, 4, 2), [[0, 3], [1, -100], [2, 2]]), ((5,), 3)]


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape,targets", CASES)
def test_cross_entropy_with_class_targets(on, rng, check, shape, targets, reduction, smoothing):
    z, t = on.rand(rng, *shape), np.array(targets)
    y = F.cross_entropy(z, on.const(t), reduction=reduction, label_smoothing=smoothing)
    h = on.host(z)
    expected = (_ce_reference(h[None], t[None], reduction, smoothing) if h.ndim == 1 else
                _ce_reference(h, t, reduction, smoothing))
    np.testing.assert_allclose(y.numpy(), np.reshape(expected, y.shape), rtol=1e-10)
    check(lambda a: F.cross_entropy(a, on.const(t), reduction=reduction,
                                    label_smoothing=smoothing), z)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_with_probability_targets(on, rng, check, reduction, smoothing):
    z = on.rand(rng, 3, 4, 2)
    q = rng.random((3, 4, 2))
    q /= q.sum(axis=1, keepdims=True)
    y = F.cross_entropy(z, on.const(q), reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(y.numpy(), _ce_reference(on.host(z), q, reduction, smoothing),
                               rtol=1e-10)
    check(lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=smoothing),
          z, on.leaf(q))


def test_the_fused_and_the_composed_cross_entropy_agree(on, rng):
    z, t = on.rand(rng, 4, 6), on.const(np.array([1, 5, -100, 0]))
    fused = F.cross_entropy(z, t)
    composed = F.cross_entropy(z, t, reduction="sum") / 3.0
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(on, rng, check, reduction):
    z, t = on.rand(rng, 4, 3), np.array([2, 0, -100, 1])
    logp = F.log_softmax(z, axis=-1)
    np.testing.assert_allclose(F.nll_loss(logp, on.const(t), reduction=reduction).numpy(),
                               _ce_reference(on.host(z), t, reduction), rtol=1e-10)
    check(lambda a: F.nll_loss(a, on.const(t), reduction=reduction), z)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(on, rng, check, reduction):
    a, b = on.rand(rng, 3, 2), on.rand(rng, 3, 2)
    d2 = (on.host(a) - on.host(b)) ** 2
    np.testing.assert_allclose(F.mse_loss(a, b, reduction=reduction).numpy(),
                               {"mean": d2.mean(), "sum": d2.sum(), "none": d2}[reduction])
    check(lambda x, y: F.mse_loss(x, y, reduction=reduction), a, b)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_binary_cross_entropy_with_logits(on, rng, check, reduction):
    x = on.leaf(np.array([[-40.0, -1.0, 0.0], [0.5, 3.0, 40.0]]))  # stable at large |x|
    t = rng.random((2, 3))
    p = 1 / (1 + np.exp(-on.host(x)))
    with np.errstate(divide="ignore"):
        bce = -(t * np.log(p) + (1 - t) * np.log1p(-p))
    bce[1, 2] = 40.0 * (1 - t[1, 2])  # log1p(-1) is -inf in float64; the exact value
    y = F.binary_cross_entropy_with_logits(x, on.const(t), reduction=reduction)
    np.testing.assert_allclose(y.numpy(), bce.mean() if reduction == "mean" else bce, rtol=1e-9)
    check(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
          on.rand(rng, 2, 3), on.leaf(t))


@pytest.mark.parametrize("call,error,words", [
    (lambda: F.cross_entropy(Tensor(np.zeros((3, 4))), [0, 1], reduction="sum"), ValueError,
     r"cross_entropy: logits \(3, 4\) must be \(N, V\) and targets \(N,\), got targets \(2,\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((3, 4))), [0, 1, 2], reduction="avg"), ValueError,
     r"cross_entropy: reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"),
    (lambda: F.cross_entropy(Tensor(np.zeros((3, 4))), [0, 1, 7], label_smoothing=0.1),
     IndexError, r"cross_entropy: target 7 out of range for 4 classes"),
    (lambda: F.cross_entropy(Tensor(np.zeros((3, 4))), [0, 1, 2], label_smoothing=1.5),
     ValueError, r"cross_entropy: label_smoothing must be in \[0, 1\]"),
    (lambda: F.cross_entropy(Tensor(np.zeros((3, 4))), Tensor(np.zeros((3, 5)))), ValueError,
     r"cross_entropy: probability targets \(3, 5\) must have the logits' shape \(3, 4\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((3, 4))), [0.5, 1.0, 2.0]), TypeError,
     r"cross_entropy: targets must be integers, got float"),
    (lambda: F.nll_loss(Tensor(np.zeros((2, 3, 4))), Tensor(np.zeros((2, 3), np.int64))),
     ValueError, (r"nll_loss: input of classes-last shape \(2, 4, 3\) needs targets of shape "
                 r"\(2, 4\), got \(2, 3\)")),
    (lambda: F.mse_loss(Tensor(np.zeros((3, 4))), Tensor(np.zeros(4))), ValueError,
     r"mse_loss: input \(3, 4\) and target \(4,\) differ in shape"),
    (lambda: F.binary_cross_entropy_with_logits(Tensor(np.zeros(3)), Tensor(np.zeros(2))),
     ValueError, r"binary_cross_entropy_with_logits: logits \(3,\) and targets \(2,\) differ"),
])
def test_loss_errors_name_the_op(call, error, words):
    with pytest.raises(error, match=words):
        call()

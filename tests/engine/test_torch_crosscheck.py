"""Optional: a sample of ops against PyTorch (values and gradients, float64, on both CPU
backends). Skipped when torch is not installed (`pip install torch==2.13.0`, a CPU build)."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional

INT = np.array([[0, 2, 1], [1, 0, 2]])  # (2, 3) indices into an axis of size 3

# name: (engine fn, torch fn, input shapes (float64 leaves), input kind)
CASES = {
    "sigmoid": (F.sigmoid, torch.sigmoid, [(3, 4)], "any"),
    "silu": (F.silu, TF.silu, [(3, 4)], "any"),
    "softplus": (F.softplus, TF.softplus, [(3, 4)], "any"),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1), lambda a: TF.leaky_relu(a, 0.1), [(5,)], "any"),
    "erf": (F.erf, torch.erf, [(3, 4)], "any"),
    "gelu_none": (lambda a: F.gelu(a, approximate="none"), TF.gelu, [(3, 4)], "any"),
    "gelu_tanh": (F.gelu, lambda a: TF.gelu(a, approximate="tanh"), [(3, 4)], "any"),
    "abs": (F.abs, torch.abs, [(3, 4)], "any"),
    "clamp": (lambda a: a.clamp(-0.5, 0.5), lambda a: a.clamp(-0.5, 0.5), [(3, 4)], "any"),
    "maximum": (F.maximum, torch.maximum, [(3, 4), (4,)], "any"),
    "minimum": (F.minimum, torch.minimum, [(3, 1), (1, 4)], "any"),
    "sin_cos": (lambda a: F.sin(a) * F.cos(a), lambda a: a.sin() * a.cos(), [(3, 4)], "any"),
    "rsqrt": (F.rsqrt, torch.rsqrt, [(3, 4)], "positive"),
    "log2_log1p_expm1": (lambda a: F.log2(a) + F.log1p(a) + F.expm1(a),
                         lambda a: a.log2() + a.log1p() + a.expm1(), [(3, 4)], "positive"),
    "pow_tensor": (lambda a, b: a ** b, lambda a, b: a ** b, [(3, 4), (4,)], "positive"),
    "rpow": (lambda a: 1.7 ** a, lambda a: 1.7 ** a, [(3, 4)], "any"),
    "logsumexp": (lambda a: F.logsumexp(a, axis=1), lambda a: a.logsumexp(1), [(3, 4)], "any"),
    "var": (lambda a: F.var(a, axis=0, correction=1), lambda a: a.var(0), [(3, 4)], "any"),
    "std": (lambda a: F.std(a, axis=1, keepdims=True, correction=1),
            lambda a: a.std(1, keepdim=True), [(3, 4)], "any"),
    "prod": (lambda a: F.prod(a, axis=1), lambda a: a.prod(1), [(3, 4)], "any"),
    "cumsum": (lambda a: F.cumsum(a, axis=1), lambda a: a.cumsum(1), [(3, 4)], "any"),
    "min": (lambda a: F.min(a, axis=0), lambda a: a.amin(0), [(3, 4)], "any"),
    "stack": (lambda a, b: F.stack([a, b], axis=1), lambda a, b: torch.stack([a, b], 1),
              [(3, 4), (3, 4)], "any"),
    "unsqueeze_squeeze": (lambda a: a.unsqueeze(1).squeeze(0) * 2.0,
                          lambda a: a.unsqueeze(1).squeeze(0) * 2.0, [(1, 4)], "any"),
    "flip_roll": (lambda a: F.roll(F.flip(a, 0), 2, 1), lambda a: a.flip(0).roll(2, 1),
                  [(3, 4)], "any"),
    "tril_triu": (lambda a: F.tril(a, -1) + F.triu(a, 1) * 3.0,
                  lambda a: a.tril(-1) + a.triu(1) * 3.0, [(3, 4)], "any"),
    "pad": (lambda a: F.pad(a, ((0, 0), (1, 2)), constant_values=0.5),
            lambda a: TF.pad(a, (1, 2), value=0.5), [(3, 4)], "any"),
    "repeat": (lambda a: a.repeat(2, 1, 3), lambda a: a.repeat(2, 1, 3), [(3, 4)], "any"),
    "expand": (lambda a: a.expand(2, 3, 4), lambda a: a.expand(2, 3, 4), [(3, 1)], "any"),
    "gather": (lambda a: a.gather(1, Tensor(INT)), lambda a: a.gather(1, torch.tensor(INT)),
               [(2, 3)], "any"),
    "scatter_add": (lambda a, s: a.scatter_add(1, Tensor(INT), s),
                    lambda a, s: a.scatter_add(1, torch.tensor(INT), s), [(2, 3), (2, 3)],
                    "any"),
    "mse_loss": (F.mse_loss, TF.mse_loss, [(3, 4), (3, 4)], "any"),
    "bce_with_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                        [(3, 4), (3, 4)], "unit"),
}

CE_TARGETS = np.array([[0, 4], [-100, 2], [3, 3]])  # (N, d) = (3, 2), 5 classes


@pytest.mark.slow
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
def test_cross_entropy_against_torch(backend, reduction, smoothing):
    def ce(z, lib):
        t = Tensor(CE_TARGETS) if lib is F else torch.tensor(CE_TARGETS)
        return lib.cross_entropy(z, t, reduction=reduction, label_smoothing=smoothing)
    _compare(lambda z: ce(z, F), lambda z: ce(z, TF), [(3, 5, 2)], "any")


def test_cross_entropy_with_probabilities_and_nll_against_torch(backend):
    q = np.random.default_rng(3).random((4, 5))
    q /= q.sum(1, keepdims=True)
    _compare(lambda z: F.cross_entropy(z, Tensor(q), label_smoothing=0.1),
             lambda z: TF.cross_entropy(z, torch.tensor(q), label_smoothing=0.1), [(4, 5)], "any")
    t = np.array([1, -100, 4, 0])
    _compare(lambda z: F.nll_loss(F.log_softmax(z), Tensor(t)),
             lambda z: TF.nll_loss(TF.log_softmax(z, -1), torch.tensor(t)), [(4, 5)], "any")
    _compare(lambda z: F.cross_entropy(z, Tensor(t)),  # the fused kernel
             lambda z: TF.cross_entropy(z, torch.tensor(t)), [(4, 5)], "any")


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_against_torch(backend, name):
    _compare(*CASES[name])


def test_non_differentiable_ops_against_torch():
    x = np.random.default_rng(0).standard_normal((3, 4))
    for ours, theirs in [(F.argmax(Tensor(x), axis=1), torch.tensor(x).argmax(1)),
                         (F.one_hot(Tensor(INT), 4), TF.one_hot(torch.tensor(INT), 4)),
                         (Tensor(x) > 0.1, torch.tensor(x) > 0.1),
                         (Tensor(x) // 0.3, torch.tensor(x) // 0.3),
                         (Tensor(x) % 0.3, torch.tensor(x) % 0.3)]:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def _inputs(shapes, kind, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    if kind == "positive":
        arrays = [np.abs(a) + 0.5 for a in arrays]
    elif kind == "unit":
        arrays = [arrays[0] * 3, rng.random(shapes[1])]
    return arrays


def _compare(ours, theirs, shapes, kind):
    arrays = _inputs(shapes, kind)
    mine = [Tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = ours(*mine), theirs(*ref)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(m.grad, r.grad.numpy(), rtol=1e-9, atol=1e-12)

"""The library gives a right answer or one clear error: float losses of integer logits, layer
norm of huge float64 values, attention masks of the right rank and float inputs, empty and
0-d shapes, and layers built with sizes that cannot work."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor, nn


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_of_integer_logits_is_a_float_for_every_reduction(reduction):
    logits, targets = np.array([[1, 2, 0], [3, 4, 9]]), np.array([0, 2])
    got = F.cross_entropy(Tensor(logits), targets, reduction=reduction).data
    z = logits - logits.max(axis=1, keepdims=True)
    want = -(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[[0, 1], targets]
    want = {"mean": want.mean(), "sum": want.sum(), "none": want}[reduction]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("scale", [1e160, 1e300])
def test_layer_norm_of_huge_or_tiny_float64_values(backend, scale):
    import ops
    x = np.array([[1.0, 2.0, 3.0], [1.0, -1.0, 1.0]]) * scale
    with ops.use_backend(backend):
        got = F.layer_norm(Tensor(x), eps=0.0).data
    want = np.array([[-1.0, 0.0, 1.0], [0.5, -1.0, 0.5]]) * np.sqrt([[1.5], [2.0]])
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_attention_refuses_masks_of_more_than_four_axes_and_integer_inputs():
    q = Tensor(np.ones((1, 1, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"mask \(1, 1, 1, 3, 3\) does not broadcast"):
        F.scaled_dot_product_attention(q, q, q, mask=np.ones((1, 1, 1, 3, 3), bool))
    qi = Tensor(np.ones((1, 1, 3, 4), np.int64))
    with pytest.raises(TypeError, match="q must be floating point, got int64"):
        F.scaled_dot_product_attention(qi, qi, qi)
    with pytest.raises(TypeError, match="self_attention: qkv must be floating point"):
        F.self_attention(Tensor(np.ones((1, 3, 12), np.int64)), 2)


@pytest.mark.parametrize("shape", [(3, 0), (0, 4)])
def test_softmax_and_layer_norm_of_empty_shapes_are_empty(shape):
    for backend in ("numpy", "numba"):
        import ops
        with ops.use_backend(backend):
            x = Tensor(np.zeros(shape, np.float32), requires_grad=True)
            for y in (x.softmax(axis=-1), x.log_softmax(axis=0), F.layer_norm(x)):
                assert y.shape == shape
                y.sum().backward()
                assert x.grad.shape == shape


def test_layer_norm_of_a_0d_tensor_is_refused():
    with pytest.raises(ValueError, match="layer_norm: x must have at least one axis"):
        F.layer_norm(Tensor(np.float32(1.0)))


@pytest.mark.parametrize("build, words", [
    (lambda: nn.MultiHeadAttention(8, 0), "MultiHeadAttention: n_head must be a positive"),
    (lambda: nn.MultiHeadAttention(-8, 2), "MultiHeadAttention: n_embd must be a positive"),
    (lambda: nn.GRUCell(4, 0), "GRUCell: hidden_size must be a positive integer, got 0"),
    (lambda: nn.GRU(4, 2.5), "hidden_size must be a positive integer, got 2.5"),
    (lambda: nn.Linear(0, 3), "Linear: in_features must be a positive"),
    (lambda: nn.Embedding(10, -1), "Embedding: embedding_dim must be a positive"),
    (lambda: nn.LayerNorm(True), "LayerNorm: ndim must be a positive integer, got True"),
])
def test_layers_refuse_sizes_that_cannot_work(build, words):
    with pytest.raises(ValueError, match=words):
        build()

"""Tests for engine.nn: layers against numpy formulas, gradchecks, masking, GPT bookkeeping."""


import numpy as np
import pytest

from engine import Tensor, gradcheck, nn


def rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# ---- layers against numpy --------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 5), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_numpy(shape, bias):
    rng = np.random.default_rng(0)
    lin = nn.Linear(5, 7, bias=bias, rng=1)
    assert lin.weight.shape == (7, 5)  # (out, in) as PyTorch
    x = rand(rng, *shape)
    want = x @ lin.weight.data.T + (lin.bias.data if bias else 0)
    np.testing.assert_allclose(lin(Tensor(x)).data, want, rtol=1e-5, atol=1e-6)


def test_layer_norm_matches_numpy():
    rng = np.random.default_rng(0)
    ln = nn.LayerNorm(6)
    np.testing.assert_array_equal(ln.weight.data, 1)
    np.testing.assert_array_equal(ln.bias.data, 0)
    ln.weight.data[:] = rand(rng, 6)
    ln.bias.data[:] = rand(rng, 6)
    x = rand(rng, 2, 3, 6, dtype=np.float64).astype(np.float32)
    x64 = x.astype(np.float64)
    mu, var = x64.mean(-1, keepdims=True), x64.var(-1, keepdims=True)
    want = (x64 - mu) / np.sqrt(var + 1e-5) * ln.weight.data + ln.bias.data
    np.testing.assert_allclose(ln(Tensor(x)).data, want, rtol=1e-5, atol=1e-5)


def test_embedding_matches_indexing():
    emb = nn.Embedding(10, 4, rng=0)
    idx = np.array([[0, 9, 3], [3, 3, 1]])
    np.testing.assert_array_equal(emb(idx).data, emb.weight.data[idx])


def test_dropout_train_eval():
    drop = nn.Dropout(0.5, rng=0)
    x = Tensor(np.ones((200, 50), np.float32))
    y = drop(x).data
    assert set(np.unique(y)) == {0.0, 2.0}  # kept elements scaled by 1/(1-p)
    assert 0.45 < (y == 0).mean() < 0.55
    assert not np.array_equal(y, drop(x).data)  # fresh mask each call
    drop.eval()
    np.testing.assert_array_equal(drop(x).data, x.data)


def test_gradcheck_attention():
    mha = nn.MultiHeadAttention(8, 2, rng=0).double()
    x = Tensor(np.random.default_rng(1).standard_normal((2, 5, 8)), requires_grad=True)
    report = gradcheck(lambda x, *ps: mha(x), x, *mha.parameters())
    assert len(report.checked) == 5  # x and four parameters


def test_gradcheck_transformer_block():
    block = nn.TransformerBlock(8, 2, rng=0).double()
    rng = np.random.default_rng(1)
    for p in block.parameters():  # move LayerNorm off its trivial (1, 0) point
        p.data += 0.1 * rng.standard_normal(p.shape)
    x = Tensor(rng.standard_normal((2, 5, 8)), requires_grad=True)
    # The input and every 1-D parameter (LayerNorms, biases) keep this fast; the Linear weight
    # gradients are the same op as in test_gradcheck_attention, which checks all of them.
    vectors = [p for p in block.parameters() if p.ndim == 1]
    report = gradcheck(lambda x, *ps: block(x), x, *vectors)
    assert len(report.checked) == 1 + len(vectors) == 9


def test_gradcheck_can_fail_on_wrong_gradient():
    lin = nn.Linear(3, 2, rng=0).double()
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    # Cut the graph through the weight: the analytic gradient of the weight becomes zero.
    with pytest.raises(AssertionError):
        gradcheck(lambda x, w: x @ Tensor(w.data.T), x, lin.weight)


# ---- causal masking ----------------------------------------------------------------------------

@pytest.mark.parametrize("t", [0, 2, 4])
def test_attention_does_not_see_the_future(t):
    mha = nn.MultiHeadAttention(8, 2, rng=0).double()
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((2, 6, 8))
    x1 = x0.copy()
    x1[:, t + 1:] += rng.standard_normal(x1[:, t + 1:].shape)
    y0, y1 = mha(Tensor(x0)).data, mha(Tensor(x1)).data
    np.testing.assert_array_equal(y0[:, :t + 1], y1[:, :t + 1])
    if t + 1 < 6:
        assert not np.allclose(y0[:, t + 1:], y1[:, t + 1:])
    x = Tensor(x0, requires_grad=True)
    mha(x)[:, t].sum().backward()
    np.testing.assert_array_equal(x.grad[:, t + 1:], 0.0)
    assert np.abs(x.grad[:, :t + 1]).min() > 0

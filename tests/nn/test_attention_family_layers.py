"""Tests of the attention family's layers: GRUCell/GRU, additive attention, cross-attention,
the encoder TransformerBlock (causal=False) and the DecoderBlock: numpy references, masks,
and float64 gradchecks on both CPU backends and the strict device."""

import math

import numpy as np
import pytest

from engine import Tensor, nn
from engine.gradcheck import gradcheck


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _gru_step_reference(x, h, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's GRU equations, in numpy."""
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    H = h.shape[1]
    r = _sigmoid(gi[:, :H] + gh[:, :H])
    z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


def _weights(cell):
    return [p.numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]


def test_gru_cell_matches_the_equations(rng):
    cell = nn.GRUCell(3, 5, rng=0).double()
    x, h = rng.standard_normal((4, 3)), rng.standard_normal((4, 5))
    want = _gru_step_reference(x, h, *_weights(cell))
    np.testing.assert_allclose(cell(Tensor(x), Tensor(h)).numpy(), want, rtol=1e-12)
    # no state: zeros
    np.testing.assert_allclose(cell(Tensor(x)).numpy(),
                               _gru_step_reference(x, np.zeros((4, 5)), *_weights(cell)),
                               rtol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_sequence_matches_stepping_the_equations(rng, bidirectional):
    gru = nn.GRU(3, 4, bidirectional=bidirectional, rng=0).double()
    x = rng.standard_normal((2, 5, 3))
    out, h_n = gru(Tensor(x))
    D = 2 if bidirectional else 1
    assert out.shape == (2, 5, D * 4) and h_n.shape == (D, 2, 4)
    cells = [gru.forward_cell] + ([gru.backward_cell] if bidirectional else [])
    for d, cell in enumerate(cells):
        h, states = np.zeros((2, 4)), {}
        for t in (range(5) if d == 0 else reversed(range(5))):
            h = _gru_step_reference(x[:, t], h, *_weights(cell))
            states[t] = h
        got = out.numpy()[:, :, 4 * d:4 * (d + 1)]
        np.testing.assert_allclose(got, np.stack([states[t] for t in range(5)], 1), rtol=1e-11)
        np.testing.assert_allclose(h_n.numpy()[d], h, rtol=1e-11)


@pytest.mark.slow
def test_gru_gradcheck(on, rng):
    gru = nn.GRU(2, 3, bidirectional=True, rng=0).double().to(on.device)
    x = on.leaf(rng.standard_normal((2, 3, 2)))
    h0 = on.leaf(rng.standard_normal((2, 2, 3)))
    gradcheck(lambda x, h0, *_: gru(x, h0)[0], x, h0, *gru.parameters())
    cell = nn.GRUCell(2, 3, rng=1).double().to(on.device)
    h = on.leaf(rng.standard_normal((2, 3)))
    gradcheck(lambda x, h, *_: cell(x, h), on.leaf(rng.standard_normal((2, 2))), h,
              *cell.parameters())


def test_gru_bad_shapes_name_the_layer():
    gru = nn.GRU(3, 4)
    with pytest.raises(ValueError, match=r"GRU: input must be \(B, T, 3\), got \(2, 5\)"):
        gru(Tensor(np.zeros((2, 5), np.float32)))
    with pytest.raises(ValueError, match=r"GRU: h0 must be \(1, 2, 4\)"):
        gru(Tensor(np.zeros((2, 5, 3), np.float32)), Tensor(np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match=r"GRUCell: state must be \(2, 4\)"):
        nn.GRUCell(3, 4)(Tensor(np.zeros((2, 3), np.float32)),
                         Tensor(np.zeros((2, 5), np.float32)))


def test_additive_attention_matches_its_formula_and_masks(rng):
    att = nn.AdditiveAttention(3, 4, 5, rng=0).double()
    q, k, v = rng.standard_normal((2, 3)), rng.standard_normal((2, 6, 4)), \
        rng.standard_normal((2, 6, 7))
    pad = np.zeros((2, 6), bool)
    pad[0, :2] = True
    ctx, w = att(Tensor(q), Tensor(k), Tensor(v), key_padding_mask=pad)
    wq, wk, bk, vv = (att.query_proj.weight.numpy(), att.key_proj.weight.numpy(),
                      att.key_proj.bias.numpy(), att.v.weight.numpy())
    scores = (np.tanh((q @ wq.T)[:, None, :] + k @ wk.T + bk) @ vv.T)[..., 0]  # (B, S)
    scores = np.where(pad, -np.inf, scores)
    want = np.exp(scores - scores.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    np.testing.assert_allclose(w.numpy(), want, rtol=1e-12)
    assert np.all(w.numpy()[0, :2] == 0)
    np.testing.assert_allclose(ctx.numpy(), np.einsum("bs,bsd->bd", want, v), rtol=1e-12)
    # projected keys once, same answer
    ctx2, _ = att(Tensor(q), Tensor(k), Tensor(v), key_padding_mask=pad,
                  projected_keys=att.project_keys(Tensor(k)))
    np.testing.assert_array_equal(ctx2.numpy(), ctx.numpy())


def test_additive_attention_gradcheck(on, rng):
    att = nn.AdditiveAttention(3, 4, 5, rng=0).double().to(on.device)
    q, k = on.leaf(rng.standard_normal((2, 3))), on.leaf(rng.standard_normal((2, 4, 4)))
    pad = np.zeros((2, 4), bool)
    pad[1, 0] = True
    pad = on.const(pad)
    gradcheck(lambda q, k, *_: att(q, k, key_padding_mask=pad)[0], q, k, *att.parameters())


def _mha_reference(x_q, x_kv, wq, bq, wk, bk, wv, bv, wo, bo, nh, mask=None, causal=False):
    B, T, C = x_q.shape
    S, hs = x_kv.shape[1], C // nh
    heads = lambda a, n: a.reshape(B, n, nh, hs).transpose(0, 2, 1, 3)
    q, k, v = heads(x_q @ wq.T + bq, T), heads(x_kv @ wk.T + bk, S), heads(x_kv @ wv.T + bv, S)
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hs)
    if mask is not None:
        s = np.where(mask[:, None, None, :], -np.inf, s)
    if causal:
        s = np.where(np.triu(np.ones((T, S), bool), 1), -np.inf, s)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    y = (p @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    return y @ wo.T + bo, p


def test_cross_attention_matches_a_numpy_reference(rng, backend):
    ca = nn.CrossAttention(8, 2, rng=0).double()
    x, mem = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 5, 8))
    pad = np.zeros((2, 5), bool)
    pad[1, 3:] = True
    y, w = ca(Tensor(x), Tensor(mem), key_padding_mask=pad, need_weights=True)
    wkv, bkv = ca.kv_proj.weight.numpy(), ca.kv_proj.bias.numpy()
    want_y, want_w = _mha_reference(x, mem, ca.q_proj.weight.numpy(), ca.q_proj.bias.numpy(),
                                    wkv[:8], bkv[:8], wkv[8:], bkv[8:], ca.c_proj.weight.numpy(),
                                    ca.c_proj.bias.numpy(), 2, mask=pad)
    np.testing.assert_allclose(y.numpy(), want_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), want_w, rtol=1e-10, atol=1e-12)
    assert np.all(w.numpy()[1, :, :, 3:] == 0)
    y2 = ca(Tensor(x), memory_kv=ca.project_memory(Tensor(mem)), key_padding_mask=pad)
    np.testing.assert_allclose(y2.numpy(), y.numpy(), rtol=1e-13)


def test_cross_attention_gradcheck(on, rng):
    ca = nn.CrossAttention(4, 2, rng=0).double().to(on.device)
    x, mem = on.leaf(rng.standard_normal((2, 3, 4))), on.leaf(rng.standard_normal((2, 4, 4)))
    pad = np.zeros((2, 4), bool)
    pad[0, 0] = True
    pad = on.const(pad)
    gradcheck(lambda x, m, *_: ca(x, m, key_padding_mask=pad), x, mem, *ca.parameters())


def test_encoder_self_attention_with_padding_matches_reference(rng, backend):
    mha = nn.MultiHeadAttention(8, 2, causal=False, rng=0).double()
    x = rng.standard_normal((2, 5, 8))
    pad = np.zeros((2, 5), bool)
    pad[0, :2] = True
    y, w = mha(Tensor(x), need_weights=True, key_padding_mask=pad)
    wa, ba = mha.c_attn.weight.numpy(), mha.c_attn.bias.numpy()
    want_y, want_w = _mha_reference(x, x, wa[:8], ba[:8], wa[8:16], ba[8:16], wa[16:], ba[16:],
                                    mha.c_proj.weight.numpy(), mha.c_proj.bias.numpy(), 2,
                                    mask=pad)
    np.testing.assert_allclose(y.numpy(), want_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), want_w, rtol=1e-10, atol=1e-12)


def test_padding_mask_errors_name_the_shape_and_dtype():
    ca = nn.CrossAttention(4, 2, rng=0)
    x = Tensor(np.zeros((2, 3, 4), np.float32))
    mem = Tensor(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(ValueError, match=r"key_padding_mask must be \(B, Tk\) = \(2, 5\), "
                                         r"got \(2, 4\)"):
        ca(x, mem, key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(TypeError, match="key_padding_mask must be boolean"):
        ca(x, mem, key_padding_mask=np.zeros((2, 5), np.int64))
    with pytest.raises(ValueError, match="exactly one of memory and memory_kv"):
        ca(x)


def test_decoder_block_is_causal_and_reads_the_memory(rng):
    block = nn.DecoderBlock(8, 2, rng=0).double()
    x, mem = rng.standard_normal((1, 4, 8)), rng.standard_normal((1, 3, 8))
    kv = block.cross_attn.project_memory(Tensor(mem))
    y = block(Tensor(x), kv).numpy()
    x2 = x.copy()
    x2[:, 2:] += 1.0  # change the future: earlier positions must not move
    np.testing.assert_allclose(block(Tensor(x2), kv).numpy()[:, :2], y[:, :2], rtol=1e-12)
    mem2 = mem.copy()
    mem2[:, 1] += 1.0  # change the memory: every position sees it
    y3 = block(Tensor(x), block.cross_attn.project_memory(Tensor(mem2))).numpy()
    assert np.all(np.abs(y3 - y).max(-1) > 1e-6)
    y4, (self_w, cross_w) = block(Tensor(x), kv, need_weights=True)
    assert self_w.shape == (1, 2, 4, 4) and cross_w.shape == (1, 2, 4, 3)
    np.testing.assert_allclose(y4.numpy(), y, rtol=1e-12)


def test_padded_memory_positions_get_no_gradient(rng, backend):
    ca = nn.CrossAttention(4, 2, rng=0).double()
    x = Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    mem = Tensor(rng.standard_normal((2, 5, 4)), requires_grad=True)
    pad = np.zeros((2, 5), bool)
    pad[0, :2] = True
    pad[1, 4] = True
    (ca(x, mem, key_padding_mask=pad) ** 2).sum().backward()
    g = mem.grad
    assert np.all(g[pad] == 0.0) and np.all(np.abs(g[~pad]).sum(-1) > 0)
    att = nn.AdditiveAttention(3, 4, 5, rng=0).double()
    keys = Tensor(rng.standard_normal((2, 5, 4)), requires_grad=True)
    ctx, _ = att(Tensor(rng.standard_normal((2, 3))), keys, key_padding_mask=pad)
    (ctx ** 2).sum().backward()
    assert np.all(keys.grad[pad] == 0.0) and np.all(np.abs(keys.grad[~pad]).sum(-1) > 0)

"""Tests of the GPT model family: causality, configs, init, state dicts, tying, dtypes."""

import json

import numpy as np
import pytest

from engine import Tensor, nn
from engine.models import GPT, GPTConfig


def test_train_eval_toggle_dropout_in_gpt():
    model = GPT(GPTConfig.tiny(dropout=0.3, block_size=8), rng=0)
    idx = np.arange(16).reshape(2, 8)
    a, b = model(idx)[0].data, model(idx)[0].data
    assert not np.allclose(a, b)
    model.eval()
    assert all(not m.training for m in model.modules())
    c, d = model(idx)[0].data, model(idx)[0].data
    np.testing.assert_array_equal(c, d)
    model.train()
    assert all(m.training for m in model.modules())


# ---- gradients -----------------------------------------------------------------------------

def test_gpt_logits_do_not_see_the_future():
    model = GPT(GPTConfig.tiny(block_size=8), rng=0)
    idx = np.random.default_rng(0).integers(0, 64, (2, 8))
    other = idx.copy()
    other[:, 5:] = (other[:, 5:] + 1) % 64
    a, b = model(idx)[0].data, model(other)[0].data
    np.testing.assert_array_equal(a[:, :5], b[:, :5])
    assert not np.allclose(a[:, 5:], b[:, 5:])


def test_attention_weights_on_request():
    mha = nn.MultiHeadAttention(8, 2, rng=0)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32))
    y, w = mha(x, need_weights=True)
    assert w.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(w.data.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.triu(w.data, k=1), 0.0)
    np.testing.assert_allclose(y.data, mha(x).data, rtol=1e-5, atol=1e-6)
    maps = GPT(GPTConfig.tiny(block_size=8), rng=0).attention_maps(np.zeros((1, 6), int))
    assert len(maps) == 2 and maps[0].shape == (1, 4, 6, 6)


# ---- GPT bookkeeping -------------------------------------------------------------------------

@pytest.mark.parametrize("name,tied,count", [("tiny", False, 112_384), ("tiny", True, 108_288),
                                             ("small", False, 826_112), ("small", True, 817_920)])
def test_parameter_counts(name, tied, count):
    model = GPT(GPTConfig.from_name(name, tie_weights=tied), rng=0)
    assert model.num_parameters() == count
    assert f"{count:,} params" in repr(model).split("\n")[0]


def test_config_round_trip_and_errors():
    cfg = GPTConfig.small(dropout=0.1)
    assert (cfg.block_size, cfg.n_embd, cfg.n_layer, cfg.dropout) == (128, 128, 4, 0.1)
    assert GPTConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        GPTConfig.from_dict({**cfg.to_dict(), "n_embed": 3})
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig.tiny(n_head=3)
    with pytest.raises(ValueError, match="huge"):
        GPTConfig.from_name("huge")


def test_construction_is_reproducible_and_initialised_like_gpt2():
    cfg = GPTConfig.small()
    a, b, c = (GPT(cfg, rng=s).state_dict() for s in (0, 0, 1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["transformer.wte.weight"], c["transformer.wte.weight"])
    assert abs(a["transformer.h.0.mlp.c_fc.weight"].std() - 0.02) < 1e-3
    assert abs(a["transformer.h.0.mlp.c_proj.weight"].std() - 0.02 / np.sqrt(8)) < 1e-3
    assert abs(a["transformer.h.1.attn.c_proj.weight"].std() - 0.02 / np.sqrt(8)) < 1e-3
    np.testing.assert_array_equal(a["transformer.h.0.attn.c_attn.bias"], 0.0)
    np.testing.assert_array_equal(a["transformer.ln_f.weight"], 1.0)


def test_state_dict_names_shapes_and_round_trip():
    model = GPT(GPTConfig.tiny(block_size=8), rng=0)
    sd = model.state_dict()
    assert sd["transformer.h.0.attn.c_attn.weight"].shape == (192, 64)
    assert sd["transformer.h.1.mlp.c_proj.weight"].shape == (64, 256)
    assert sd["transformer.wpe.weight"].shape == (8, 64)
    assert sd["lm_head.weight"].shape == (64, 64) and "lm_head.bias" not in sd
    sd["transformer.wte.weight"][:] = 0  # a copy: the model is untouched
    assert np.abs(model.transformer.wte.weight.data).max() > 0
    other = GPT(GPTConfig.tiny(block_size=8), rng=1)
    other.load_state_dict(model.state_dict())
    idx = np.arange(8)[None] % 64
    np.testing.assert_array_equal(other(idx)[0].data, model(idx)[0].data)


def test_load_state_dict_errors_name_the_problem():
    model = GPT(GPTConfig.tiny(block_size=8), rng=0)
    good = model.state_dict()
    missing = {k: v for k, v in good.items() if k != "transformer.ln_f.bias"}
    with pytest.raises(KeyError, match="transformer.ln_f.bias"):
        model.load_state_dict(missing)
    with pytest.raises(KeyError, match="extra.weight"):
        model.load_state_dict({**good, "extra.weight": np.zeros(3)})
    wrong = {**good, "transformer.wte.weight": np.zeros((65, 64), np.float32)}
    with pytest.raises(ValueError, match=r"transformer.wte.weight.*\(64, 64\).*\(65, 64\)"):
        model.load_state_dict(wrong)
    wrong = {**good, "lm_head.weight": good["lm_head.weight"].astype(np.float64)}
    with pytest.raises(ValueError, match="lm_head.weight.*float64"):
        model.load_state_dict(wrong)
    # Nothing was written by the failed loads.
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in good.items())


def test_weight_tying_shares_one_array_and_sums_gradients():
    tied = GPT(GPTConfig.tiny(block_size=8, tie_weights=True), rng=0)
    assert tied.lm_head.weight is tied.transformer.wte.weight
    assert sum(p is tied.lm_head.weight for p in tied.parameters()) == 1
    sd = tied.state_dict()
    np.testing.assert_array_equal(sd["lm_head.weight"], sd["transformer.wte.weight"])
    untied = GPT(GPTConfig.tiny(block_size=8), rng=5)
    untied.load_state_dict(sd)
    idx = np.random.default_rng(0).integers(0, 64, (2, 8))
    tied(idx, idx)[1].backward()
    untied(idx, idx)[1].backward()
    want = untied.transformer.wte.weight.grad + untied.lm_head.weight.grad
    np.testing.assert_allclose(tied.lm_head.weight.grad, want, rtol=1e-5, atol=1e-7)


def test_loss_at_init_is_about_log_vocab_and_ignores_minus_100():
    model = GPT(GPTConfig.tiny(), rng=0)
    rng = np.random.default_rng(0)
    idx, targets = rng.integers(0, 64, (4, 64)), rng.integers(0, 64, (4, 64))
    logits, loss = model(idx, targets)
    assert logits.shape == (4, 64, 64)
    assert abs(loss.item() - np.log(64)) < 0.1
    assert model(idx)[1] is None
    targets[:, :10] = -100
    z = logits.data.astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    keep = targets != -100
    want = -logp[keep, targets[keep]].mean()
    np.testing.assert_allclose(model(idx, targets)[1].item(), want, rtol=1e-5)


def test_sequence_longer_than_block_size_is_refused():
    model = GPT(GPTConfig.tiny(block_size=8), rng=0)
    with pytest.raises(ValueError, match=r"9.*block_size 8"):
        model(np.zeros((1, 9), int))


def test_to_double_and_zero_grad():
    model = GPT(GPTConfig.tiny(block_size=4, n_layer=1), rng=0)
    idx = np.zeros((1, 4), int)
    model(idx, idx)[1].backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model(idx)[0].dtype == np.float64


def test_gpt_without_biases():
    model = GPT(GPTConfig.tiny(block_size=4, n_layer=1, bias=False), rng=0)
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.endswith(".bias") for n in names)
    block = 2 * 64 + 64 * 192 + 64 * 64 + 64 * 256 + 256 * 64  # LayerNorm weights + 4 matrices
    assert model.num_parameters() == 64 * 64 + 4 * 64 + block + 64 + 64 * 64 == 57_792
    idx = np.zeros((1, 4), int)
    model(idx, idx)[1].backward()
    assert all(p.grad is not None for p in model.parameters())

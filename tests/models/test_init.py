"""Each model family's initialisation rule, as its file writes it down: weight scales and
what they are for (attention that does not start uniform)."""

import math

import numpy as np
import pytest

from engine.data import SyntheticTask
from engine.models import get_model


def _std(p):
    return float(np.std(p.data))


def _seq2seq_transformer(seed=0, **overrides):
    task = SyntheticTask("add")
    family = get_model("seq2seq-transformer")
    config = family.config.from_name("tiny", **overrides).for_data(task)
    return family.model(config, rng=seed), task


def test_seq2seq_transformer_weights_follow_the_fan_in_rule():
    model, _ = _seq2seq_transformer(n_embd=64, n_enc_layer=2, n_dec_layer=3)
    params = dict(model.named_parameters())
    for name in ("src_embed.weight", "tgt_embed.weight", "src_pos.weight", "tgt_pos.weight"):
        assert _std(params[name]) == pytest.approx(1.0, rel=0.15), name
    want = {  # name: 1/sqrt(fan_in) times the residual-depth factor of its stack
        "encoder.0.attn.c_attn.weight": 1 / 8,
        "encoder.0.mlp.c_fc.weight": 1 / 8,
        "encoder.1.attn.c_proj.weight": 1 / 8 / math.sqrt(4),
        "encoder.1.mlp.c_proj.weight": 1 / 16 / math.sqrt(4),
        "decoder_blocks.2.cross_attn.q_proj.weight": 1 / 8,
        "decoder_blocks.0.cross_attn.c_proj.weight": 1 / 8 / math.sqrt(9),
        "decoder_blocks.1.mlp.c_proj.weight": 1 / 16 / math.sqrt(9),
        "lm_head.weight": 1 / 8,
    }
    for name, std in want.items():
        assert _std(params[name]) == pytest.approx(std, rel=0.1), name
    assert not np.any(params["encoder.0.attn.c_attn.bias"].data)


def _entropy_ratio(weights, keys):
    """Mean attention entropy over rows, as a fraction of ln(keys) (1 = uniform)."""
    w = np.maximum(weights, 1e-30)
    return float(np.mean(-(weights * np.log(w)).sum(-1)) / math.log(keys))


@pytest.mark.parametrize("seed", [0, 1])
def test_seq2seq_transformer_attention_does_not_start_uniform(seed):
    # At normal(0, 0.02) every entropy ratio was 0.9999 (uniform attention, nothing to
    # pull heads toward the digits they must read); the fan-in rule starts near 0.85.
    model, task = _seq2seq_transformer(seed)
    idx, _ = task.batch_of(task.held_out(32))
    maps = model.attention_maps(idx)
    S = model.config.src_len
    for name, w in maps.items():
        if "cross" in name or name.startswith("encoder"):
            assert _entropy_ratio(w, S) < 0.95, name



def _vit(seed=0, **overrides):
    family = get_model("vit")
    return family.model(family.config.from_name("tiny", **overrides), rng=seed)


def test_vit_weights_follow_the_fan_in_rule():
    model = _vit(n_embd=64, n_layer=2, patch_size=4, channels=3)
    params = dict(model.named_parameters())
    want = {"patch_embed.weight": 1 / math.sqrt(48), "pos_embed": 1.0,
            "blocks.0.attn.c_attn.weight": 1 / 8, "blocks.1.mlp.c_fc.weight": 1 / 8,
            "blocks.0.attn.c_proj.weight": 1 / 8 / 2, "blocks.1.mlp.c_proj.weight": 1 / 16 / 2}
    for name, std in want.items():
        assert _std(params[name]) == pytest.approx(std, rel=0.15), name
    assert not np.any(params["head.weight"].data)  # every class starts equally likely


def test_vit_attention_does_not_start_uniform(rng):
    # 0.9999 of uniform with the GPT's 0.02 recipe.
    model = _vit(seed=1, pixel_mean=(0.5,), pixel_std=(0.25,))
    maps = model.attention_maps(rng.random((8, 16, 16)).astype(np.float32))
    n = model.config.num_patches + 1
    for i in range(model.config.n_layer):
        assert _entropy_ratio(maps[f"layer.{i}"], n) < 0.95


def test_vit_normalises_pixels_with_the_stats_in_its_config(rng):
    images = rng.random((4, 16, 16)).astype(np.float32)
    plain = _vit(seed=2)
    normed = _vit(seed=2, pixel_mean=(0.3,), pixel_std=(0.5,))
    a, _ = normed(images)
    b, _ = plain((images - 0.3) / 0.5)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pixel_mean and pixel_std need 1 values"):
        get_model("vit").config(pixel_mean=(0.1, 0.2), pixel_std=(1.0, 1.0))

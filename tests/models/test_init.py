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


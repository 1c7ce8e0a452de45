"""The GPT's fused decoding kernel (ops/decode_cpu.py) against the model's own forward."""

import numpy as np
import pytest

import ops
from engine.models import GPT, GPTConfig
from engine.models.generate import _decoder, generate
from engine.models.gpt_decode import FusedGPTDecoder

TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _model(dtype=np.float32, **overrides):
    cfg = GPTConfig(vocab_size=11, block_size=12, n_embd=16, n_head=4, n_layer=2, **overrides)
    return GPT(cfg, rng=3, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("overrides", [{}, {"bias": False}, {"tie_weights": True}])
def test_step_logits_match_the_forward_at_every_position(dtype, overrides):
    model = _model(dtype, **overrides).eval()
    tokens = np.random.default_rng(0).integers(0, 11, (3, 12))
    decoder = FusedGPTDecoder(model, 3)
    full, _ = model(tokens)  # (3, 12, V): position t's logits see tokens[:, :t + 1]
    for t in range(1, 13):
        got = decoder.next_logits(tokens[:, :t])
        assert got.dtype == dtype and got.shape == (3, 11)
        np.testing.assert_allclose(got, full.data[:, t - 1], rtol=0,
                                   atol=TOL[dtype] * np.abs(full.data).max())
    # past block_size the cache cannot hold the sequence: recompute on the last block
    longer = np.concatenate([tokens, tokens[:, :2]], axis=1)
    want, _ = model(longer[:, -12:])
    np.testing.assert_allclose(decoder.next_logits(longer), want.data[:, -1], rtol=1e-5)


def test_prompt_fed_at_once_equals_token_by_token():
    model = _model().eval()
    tokens = np.random.default_rng(1).integers(0, 11, (2, 7))
    at_once = FusedGPTDecoder(model, 2).next_logits(tokens)
    stepwise = FusedGPTDecoder(model, 2)
    for t in range(1, 8):
        last = stepwise.next_logits(tokens[:, :t])
    np.testing.assert_array_equal(at_once, last)


def test_generate_uses_it_and_matches_the_uncached_tokens():
    model = _model()
    prompt = np.random.default_rng(2).integers(0, 11, (2, 3))
    assert isinstance(_decoder(model, 2, use_cache=True), FusedGPTDecoder)
    cached, cached_logits = generate(model, prompt, 15, greedy=True, return_logits=True)
    plain, plain_logits = generate(model, prompt, 15, greedy=True, use_cache=False,
                                   return_logits=True)
    np.testing.assert_array_equal(cached, plain)  # 15 new tokens run past block_size 12
    np.testing.assert_allclose(cached_logits, plain_logits, rtol=0, atol=1e-5)
    sampled = [generate(model, prompt, 8, temperature=0.8, top_k=5, rng=7, use_cache=c)
               for c in (True, False)]
    np.testing.assert_array_equal(*sampled)


def test_not_used_on_the_numpy_backend_or_without_the_cache():
    model = _model()
    with ops.use_backend("numpy"):
        assert not isinstance(_decoder(model, 1, use_cache=True), FusedGPTDecoder)
    assert not isinstance(_decoder(model, 1, use_cache=False), FusedGPTDecoder)


@pytest.mark.parametrize("bad", [11, -1])
def test_out_of_range_tokens_raise_like_the_model(bad):
    model = _model()
    prompt = np.array([[1, 2, bad]])
    message = f"embedding: index {bad} out of range for 11 rows"
    with pytest.raises(IndexError, match=message):
        model(prompt)  # the generic path's error
    for use_cache in (True, False):
        with pytest.raises(IndexError, match=message):
            generate(model, prompt, 2, greedy=True, use_cache=use_cache)

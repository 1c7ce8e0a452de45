"""Tests for engine.models.generate: KV-cache equivalence, greedy/top-k/temperature sampling."""

import numpy as np
import pytest

from engine.models import GPT, GPTConfig
from engine.models.generate import _pick, generate

BLOCK = 12


def sharp_model(dtype=np.float32, seed=0):
    """A random tiny GPT with larger weights than at init, so argmax ties are unlikely."""
    model = GPT(GPTConfig.tiny(block_size=BLOCK, n_layer=2), rng=seed)
    rng = np.random.default_rng(seed + 100)
    for p in model.parameters():
        p.data += (0.3 * rng.standard_normal(p.shape)).astype(p.dtype)
    return model.to(dtype)


PROMPT = np.random.default_rng(0).integers(0, 64, (3, 4))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_kv_cache_matches_recomputation_past_block_size(dtype, tol):
    model = sharp_model(dtype)
    steps = 2 * BLOCK  # the cache fills at BLOCK tokens, then recomputation takes over
    with_cache, logits_c = generate(model, PROMPT, steps, greedy=True, return_logits=True)
    without, logits_n = generate(model, PROMPT, steps, greedy=True, use_cache=False,
                                 return_logits=True)
    assert with_cache.shape == (3, 4 + steps) and with_cache.dtype == np.int64
    np.testing.assert_array_equal(with_cache, without)
    np.testing.assert_array_equal(with_cache[:, :4], PROMPT)
    assert logits_c.shape == (3, steps, 64)
    np.testing.assert_allclose(logits_c, logits_n, rtol=tol, atol=tol)
    assert len(np.unique(with_cache[:, 4:])) > 3  # not a degenerate constant sequence


def test_cached_forward_equals_full_forward():
    model = sharp_model(np.float64)
    idx = np.random.default_rng(1).integers(0, 64, (2, BLOCK))
    full = model(idx)[0].data
    cache = model.make_cache(2)
    parts = [model(idx[:, :5], kv_cache=cache)[0].data]  # prefill 5, then one at a time
    parts += [model(idx[:, t:t + 1], kv_cache=cache)[0].data for t in range(5, BLOCK)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match=f"{BLOCK + 1}.*block_size {BLOCK}"):
        model(idx[:, :1], kv_cache=cache)


def test_prompt_longer_than_block_size_is_cropped():
    model = sharp_model()
    prompt = np.random.default_rng(2).integers(0, 64, (2, BLOCK + 5))
    a = generate(model, prompt, 3, greedy=True)
    b = generate(model, prompt, 3, greedy=True, use_cache=False)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, BLOCK + 8)


def test_top_k_1_equals_greedy():
    model = sharp_model()
    greedy = generate(model, PROMPT, 10, greedy=True)
    np.testing.assert_array_equal(generate(model, PROMPT, 10, top_k=1, rng=5), greedy)
    np.testing.assert_array_equal(generate(model, PROMPT, 10, temperature=0.0), greedy)


def test_seeded_sampling_is_reproducible():
    model = sharp_model()
    a = generate(model, PROMPT, 16, temperature=1.5, rng=7)
    b = generate(model, PROMPT, 16, temperature=1.5, rng=np.random.default_rng(7))
    c = generate(model, PROMPT, 16, temperature=1.5, rng=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    d = generate(model, PROMPT, 16, temperature=1.5, rng=7, use_cache=False)
    np.testing.assert_array_equal(a, d)


def test_sampling_follows_softmax_and_top_k():
    n = 20000
    logits = np.tile([2.0, 1.0, 0.0, -1.0, 0.5], (n, 1))  # n independent rows, one draw each
    draws = _pick(logits, False, 0.7, None, np.random.default_rng(0))
    p = np.exp(logits[0] / 0.7)
    p /= p.sum()
    freq = np.bincount(draws, minlength=5) / n
    np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(p * (1 - p) / n).max())
    draws = _pick(logits, False, 1.0, 2, np.random.default_rng(1))
    assert set(draws) == {0, 1}


def test_bad_settings_are_refused():
    model = sharp_model()
    with pytest.raises(ValueError, match="temperature"):
        generate(model, PROMPT, 2, temperature=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, PROMPT, 2, temperature=float("nan"))
    with pytest.raises(ValueError, match="top_k"):
        generate(model, PROMPT, 2, top_k=0)
    with pytest.raises(ValueError, match="2-D"):
        generate(model, PROMPT[0], 2)


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_inside_and_previous_mode_restored(training):
    model = GPT(GPTConfig.tiny(block_size=BLOCK, dropout=0.5), rng=0)
    model.train(training)
    a = generate(model, PROMPT, 5, greedy=True)
    b = generate(model, PROMPT, 5, greedy=True)
    np.testing.assert_array_equal(a, b)  # eval mode inside: dropout off
    assert model.training == training
    assert generate(model, PROMPT, 0).shape == PROMPT.shape

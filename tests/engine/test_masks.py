"""Masks mean one thing: bool masks mask, float masks add, integer masks are refused."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor


def _qkv(rng, t=5, d=4):
    return [Tensor(rng.standard_normal((1, 2, t, d)).astype(np.float32)) for _ in range(3)]


def test_bool_mask_masks_like_causal(rng):
    q, k, v = _qkv(rng)
    tril = np.tril(np.ones((5, 5), bool))
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, mask=tril).data,
                               F.scaled_dot_product_attention(q, k, v, causal=True).data,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [int, np.int32, np.uint8])
def test_integer_mask_is_an_error_asking_for_a_bool_mask(rng, dtype):
    q, k, v = _qkv(rng)
    with pytest.raises(TypeError, match="scaled_dot_product_attention: .*pass a bool mask"):
        F.scaled_dot_product_attention(q, k, v, mask=np.tril(np.ones((5, 5), dtype)))


def test_float_mask_is_added_to_the_scores(rng):
    q, k, v = _qkv(rng)
    additive = np.where(np.tril(np.ones((5, 5), bool)), 0.0, -np.inf).astype(np.float32)
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, mask=additive).data,
                               F.scaled_dot_product_attention(q, k, v, causal=True).data,
                               rtol=1e-5, atol=1e-6)
    bias = rng.standard_normal((5, 5)).astype(np.float32)
    w = F.attention_weights(q, k, mask=bias).data
    s = (q.data @ k.data.transpose(0, 1, 3, 2)) / 2.0 + bias
    want = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(w, want / want.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_masked_fill_errors_name_masked_fill():
    a = Tensor(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"^masked_fill: mask \(5,\) does not broadcast"):
        F.masked_fill(a, np.zeros(5, bool), 0.0)
    with pytest.raises(TypeError, match="^masked_fill: mask must be boolean.*bool mask"):
        F.masked_fill(a, np.zeros((3, 4), int), 0.0)
    np.testing.assert_array_equal(a.masked_fill(np.eye(3, 4, dtype=bool), 2.0).data,
                                  2 * np.eye(3, 4))

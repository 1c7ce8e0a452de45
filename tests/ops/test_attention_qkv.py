"""Self-attention from the fused (B, T, 3C) projection: the in-place kernels against the
split-transpose-attend composite, and the engine op against finite differences."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor
from engine.gradcheck import gradcheck
from ops import attention_cpu as fused
from ops.attention import (
    attention_qkv_backward_composite,
    attention_qkv_backward_cpu,
    attention_qkv_composite,
    attention_qkv_cpu,
)


def _plain(qkv, n_head, causal, scale):
    """y by an explicit float64 softmax per head."""
    b, t, c3 = qkv.shape
    c, d = c3 // 3, c3 // 3 // n_head
    x = qkv.astype(np.float64)
    q, k, v = (x[..., i * c:(i + 1) * c].reshape(b, t, n_head, d).transpose(0, 2, 1, 3)
               for i in range(3))
    s = np.einsum("bhid,bhjd->bhij", q, k) * scale
    if causal:
        s = np.where(np.tri(t, t, dtype=bool), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhij,bhjd->bhid", p, v).transpose(0, 2, 1, 3).reshape(b, t, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("b, t, c, nh", [(2, 17, 12, 3), (1, 65, 32, 2), (3, 5, 16, 1)])
@pytest.mark.parametrize("tiles", [(64, 256), (5, 8)])
def test_in_place_kernels_match_the_composite(rng, monkeypatch, dtype, causal, b, t, c, nh,
                                              tiles):
    monkeypatch.setattr(fused, "BLOCK_Q", tiles[0])
    monkeypatch.setattr(fused, "BLOCK_K", tiles[1])
    qkv = rng.standard_normal((b, t, 3 * c)).astype(dtype)
    dy = rng.standard_normal((b, t, c)).astype(dtype)
    scale = (c // nh) ** -0.5
    y, lse = attention_qkv_cpu(qkv, nh, causal, scale)
    y_ref, lse_ref = attention_qkv_composite(qkv, nh, causal, scale)
    tol = {"rtol": 1e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}
    assert y.shape == (b, t, c) and y.dtype == dtype and lse.shape == (b, nh, t)
    np.testing.assert_allclose(y, y_ref, **tol)
    np.testing.assert_allclose(lse, lse_ref, **tol)
    np.testing.assert_allclose(y_ref, _plain(qkv, nh, causal, scale), **tol)
    g = attention_qkv_backward_cpu(dy, qkv, y, lse, nh, causal, scale)
    g_ref = attention_qkv_backward_composite(dy, qkv, y_ref, lse_ref, nh, causal, scale)
    assert g.shape == qkv.shape and g.dtype == dtype
    np.testing.assert_allclose(g, g_ref, **tol)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_and_same_as_split_heads(rng, backend, causal):
    import ops
    qkv = rng.standard_normal((2, 6, 12))
    with ops.use_backend(backend):
        assert gradcheck(lambda x: F.self_attention(x, 2, causal=causal),
                         Tensor(qkv, requires_grad=True))
        x = Tensor(qkv)
        q, k, v = (x[..., i * 4:(i + 1) * 4].reshape(2, 6, 2, 2).transpose(1, 2)
                   for i in range(3))
        want = F.scaled_dot_product_attention(q, k, v, causal=causal)
        got = F.self_attention(x, 2, causal=causal)
        np.testing.assert_allclose(got.numpy(), want.transpose(1, 2).reshape(2, 6, 4).numpy(),
                                   rtol=1e-12, atol=1e-12)


def test_bad_shapes_name_the_op():
    with pytest.raises(ValueError, match="self_attention"):
        F.self_attention(Tensor(np.zeros((2, 3, 10))), 2)
    with pytest.raises(ValueError, match="self_attention"):
        F.self_attention(Tensor(np.zeros((2, 3, 12))), 3)
    with pytest.raises(ValueError, match="self_attention"):
        F.self_attention(Tensor(np.zeros((3, 12))), 1)

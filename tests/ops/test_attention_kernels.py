"""Attention kernels: reference vs plain formulas and finite differences, fused vs reference."""

import numba
import numpy as np
import pytest

import ops
from ops import attention_cpu as fused
from ops.attention import (
    attention_backward_cpu,
    attention_backward_reference,
    attention_cpu,
    attention_reference,
)

DTYPES = [np.float32, np.float64]
SIZES = [1, 3, 17, 63, 65]
DIMS = [1, 8, 16, 33]


def _tol(dtype):
    return {"rtol": 1e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-10,
                                                                     "atol": 1e-10}


def _qkv(rng, dtype, b=2, h=2, tq=5, tk=5, d=4, dv=None):
    """Random q (b, h, tq, d), k (b, h, tk, d), v (b, h, tk, dv) and do (b, h, tq, dv)."""
    dv = d if dv is None else dv
    shapes = [(b, h, tq, d), (b, h, tk, d), (b, h, tk, dv), (b, h, tq, dv)]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _both(q, k, v, do, causal, mask=None, scale=None):
    """Forward and backward of the cpu form and of the reference on the same inputs."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    o, lse = attention_reference(q, k, v, causal, scale, mask)
    grads = attention_backward_reference(do, q, k, v, o, lse, causal, scale, mask)
    o2, lse2 = attention_cpu(q, k, v, causal, scale, mask)
    grads2 = attention_backward_cpu(do, q, k, v, o2, lse2, causal, scale, mask)
    return (o, lse, *grads), (o2, lse2, *grads2)


def _assert_close(got, want, dtype):
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == dtype
        np.testing.assert_allclose(g, w, **_tol(dtype))


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of 5 queries by 8 keys: several full and partial tiles even at T = 17."""
    monkeypatch.setattr(fused, "BLOCK_Q", 5)
    monkeypatch.setattr(fused, "BLOCK_K", 8)


def _plain_attention(q, k, v, causal, scale, mask):
    """o and lse by an explicit per-(b, h) softmax in float64, written without the helpers."""
    tq, tk = q.shape[-2], k.shape[-2]
    s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64), k.astype(np.float64)) * scale
    if mask is not None:
        s = s + mask
    if causal:
        s = np.where(np.tri(tq, tk, tk - tq, dtype=bool), s, -np.inf)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    lse = np.log(e.sum(axis=-1)) + s.max(axis=-1)
    return np.einsum("bhij,bhjd->bhid", e / e.sum(axis=-1, keepdims=True), v), lse


def test_registry_picks_the_cpu_forms():
    assert ops.kernel("attention", backend="numba") is attention_cpu
    assert ops.kernel("attention_backward", backend="numba") is attention_backward_cpu
    assert ops.kernel("attention", backend="numpy") is attention_reference
    assert ops.kernel("attention_backward", backend="numpy") is attention_backward_reference


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tq, tk", [(5, 5), (1, 7), (3, 8)])
@pytest.mark.parametrize("with_mask", [False, True])
def test_reference_matches_plain_softmax(rng, causal, tq, tk, with_mask):
    q, k, v, _ = _qkv(rng, np.float64, tq=tq, tk=tk, d=3, dv=2)
    mask = rng.standard_normal((tq, tk)) if with_mask else None
    o, lse = attention_reference(q, k, v, causal, 0.7, mask)
    o_want, lse_want = _plain_attention(q, k, v, causal, 0.7, mask)
    np.testing.assert_allclose(o, o_want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lse, lse_want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tq, tk", [(3, 3), (2, 4)])
def test_reference_backward_matches_finite_differences(rng, causal, tq, tk):
    q, k, v, do = _qkv(rng, np.float64, b=1, h=2, tq=tq, tk=tk, d=2, dv=3)
    mask = rng.standard_normal((1, 1, tq, tk))
    o, lse = attention_reference(q, k, v, causal, 0.8, mask)
    grads = attention_backward_reference(do, q, k, v, o, lse, causal, 0.8, mask)
    inputs = [q, k, v]
    for which, grad in enumerate(grads):
        numeric = np.zeros_like(grad)
        for idx in np.ndindex(grad.shape):
            plus, minus = [x.copy() for x in inputs], [x.copy() for x in inputs]
            plus[which][idx] += 1e-6
            minus[which][idx] -= 1e-6
            f_plus = (attention_reference(*plus, causal, 0.8, mask)[0] * do).sum()
            f_minus = (attention_reference(*minus, causal, 0.8, mask)[0] * do).sum()
            numeric[idx] = (f_plus - f_minus) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("t", SIZES)
@pytest.mark.parametrize("d", DIMS)
def test_fused_matches_reference_small_tiles(rng, small_tiles, dtype, causal, t, d):
    q, k, v, do = _qkv(rng, dtype, b=2, h=3, tq=t, tk=t, d=d, dv=(d % 7) + 1)
    want, got = _both(q, k, v, do, causal)
    _assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("t", SIZES + [64, 129])
def test_fused_matches_reference_default_tiles(rng, dtype, causal, t):
    q, k, v, do = _qkv(rng, dtype, b=1, h=2, tq=t, tk=t, d=16)
    want, got = _both(q, k, v, do, causal)
    _assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tq, tk", [(1, 1), (1, 17), (1, 65), (3, 17), (16, 63)])
def test_fused_fewer_queries_than_keys(rng, small_tiles, dtype, causal, tq, tk):
    """Decoding with a KV cache: the Tq queries are the last Tq positions."""
    q, k, v, do = _qkv(rng, dtype, tq=tq, tk=tk, d=8, dv=5)
    want, got = _both(q, k, v, do, causal)
    _assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_takes_non_contiguous_inputs(rng, small_tiles, dtype):
    # (B, T, H, D) arrays viewed as (B, H, T, D), as the engine's head split produces
    q, k, v, do = (x.transpose(0, 2, 1, 3) for x in
                   _qkv(rng, dtype, b=2, h=17, tq=3, tk=3, d=9))
    q = q[..., ::2]                                    # strided last axis too
    k = k[..., ::2]
    assert not q.flags.c_contiguous and not v.flags.c_contiguous
    for causal in (False, True):
        want, got = _both(q, k, v, do, causal)
        _assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_causal_rows_before_the_first_key_are_fully_masked(rng, small_tiles, dtype):
    """Tq > Tk with causal: the first Tq - Tk rows see no key: o = 0, lse = -inf, no grads."""
    q, k, v, do = _qkv(rng, dtype, tq=13, tk=9, d=4, dv=3)
    want, got = _both(q, k, v, do, causal=True)
    _assert_close(got, want, dtype)
    o, lse, dq = got[0], got[1], got[2]
    assert np.all(o[:, :, :4] == 0) and np.all(lse[:, :, :4] == -np.inf)
    assert np.all(dq[:, :, :4] == 0) and np.isfinite(lse[:, :, 4:]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_additive_mask_with_a_fully_masked_row(rng, dtype, causal):
    q, k, v, do = _qkv(rng, dtype, tq=4, tk=6, d=3)
    mask = np.where(rng.random((2, 1, 4, 6)) < 0.3, -np.inf, 0.0).astype(dtype)
    mask[0, 0, 2] = -np.inf                            # row 2 of batch 0 sees nothing
    want, got = _both(q, k, v, do, causal, mask=mask)
    for result in (want, got):
        o, lse, dq = result[:3]
        assert np.all(o[0, :, 2] == 0) and np.all(lse[0, :, 2] == -np.inf)
        assert np.all(dq[0, :, 2] == 0)
        assert not any(np.isnan(x).any() for x in result)
    _assert_close(got, want, dtype)
    # the mask's -inf entries must match the plain formula where rows have a visible key
    with np.errstate(invalid="ignore"):                # NaN on the fully masked row
        o_plain, _ = _plain_attention(q, k, v, causal, 3 ** -0.5, mask)
    seen = np.isfinite(want[1])
    np.testing.assert_allclose(want[0][seen], o_plain[seen], **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_large_logits_stay_finite(rng, small_tiles, dtype, causal):
    q, k, v, do = _qkv(rng, dtype, tq=17, tk=17, d=8)
    q = q * dtype(100)                                 # scores in the hundreds
    want, got = _both(q, k, v, do, causal)
    for result in (want, got):
        assert all(np.isfinite(x).all() for x in result)
    o, lse, *grads = got
    np.testing.assert_allclose(o, want[0], **_tol(dtype))
    np.testing.assert_allclose(lse, want[1], rtol=1e-5 if dtype == np.float32 else 1e-12)
    for g, w in zip(grads, want[2:]):                  # gradients scale with the logits
        np.testing.assert_allclose(g, w, rtol=_tol(dtype)["rtol"],
                                   atol=1e2 * _tol(dtype)["atol"])


def test_fused_is_deterministic_for_any_thread_count_and_returns_new_arrays(rng, small_tiles):
    q, k, v, do = _qkv(rng, np.float32, b=3, h=4, tq=33, tk=33, d=8)
    first = _both(q, k, v, do, causal=True)[1]
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = _both(q, k, v, do, causal=True)[1]
    finally:
        numba.set_num_threads(threads)
    for a, b in zip(first, single):
        np.testing.assert_array_equal(a, b)
        assert not any(np.shares_memory(a, x) for x in (q, k, v, do))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("b, tq, tk", [(2, 0, 3), (2, 3, 0), (0, 3, 3)])
def test_empty_sizes(rng, causal, b, tq, tk):
    """No keys: every row is fully masked (o = 0, lse = -inf); no queries or batch: empty."""
    q, k, v, do = _qkv(rng, np.float32, b=b, tq=tq, tk=tk, d=4, dv=3)
    want, got = _both(q, k, v, do, causal)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_array_equal(g, w)

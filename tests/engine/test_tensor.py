"""Tensor basics (dtypes, array facts, conversions, repr) and primitive forward values
against plain numpy formulas."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor

F32 = {"rtol": 1e-6, "atol": 1e-6}  # float32 elementwise: a few ulps


# ---- construction and dtypes ---------------------------------------------------------------
@pytest.mark.parametrize("data", [[1.5, 2.0], 3.0, np.array([1.0], np.float32)])
def test_float_data_defaults_to_float32(data):
    assert Tensor(data).dtype == np.float32


@pytest.mark.parametrize("data", [np.zeros((2, 3)), np.float64(2.5)])
def test_float64_numpy_data_keeps_float64(data):
    t = Tensor(data, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad


def test_explicit_dtype_and_integers():
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor([1, 2]).dtype == np.int64
    assert Tensor(np.array([1, 2], np.int32)).dtype == np.int64
    assert Tensor(np.array([True, False])).dtype == np.bool_


def test_unsupported_dtypes_are_refused():
    with pytest.raises(TypeError, match="float16"):
        Tensor([1.0], dtype=np.float16)
    with pytest.raises(TypeError, match="complex"):
        Tensor(np.array([1j]))


def test_array_facts():
    t = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.size == 24 and len(t) == 2
    assert t.device == "cpu" and t.dtype == np.float32
    assert t.is_leaf and t.grad_fn is None and not t.requires_grad


def test_numpy_shares_data_and_array_protocol():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = Tensor(a)
    assert t.numpy() is a
    assert np.array_equal(np.asarray(t), a)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.array_equal(np.array(t, dtype=np.float64), a.astype(np.float64))
    assert np.asarray(t) is a  # asarray shares; np.array copies
    copy = np.array(t)
    copy[0, 0] = 99.0
    assert t.data[0, 0] == 0.0


def test_item():
    assert Tensor([[2.5]]).item() == 2.5
    assert isinstance(Tensor(3).item(), int)
    with pytest.raises(ValueError, match=r"\(2,\) has 2 elements"):
        Tensor([1.0, 2.0]).item()


def test_detach_shares_data_and_leaves_graph():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert d.data is y.data and not d.requires_grad and d.is_leaf and d.grad_fn is None
    z = (d * x).sum()
    z.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])  # no path through y back to x


def test_repr_shows_values_dtype_and_origin():
    x = Tensor(np.array([1.0, 2.5], np.float32), requires_grad=True)
    assert repr(x) == "Tensor([1. , 2.5], dtype=float32, requires_grad=True)"
    assert repr(x * 2.0) == "Tensor([2., 5.], dtype=float32, grad_fn=mul)"
    assert repr(Tensor([1, 2])) == "Tensor([1, 2], dtype=int64)"
    big = repr(Tensor(np.zeros((100, 100), np.float32)))
    assert "..." in big and len(big) < 1000  # summarised, not 10,000 numbers


def test_grad_is_shaped_like_the_tensor():
    x = Tensor(np.ones((2, 1, 3), np.float32), requires_grad=True)
    (x * np.arange(12, dtype=np.float32).reshape(4, 3)).sum().backward()  # (2, 4, 3)
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [[[18, 22, 26]]] * 2)  # column sums of arange


def test_float_and_double_convert():
    x = Tensor(np.array([1.25], np.float32), requires_grad=True)
    assert x.double().dtype == np.float64 and x.double().requires_grad
    assert x.double().float().dtype == np.float32


def test_float_and_double_keep_the_graph():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    (x.double() * 3.0).sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


# ---- forward values of the primitives against numpy ----------------------------------------
def _pair(rng, sa, sb):
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    return a, b


BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)),
                   ((), (3,)), ((1,), (5, 1))]


@pytest.mark.parametrize("sa,sb", BROADCAST_PAIRS)
def test_binary_ops_match_numpy(rng, sa, sb):
    a, b = _pair(rng, sa, sb)
    b = b + np.float32(3.0) * np.sign(b)  # keep the divisor away from 0
    ta, tb = Tensor(a), Tensor(b)
    for got, want in [(ta + tb, a + b), (ta - tb, a - b), (ta * tb, a * b), (ta / tb, a / b)]:
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got.data, want, **F32)


def test_scalar_operands_on_both_sides(rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    t = Tensor(a)
    cases = [(2.0 + t, 2 + a), (t - 1, a - 1), (1 - t, 1 - a), (3 * t, 3 * a),
             (t / 4, a / 4), (1 / (t + 5), 1 / (a + 5)), (-t, -a)]
    for got, want in cases:
        assert got.dtype == np.float32
        np.testing.assert_allclose(got.data, want, **F32)


def test_unary_ops_match_numpy(rng):
    a = rng.standard_normal((3, 5)).astype(np.float32)
    pos = np.abs(a) + np.float32(0.1)
    t, tp = Tensor(a), Tensor(pos)
    cases = [(t.exp(), np.exp(a)), (tp.log(), np.log(pos)), (tp.sqrt(), np.sqrt(pos)),
             (t.tanh(), np.tanh(a)), (t.relu(), np.where(a > 0, a, 0)),
             (t ** 2, a * a), (t ** 3, a * a * a), (tp ** 0.5, np.sqrt(pos)),
             (tp ** -1.5, pos ** -1.5), (F.sigmoid(t), 1 / (1 + np.exp(-a)))]
    for got, want in cases:
        assert got.dtype == np.float32 and got.shape == a.shape
        np.testing.assert_allclose(got.data, want, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_match_numpy(rng, axis, keepdims):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = Tensor(a)
    for got, want in [(t.sum(axis, keepdims), a.sum(axis, keepdims=keepdims)),
                      (t.mean(axis, keepdims), a.mean(axis, keepdims=keepdims)),
                      (t.max(axis, keepdims), a.max(axis, keepdims=keepdims))]:
        assert got.shape == np.shape(want) and got.dtype == np.float32
        np.testing.assert_allclose(got.data, want, rtol=1e-6, atol=1e-6)


def test_shape_ops_match_numpy():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = Tensor(a)
    np.testing.assert_array_equal(t.reshape(4, 6).data, a.reshape(4, 6))
    np.testing.assert_array_equal(t.reshape((3, -1)).data, a.reshape(3, -1))
    np.testing.assert_array_equal(t.view(24).data, a.ravel())
    np.testing.assert_array_equal(t.permute(2, 0, 1).data, a.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.transpose(0, 2).data, a.swapaxes(0, 2))
    np.testing.assert_array_equal(t.T.data, a.T)
    np.testing.assert_array_equal(t[1, :, ::2].data, a[1, :, ::2])
    np.testing.assert_array_equal(t[..., -1].data, a[..., -1])
    np.testing.assert_array_equal(t[np.array([1, 1, 0])].data, a[[1, 1, 0]])
    np.testing.assert_array_equal(t[Tensor([1, 0]), 1:].data, a[[1, 0], 1:])


def test_concat_split_where_masked_fill_match_numpy(rng):
    a, b = _pair(rng, (2, 3), (2, 5))
    ta, tb = Tensor(a), Tensor(b)
    np.testing.assert_array_equal(F.concat([ta, tb], axis=1).data, np.concatenate([a, b], 1))
    parts = F.split(tb, [2, 3], axis=1)
    np.testing.assert_array_equal(parts[0].data, b[:, :2])
    np.testing.assert_array_equal(parts[1].data, b[:, 2:])
    assert [p.shape for p in F.split(Tensor(np.zeros((4, 6))), 3)] == [(4, 2)] * 3
    cond = a > 0
    np.testing.assert_array_equal(F.where(cond, ta, 0.0).data, np.where(cond, a, 0))
    np.testing.assert_array_equal(F.masked_fill(ta, cond, -1.0).data, np.where(cond, -1, a))
    assert F.masked_fill(ta, cond, -1.0).dtype == np.float32


def test_integer_arithmetic_and_mean():
    t = Tensor([1, 2, 3]) + Tensor([10, 20, 30])
    assert t.dtype == np.int64 and not t.requires_grad
    np.testing.assert_array_equal(t.data, [11, 22, 33])
    mean = Tensor([[1, 2], [4, 4]]).mean(axis=1)  # no integer floor: a float32 result
    assert mean.dtype == np.float32
    np.testing.assert_array_equal(mean.data, [1.5, 4.0])


# ---- forward values of the layers (kernels) against numpy formulas, on both backends ---------
def _tol(dtype):
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


def _softmax64(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _data(rng, dtype, *shape):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 17, 1), (17, 63, 65), (65, 3, 17)])
def test_matmul_and_linear_values(backend, rng, dtype, m, k, n):
    a, b, bias = _data(rng, dtype, m, k), _data(rng, dtype, k, n), _data(rng, dtype, n)
    want = a.astype(np.float64) @ b
    got = F.matmul(Tensor(a), Tensor(b))
    assert got.dtype == dtype
    np.testing.assert_allclose(got.data, want, **_tol(dtype))
    bt = np.ascontiguousarray(b.T)  # (out, in) like PyTorch
    np.testing.assert_allclose(F.linear(Tensor(a), Tensor(bt), Tensor(bias)).data, want + bias,
                               **_tol(dtype))
    batched = F.matmul(Tensor(np.stack([a, 2 * a])), Tensor(b))  # (2, m, k) @ (k, n)
    np.testing.assert_allclose(batched.data, np.stack([want, 2 * want]), **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_of_non_contiguous_views(backend, rng, dtype):
    a, b = _data(rng, dtype, 17, 5), _data(rng, dtype, 65, 17)
    got = F.matmul(Tensor(a).T, Tensor(b).T)  # (5, 17) @ (17, 65), both transposed views
    np.testing.assert_allclose(got.data, a.T.astype(np.float64) @ b.T, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (3, 17), (2, 3, 63), (65, 1)])
def test_softmax_family_values(backend, rng, dtype, shape):
    x = _data(rng, dtype, *shape) * 4
    x64 = x.astype(np.float64)
    p = _softmax64(x64)
    np.testing.assert_allclose(F.softmax(Tensor(x)).data, p, **_tol(dtype))
    np.testing.assert_allclose(F.log_softmax(Tensor(x)).data, np.log(p), **_tol(dtype))
    np.testing.assert_allclose(F.softmax(Tensor(x), axis=0).data, _softmax64(x64.T).T,
                               **_tol(dtype))
    np.testing.assert_allclose(F.softmax(Tensor(x[..., ::-1])).data, p[..., ::-1], **_tol(dtype))
    big = F.softmax(Tensor(x + dtype(1000))).data  # stable: shifted logits, same result
    np.testing.assert_allclose(big, p, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,v", [(1, 1), (3, 17), (17, 65)])
def test_cross_entropy_values(backend, rng, dtype, n, v):
    z = _data(rng, dtype, n, v) * 3
    t = rng.integers(0, v, n)
    logp = np.log(_softmax64(z.astype(np.float64)))
    want = -logp[np.arange(n), t].mean()
    got = F.cross_entropy(Tensor(z), t)
    assert got.shape == () and got.dtype == dtype
    np.testing.assert_allclose(got.item(), want, **_tol(dtype))
    t[0] = -100  # ignored row: left out of the mean
    want = -logp[np.arange(1, n), t[1:]].mean() if n > 1 else 0.0
    np.testing.assert_allclose(F.cross_entropy(Tensor(z), t).item(), want, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 3), (3, 17), (2, 5, 63), (4, 65)])
def test_layer_norm_and_gelu_values(backend, rng, dtype, shape):
    x, w, b = _data(rng, dtype, *shape) * 3 + 1, _data(rng, dtype, shape[-1]), _data(
        rng, dtype, shape[-1])
    x64 = x.astype(np.float64)
    mu, var = x64.mean(-1, keepdims=True), x64.var(-1, keepdims=True)
    want = (x64 - mu) / np.sqrt(var + 1e-5) * w + b
    np.testing.assert_allclose(F.layer_norm(Tensor(x), Tensor(w), Tensor(b)).data, want,
                               rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-4)
    gelu = 0.5 * x64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64 ** 3)))
    np.testing.assert_allclose(Tensor(x).gelu().data, gelu, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_values(backend, rng, dtype):
    w, idx = _data(rng, dtype, 7, 5), np.array([[6, 0, 0], [3, 6, 1]])
    got = F.embedding(idx, Tensor(w))
    assert got.shape == (2, 3, 5) and got.dtype == dtype
    np.testing.assert_array_equal(got.data, w[idx])


def _attention64(q, k, v, causal, scale, allowed=None):
    s = np.einsum("bhqd,bhkd->bhqk", q, k).astype(np.float64) * scale
    tq, tk = s.shape[-2:]
    if causal:
        s = np.where(np.arange(tk)[None, :] > np.arange(tq)[:, None] + tk - tq, -np.inf, s)
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    return np.einsum("bhqk,bhkd->bhqd", _softmax64(s), v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tq,tk,causal", [(1, 1, True), (3, 3, False), (17, 17, True),
                                          (5, 65, True), (65, 65, True), (63, 17, False)])
def test_attention_values(backend, rng, dtype, tq, tk, causal):
    q, k, v = _data(rng, dtype, 2, 2, tq, 8), _data(rng, dtype, 2, 2, tk, 8), _data(
        rng, dtype, 2, 2, tk, 4)
    got = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), causal=causal)
    assert got.shape == (2, 2, tq, 4) and got.dtype == dtype
    np.testing.assert_allclose(got.data, _attention64(q, k, v, causal, 8 ** -0.5), **_tol(dtype))
    weights = F.attention_weights(Tensor(q), Tensor(k), causal=causal)  # composed, not fused
    np.testing.assert_allclose(weights.data.sum(-1), 1.0, **_tol(dtype))
    np.testing.assert_allclose(weights.data @ v, got.data, **_tol(dtype))


def test_attention_boolean_mask_values(backend, rng):
    q, k, v = _data(rng, np.float64, 1, 2, 4, 3), _data(rng, np.float64, 1, 2, 6, 3), _data(
        rng, np.float64, 1, 2, 6, 3)
    allowed = rng.random((4, 6)) > 0.4
    allowed[:, 2] = True
    got = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=allowed, scale=0.5)
    np.testing.assert_allclose(got.data, _attention64(q, k, v, False, 0.5, allowed), rtol=1e-10)


def test_dropout_values_and_seed():
    x = Tensor(np.ones((200, 50), np.float32))
    F.manual_seed(3)
    a = F.dropout(x, p=0.25).data
    F.manual_seed(3)
    b = F.dropout(x, p=0.25).data
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, np.float32(1 / 0.75)} and a.dtype == np.float32
    assert abs((a == 0).mean() - 0.25) < 0.02  # 10,000 draws: 4 sigma is about 0.017

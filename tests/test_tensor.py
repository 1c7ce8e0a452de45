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


def test_comparison_free_integer_arithmetic():
    t = Tensor([1, 2, 3]) + Tensor([10, 20, 30])
    assert t.dtype == np.int64 and not t.requires_grad
    np.testing.assert_array_equal(t.data, [11, 22, 33])

"""Property tests (hypothesis): forward values and gradients of broadcasting ops, reductions,
indexing and batched matmul, against numpy formulas written independently of the engine."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import engine.functional as F
import ops
from engine import Tensor

SETTINGS = settings(max_examples=30, deadline=None)
F64 = {"rtol": 1e-12, "atol": 1e-12}


def _scatter_sum(full, shape):
    """Sum the elements of `full` onto the element of an array of `shape` that broadcasting
    copied them from: labels every source element, broadcasts the labels, counts by label."""
    size = int(np.prod(shape, dtype=np.int64))
    labels = np.broadcast_to(np.arange(size).reshape(shape), full.shape)
    return np.bincount(labels.ravel(), weights=full.ravel(), minlength=size).reshape(shape)


def _leaf(rng, shape, positive=False):
    x = rng.standard_normal(shape)
    return Tensor(np.abs(x) + 0.5 if positive else x, requires_grad=True)


def _backward_with(out, rng):
    """Backpropagate sum(w * out) for a random w; returns w."""
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()
    return w


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3),
       op=st.sampled_from(["add", "sub", "mul", "div"]), seed=st.integers(0, 2**32 - 1))
def test_broadcasting_binary_op_gradients(shapes, op, seed):
    rng = np.random.default_rng(seed)
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    a, b = _leaf(rng, sa), _leaf(rng, sb, positive=op == "div")
    out = getattr(F, op)(a, b)
    av, bv = np.broadcast_to(a.data, out_shape), np.broadcast_to(b.data, out_shape)
    want = {"add": av + bv, "sub": av - bv, "mul": av * bv, "div": av / bv}[op]
    assert out.shape == out_shape
    np.testing.assert_allclose(out.data, want, **F64)
    w = _backward_with(out, rng)
    da = {"add": w, "sub": w, "mul": w * bv, "div": w / bv}[op]
    db = {"add": w, "sub": -w, "mul": w * av, "div": -w * av / bv ** 2}[op]
    np.testing.assert_allclose(a.grad, _scatter_sum(da, sa), **F64)
    np.testing.assert_allclose(b.grad, _scatter_sum(db, sb), **F64)


@st.composite
def _shape_and_axis(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    axes = draw(st.none() | st.lists(st.integers(0, len(shape) - 1), min_size=1,
                                      max_size=len(shape), unique=True))
    if axes is not None and draw(st.booleans()):
        axes = [ax - len(shape) for ax in axes]  # negative spellings too
    axis = None if axes is None else (axes[0] if len(axes) == 1 else tuple(axes))
    return shape, axis


@SETTINGS
@given(case=_shape_and_axis(), keepdims=st.booleans(), op=st.sampled_from(["sum", "mean", "max"]),
       seed=st.integers(0, 2**32 - 1))
def test_reduction_gradients(case, keepdims, op, seed):
    shape, axis = case
    rng = np.random.default_rng(seed)
    a = _leaf(rng, shape)  # standard normals: ties for max have probability 0
    out = getattr(F, op)(a, axis=axis, keepdims=keepdims)
    want = getattr(np, op)(a.data, axis=axis, keepdims=keepdims)
    assert out.shape == want.shape
    np.testing.assert_allclose(out.data, want, **F64)
    w = _backward_with(out, rng)
    kept = getattr(np, op)(a.data, axis=axis, keepdims=True)
    # the output element each input element feeds: labels laid out on the kept-dims shape
    labels = np.broadcast_to(np.arange(kept.size).reshape(kept.shape), shape)
    spread = w.ravel()[labels]
    expected = {"sum": spread, "mean": spread * kept.size / a.size,
                "max": spread * (a.data == np.broadcast_to(kept, shape))}[op]
    np.testing.assert_allclose(a.grad, expected, **F64)


@SETTINGS
@given(shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       seed=st.integers(0, 2**32 - 1), count=st.integers(1, 8))
def test_integer_index_gradients_scatter_add(shape, seed, count):
    rng = np.random.default_rng(seed)
    a = _leaf(rng, shape)
    idx = rng.integers(0, shape[0], count)  # duplicates likely: rows gathered several times
    out = a[idx]
    np.testing.assert_array_equal(out.data, a.data[idx])
    w = _backward_with(out, rng)
    expected = np.zeros(shape)
    for j, row in enumerate(idx):
        expected[row] += w[j]
    np.testing.assert_allclose(a.grad, expected, **F64)


@SETTINGS
@given(batch=mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3),
       mkn=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
       backend=st.sampled_from(["numpy", "numba"]), seed=st.integers(0, 2**32 - 1))
def test_batched_matmul_gradients(batch, mkn, backend, seed):
    rng = np.random.default_rng(seed)
    (ba, bb), bo = batch.input_shapes, batch.result_shape
    m, k, n = mkn
    a, b = _leaf(rng, ba + (m, k)), _leaf(rng, bb + (k, n))
    with ops.use_backend(backend):
        out = F.matmul(a, b)
        av, bv = np.broadcast_to(a.data, bo + (m, k)), np.broadcast_to(b.data, bo + (k, n))
        np.testing.assert_allclose(out.data, np.einsum("...mk,...kn->...mn", av, bv), **F64)
        w = _backward_with(out, rng)
    da = np.einsum("...mn,...kn->...mk", w, bv)  # dL/dA = W B^T, per broadcast batch
    db = np.einsum("...mk,...mn->...kn", av, w)  # dL/dB = A^T W
    np.testing.assert_allclose(a.grad, _scatter_sum(da, a.shape), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(b.grad, _scatter_sum(db, b.shape), rtol=1e-10, atol=1e-10)


@SETTINGS
@given(case=_shape_and_axis(), backend=st.sampled_from(["numpy", "numba"]),
       log=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_softmax_along_any_axis(case, backend, log, seed):
    shape, axis = case
    axis = axis if isinstance(axis, int) else -1
    rng = np.random.default_rng(seed)
    a = _leaf(rng, shape)
    with ops.use_backend(backend):
        out = (F.log_softmax if log else F.softmax)(a, axis=axis)
        w = _backward_with(out, rng)
    e = np.exp(a.data - a.data.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(out.data, np.log(p) if log else p, rtol=1e-10, atol=1e-12)
    if log:  # d/dz sum(w * log p) = w - p * sum(w)
        expected = w - p * w.sum(axis=axis, keepdims=True)
    else:  # d/dz sum(w * p) = p * (w - sum(w * p))
        expected = p * (w - (w * p).sum(axis=axis, keepdims=True))
    np.testing.assert_allclose(a.grad, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
def test_broadcast_gradients_keep_dtype_and_shape(dtype, shapes):
    (sa, sb), _ = shapes.input_shapes, shapes.result_shape
    a = Tensor(np.ones(sa, dtype), requires_grad=True)
    b = Tensor(np.full(sb, 2, dtype), requires_grad=True)
    (a * b + a / b - b).sum().backward()
    for t in (a, b):
        assert t.grad.shape == t.shape and t.grad.dtype == dtype
    n_out = np.prod(shapes.result_shape, dtype=np.int64)
    np.testing.assert_allclose(a.grad.sum(), n_out * 2.5, rtol=1e-6)  # each out adds 2 + 1/2
    np.testing.assert_allclose(b.grad.sum(), n_out * (1 - 0.25 - 1), rtol=1e-6)

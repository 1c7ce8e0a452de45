"""Embedding kernels: the Numba forms against the numpy reference, duplicates, layouts."""

import numpy as np
import pytest

import ops
from ops.embedding import (
    embedding_backward_cpu,
    embedding_backward_reference,
    embedding_cpu,
    embedding_reference,
)

DTYPES = [np.float32, np.float64]
SIZES = [1, 3, 17, 63, 65]


def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12,
                                                                     "atol": 1e-12}


def test_registry_picks_the_cpu_forms():
    assert ops.kernel("embedding", backend="numba") is embedding_cpu
    assert ops.kernel("embedding_backward", backend="numba") is embedding_backward_cpu
    assert ops.kernel("embedding", backend="numpy") is embedding_reference
    assert ops.kernel("embedding_backward", backend="numpy") is embedding_backward_reference


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vocab", SIZES)
@pytest.mark.parametrize("channels", SIZES)
def test_embedding_matches_reference(rng, dtype, vocab, channels):
    weight = rng.standard_normal((vocab, channels)).astype(dtype)
    idx = rng.integers(0, vocab, size=(4, 5))
    out = embedding_cpu(weight, idx)
    assert out.shape == (4, 5, channels) and out.dtype == dtype
    np.testing.assert_array_equal(out, embedding_reference(weight, idx))
    assert not np.shares_memory(out, weight)


def test_embedding_index_shapes_and_non_contiguous_weight(rng):
    weight = rng.standard_normal((20, 6))
    for idx in (np.array(3), np.arange(7), rng.integers(0, 20, size=(2, 3, 4))):
        np.testing.assert_array_equal(embedding_cpu(weight, idx), weight[idx])
    strided = rng.standard_normal((6, 20)).T  # (20, 6), Fortran order
    idx = rng.integers(0, 20, size=9)
    np.testing.assert_array_equal(embedding_cpu(strided, idx), strided[idx])


@pytest.mark.parametrize("bad", [-1, 10])
def test_out_of_range_indices_raise(rng, bad):
    idx = np.array([0, bad, 2])
    with pytest.raises(IndexError):
        embedding_cpu(rng.standard_normal((10, 4)), idx)
    with pytest.raises(IndexError):
        embedding_backward_cpu(idx, rng.standard_normal((3, 4)), 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("channels", SIZES)
def test_backward_matches_reference(rng, dtype, n, channels):
    vocab = 7
    idx = rng.integers(0, vocab, size=(n,))
    dout = rng.standard_normal((n, channels)).astype(dtype)
    dweight = embedding_backward_cpu(idx, dout, vocab)
    assert dweight.shape == (vocab, channels) and dweight.dtype == dtype
    np.testing.assert_allclose(dweight, embedding_backward_reference(idx, dout, vocab),
                               **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_sums_many_duplicates(rng, dtype):
    # 1000 copies of index 2 and a few others; rows never indexed stay exactly zero.
    idx = np.concatenate([np.full(1000, 2), [0, 4, 2, 0]]).reshape(4, 251)
    dout = rng.standard_normal((4, 251, 17)).astype(dtype)
    dweight = embedding_backward_cpu(idx, dout, 6)
    flat_idx, flat_dout = idx.reshape(-1), dout.reshape(-1, 17).astype(np.float64)
    for row in range(6):
        expected = flat_dout[flat_idx == row].sum(axis=0)
        np.testing.assert_allclose(dweight[row], expected, rtol=1e-4 if dtype == np.float32
                                   else 1e-12, atol=1e-4 if dtype == np.float32 else 1e-12)
    assert not dweight[[1, 3, 5]].any()


def test_backward_is_deterministic_and_matches_add_at_order(rng):
    # The scatter sums in index order, as np.add.at does, so float32 results agree exactly.
    idx = rng.integers(0, 5, size=(8, 64))
    dout = rng.standard_normal((8, 64, 33)).astype(np.float32)
    first = embedding_backward_cpu(idx, dout, 5)
    np.testing.assert_array_equal(first, embedding_backward_cpu(idx, dout, 5))
    np.testing.assert_array_equal(first, embedding_backward_reference(idx, dout, 5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_non_contiguous_dout(rng, dtype):
    idx = rng.integers(0, 9, size=(3, 65))
    base = rng.standard_normal((65, 3, 34)).astype(dtype)
    dout = base.transpose(1, 0, 2)[:, :, ::2]  # (3, 65, 17), strided in every axis
    assert not dout.flags.c_contiguous
    np.testing.assert_allclose(embedding_backward_cpu(idx, dout, 9),
                               embedding_backward_reference(idx, dout, 9), **_tol(dtype))

"""Tensor indexing follows numpy's rules, errors included: each index kind a Tensor accepts
gives numpy's values and shape (or numpy's exception type), and its gradient scatters back
exactly as np.add.at does."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Tensor

A = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
I = np.array
INDICES = [
    0, -1, 2, (0, 1), (slice(None), 1), (Ellipsis, 1), (None, 0), (0, None, 1),
    slice(None, None, -1), (slice(None), slice(None, None, -2)), slice(5, 1), Ellipsis, (),
    I([1, 0, 1]), I([-1]), I([2]), (I([0, 1]), I([1, 2])), (I([0, 1]), slice(None), I([1, 2])),
    (slice(None), I([0, 1]), I([1, 2])), (slice(None), I([0, 2])[:, None], I([1, 3])),
    (slice(1, None), I([0, 0, 2])), [0, 1], [[0, 1]], [0, -2], np.int64(1), I(1), (I(1), 2),
    (0, [1, 2], slice(None)), (Ellipsis, None), (None, Ellipsis, None),
    (I([0, 1]), None, I([1, 2])), (0, slice(None), I([[0, 1], [2, 3]])),
    I([[0]], dtype=np.uint8), I([], dtype=np.int64), (Ellipsis, I([0, 1]), slice(None)),
    (Ellipsis, I([3, 0])), (slice(None), Ellipsis, I([1])), (Ellipsis, I([], dtype=np.int64)),
    # boolean masks select (True is not position 1)
    I([True, False]), I([True]), I([True, False, True]), A[0] > 5, A > 5, [True, False],
    (slice(None), [True, False, True]), (slice(None), I([True, True, False, True])),
    (0, I([True, False, True])), (I([1, 0]), I([True, False, True])), I([], dtype=bool),
    True, False, (0, True), I(True), I(False), (np.bool_(True),), I([[True, False, True]]),
    # errors: numpy's type
    1.0, I([0.5]), "a", (Ellipsis, Ellipsis), (0, 0, 0, 0), (slice(None), 5), (I([0, 5]),),
    (I([-3]),), (slice(None), slice(None), I([4])), I([True, False, True]),
]


@pytest.mark.parametrize("index", INDICES, ids=[repr(i)[:40] for i in INDICES])
def test_indexing_matches_numpy(index):
    try:
        want, want_error = A[index], None
    except Exception as e:  # noqa: BLE001  (numpy's exception type is the expectation)
        want, want_error = None, type(e)
    t = Tensor(A, requires_grad=True)
    if want_error is not None:
        with pytest.raises(want_error):
            t[index]
        return
    y = t[index]
    assert y.shape == want.shape
    np.testing.assert_array_equal(y.data, want)
    g = np.random.default_rng(0).random(want.shape)
    y.backward(g)
    expected = np.zeros_like(A)
    np.add.at(expected, index, g)
    np.testing.assert_allclose(t.grad, expected)


def test_a_tensor_index_is_its_array():
    t = Tensor(A)
    np.testing.assert_array_equal(t[Tensor(I([1, 0]))].data, A[I([1, 0])])
    np.testing.assert_array_equal(t[Tensor(I([1])), 0].data, A[I([1]), 0])


def _item(n):
    """One index item for an axis of length n (sometimes out of range or ill-shaped)."""
    ints = st.integers(-n - 1, n)
    return st.one_of(
        ints, st.none(), st.just(Ellipsis),
        st.builds(slice, st.none() | ints, st.none() | ints,
                  st.none() | st.integers(-3, 3).filter(bool)),
        st.lists(ints, max_size=3).map(lambda v: np.array(v, dtype=np.int64)),
        st.lists(st.booleans(), min_size=max(n - 1, 0), max_size=n + 1).map(np.array),
        st.lists(ints, min_size=1, max_size=2))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_random_indices_match_numpy(data):
    shape = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="shape")
    a = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    items = tuple(data.draw(_item(shape[min(k, len(shape) - 1)]), label=f"item {k}")
                  for k in range(data.draw(st.integers(1, len(shape) + 1), label="items")))
    index = items[0] if len(items) == 1 and data.draw(st.booleans(), label="bare") else items
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy's deprecated forms are errors to us too
            want, want_error = a[index], None
    except Exception as e:  # noqa: BLE001
        want, want_error = None, type(e)
    t = Tensor(a, requires_grad=True)
    if want_error is not None:
        deprecated = issubclass(want_error, Warning)  # numpy warns; any clear error is ours
        with pytest.raises(Exception if deprecated else want_error):
            t[index]
        return
    y = t[index]
    assert y.shape == want.shape
    np.testing.assert_array_equal(y.data, want)
    g = np.random.default_rng(0).random(want.shape)
    y.backward(g)
    expected = np.zeros_like(a)
    np.add.at(expected, index, g)
    np.testing.assert_allclose(t.grad, expected)

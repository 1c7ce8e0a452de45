"""Comparisons, logic and predicates: bool results against numpy on every device, no
gradient, broadcasting, and errors that name the op and the shapes."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor

OPS = {"equal": (lambda a, b: a == b, np.equal), "not_equal": (lambda a, b: a != b, np.not_equal),
       "less": (lambda a, b: a < b, np.less), "less_equal": (lambda a, b: a <= b, np.less_equal),
       "greater": (lambda a, b: a > b, np.greater),
       "greater_equal": (lambda a, b: a >= b, np.greater_equal)}
SHAPES = [((3, 4), (3, 4)), ((), (4,)), ((3, 4), (1, 4)), ((2, 1, 4), (3, 1))]


def _ints(rng, shape):
    return rng.integers(-2, 3, size=shape).astype(np.float64)  # small ints: many ties


@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_comparisons_match_numpy(on, rng, name, sa, sb):
    a, b = _ints(rng, sa), _ints(rng, sb)
    operator, reference = OPS[name]
    for y in (operator(on.leaf(a), on.const(b)), getattr(F, name)(on.const(a), on.const(b))):
        assert not y.requires_grad and y.grad_fn is None
        assert y.numpy().dtype == np.bool_
        np.testing.assert_array_equal(y.numpy(), reference(a, b))


def test_comparisons_with_python_numbers_and_integer_tensors(on):
    x = on.const(np.array([1, 2, 3]))
    np.testing.assert_array_equal((x > 1.5).numpy(), [False, True, True])
    np.testing.assert_array_equal((2 == x).numpy(), [False, True, False])
    np.testing.assert_array_equal((x <= 2).numpy(), [True, True, False])
    np.testing.assert_array_equal(F.gt(x, 1).numpy(), [False, True, True])
    b = on.const(np.array([True, False]))
    np.testing.assert_array_equal((b == 1).numpy(), [True, False])  # bool vs number: numpy's
    np.testing.assert_array_equal((b < 0.5).numpy(), [False, True])


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor"])
def test_logic_matches_numpy(on, rng, name):
    a, b = rng.random((3, 4)) > 0.5, rng.random((4,)) > 0.5
    y = getattr(F, name)(on.const(a), on.const(b))
    np.testing.assert_array_equal(y.numpy(), getattr(np, name)(a, b))
    z = getattr(F, name)(on.const(a.astype(np.int64)), on.const(b))  # nonzero is true
    np.testing.assert_array_equal(z.numpy(), getattr(np, name)(a, b))
    np.testing.assert_array_equal(F.logical_not(on.const(a)).numpy(), ~a)
    np.testing.assert_array_equal((~on.const(a)).numpy(), ~a)
    np.testing.assert_array_equal((on.const(a) & on.const(b)).numpy(), a & b)
    np.testing.assert_array_equal((on.const(a) | on.const(b)).numpy(), a | b)


def test_isnan_isinf_isfinite(on):
    x = np.array([0.0, np.nan, np.inf, -np.inf, -2.5])
    t = on.const(x)
    for name in ("isnan", "isinf", "isfinite"):
        np.testing.assert_array_equal(getattr(F, name)(t).numpy(), getattr(np, name)(x))
        np.testing.assert_array_equal(getattr(t, name)().numpy(), getattr(np, name)(x))


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 1), False),
                                           (-1, False)])
def test_any_all(on, rng, axis, keepdims):
    x = rng.random((3, 4)) > 0.7
    for name in ("any", "all"):
        for t in (on.const(x), on.const(x.astype(np.float64))):
            y = getattr(F, name)(t, axis=axis, keepdims=keepdims)
            np.testing.assert_array_equal(y.numpy(), getattr(np, name)(x, axis=axis,
                                                                       keepdims=keepdims))


def test_comparison_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"^less: shapes \(2, 3\) and \(4,\) do not broadcast"):
        _ = Tensor(np.zeros((2, 3))) < Tensor(np.zeros(4))
    with pytest.raises(ValueError, match=r"^logical_and: shapes \(2,\) and \(3,\)"):
        F.logical_and(Tensor([True, False]), Tensor([True] * 3))
    with pytest.raises(ValueError, match=r"any: axis 2 is out of range for a tensor of shape "
                                         r"\(2, 3\)"):
        F.any(Tensor(np.zeros((2, 3))), axis=2)


def test_tensors_stay_hashable_and_compare_with_none_by_identity():
    t = Tensor([1.0, 2.0])
    assert {t: 1}[t] == 1 and t in [t]
    assert (t == None) is False and (t != None) is True
    assert bool(Tensor([3.0]) > 2)
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2,\)"):
        bool(t > 0)

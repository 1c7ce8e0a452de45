"""Reductions beyond sum/mean/max: min, argmax, argmin, var, std, logsumexp, prod, cumsum,
against numpy and finite differences on every device; axis errors name op, axis and shape."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor

REDUCE = [((2, 3, 4), None), ((2, 3, 4), 1), ((2, 3, 4), -1), ((2, 3, 4), (0, 2)),
          ((1, 3), 0), ((5,), 0), ((), None)]


def _close(t, expected):
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape,axis", REDUCE)
def test_min_var_std_logsumexp_prod(on, rng, check, shape, axis, keepdims):
    x = on.rand(rng, *shape)
    h = on.host(x)
    kw = {"axis": axis, "keepdims": keepdims}
    lse = np.log(np.sum(np.exp(h), **kw))
    cases = {"min": (F.min, np.min(h, **kw)), "var": (F.var, np.var(h, **kw)),
             "std": (F.std, np.std(h, **kw)), "logsumexp": (F.logsumexp, lse),
             "prod": (F.prod, np.prod(h, **kw))}
    for name, (fn, expected) in cases.items():
        _close(fn(x, **kw), expected)
        if name == "std" and h.size == np.size(expected):
            continue  # std over one element is 0: sqrt's gradient is infinite there
        check(lambda a, fn=fn: fn(a, **kw), x)


@pytest.mark.parametrize("correction", [0, 1])
def test_var_std_correction(on, rng, check, correction):
    x = on.rand(rng, 3, 4)
    _close(F.var(x, axis=1, correction=correction), np.var(on.host(x), axis=1, ddof=correction))
    _close(x.std(axis=0, correction=correction), np.std(on.host(x), axis=0, ddof=correction))
    check(lambda a: F.std(a, axis=0, correction=correction), x)


def test_prod_gradient_with_zeros(on, check):
    x = on.leaf(np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.5], [1.0, 2.0, -1.0]]))
    check(lambda a: F.prod(a, axis=1), x)
    check(lambda a: F.prod(a), x)


def test_logsumexp_is_stable_and_handles_minus_inf(on):
    x = on.leaf(np.array([[1000.0, 1000.0], [-np.inf, -np.inf], [-np.inf, 0.0]]))
    y = F.logsumexp(x, axis=1)
    _close(y, [1000.0 + np.log(2.0), -np.inf, 0.0])


@pytest.mark.parametrize("shape,axis", [((2, 3), 0), ((2, 3), 1), ((2, 3), None), ((4,), -1)])
def test_cumsum(on, rng, check, shape, axis):
    x = on.rand(rng, *shape)
    _close(F.cumsum(x, axis), np.cumsum(on.host(x), axis=axis))
    check(lambda a: a.cumsum(axis=axis), x)


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), (-1, False)])
def test_argmax_argmin(on, rng, axis, keepdims):
    h = rng.standard_normal((3, 4))
    x = on.leaf(h)
    for name in ("argmax", "argmin"):
        y = getattr(F, name)(x, axis=axis, keepdims=keepdims)
        assert not y.requires_grad and y.numpy().dtype == np.int64
        np.testing.assert_array_equal(y.numpy(), getattr(np, name)(h, axis=axis,
                                                                   keepdims=keepdims))
    assert x.argmax().item() == np.argmax(h)


def test_reductions_of_integer_tensors():
    x = Tensor([[1, 5], [3, 2]])
    assert x.min().item() == 1 and x.argmax(axis=1).numpy().tolist() == [1, 0]
    assert x.prod().numpy().dtype == np.int64 and x.prod().item() == 30
    assert x.var().numpy().dtype == np.float32  # a float function: promoted to float32
    assert F.logsumexp(x).numpy().dtype == np.float32


@pytest.mark.parametrize("fn", [F.sum, F.mean, F.max, F.min, F.var, F.logsumexp, F.prod,
                                F.argmax, F.cumsum, F.softmax, F.log_softmax])
def test_a_bad_axis_names_the_op_the_axis_and_the_shape(fn):
    name = {"softmax": "softmax", "log_softmax": "log_softmax"}.get(fn.__name__, fn.__name__)
    with pytest.raises(ValueError, match=rf"{name}: axis 2 is out of range for a tensor of "
                                         rf"shape \(2, 3\)"):
        fn(Tensor(np.zeros((2, 3))), axis=2)
    with pytest.raises(ValueError, match=rf"{name}: axis -1 is out of range for a tensor of "
                                         r"shape \(\)"):  # 0-d: was a ZeroDivisionError
        fn(Tensor(1.5), axis=-1)


def test_empty_min_and_argmax_are_errors():
    with pytest.raises(ValueError, match=r"min: empty tensor of shape \(2, 0\) has no minimum"):
        F.min(Tensor(np.zeros((2, 0))))
    with pytest.raises(ValueError, match=r"argmax: empty tensor of shape \(0,\)"):
        F.argmax(Tensor(np.zeros(0)))


def test_reductions_of_bool_tensors_count_as_numpy_does(on):
    b = np.array([[True, False, True], [False, False, True]])
    t = on.const(b)
    for name in ("sum", "prod", "max", "min"):
        y = getattr(F, name)(t, axis=1)
        expected = getattr(np, name)(b, axis=1)
        assert y.numpy().dtype == expected.dtype
        np.testing.assert_array_equal(y.numpy(), expected)
    np.testing.assert_array_equal(F.cumsum(t, axis=1).numpy(), np.cumsum(b, axis=1))
    np.testing.assert_array_equal(F.argmax(t, axis=0).numpy(), np.argmax(b, axis=0))

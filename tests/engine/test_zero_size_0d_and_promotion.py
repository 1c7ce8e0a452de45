"""Edge cases that once broke: zero-size matmul, the integer -> float32 promotion rule, and
ops taking an axis on a 0-d tensor."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor

# ---- zero-size matmul: the empty or zero result and gradients of the right shapes ----------
EMPTY = [((8, 8), (8, 0)), ((0, 8), (8, 0)), ((8, 0), (0, 8)), ((0, 0), (0, 0)),
         ((2, 3, 0), (0, 4)), ((2, 0, 3), (2, 3, 4)), ((0, 3, 4), (4, 2)),
         ((2, 3, 0), (2, 0, 4))]


@pytest.mark.parametrize("sa,sb", EMPTY)
def test_zero_size_matmul_forward_and_backward(on, rng, sa, sb):
    a, b = on.leaf(rng.standard_normal(sa)), on.leaf(rng.standard_normal(sb))
    y = a @ b
    expected = np.matmul(on.host(a), on.host(b))  # zeros where K = 0, else empty
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.numpy(), expected)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_array_equal(on.host(a.grad), g @ np.swapaxes(on.host(b), -1, -2))
    assert on.host(a.grad).shape == sa and on.host(b.grad).shape == sb
    if 0 in sa[-1:]:  # K = 0: nothing flows back
        assert not on.host(b.grad).any()


def test_zero_size_linear(on, rng):
    x, w, b = on.leaf(np.zeros((0, 3))), on.leaf(rng.standard_normal((2, 3))), on.leaf(np.ones(2))
    y = F.linear(x, w, b)
    assert y.shape == (0, 2)
    y.sum().backward()
    assert on.host(w.grad).shape == (2, 3) and not on.host(w.grad).any()
    np.testing.assert_array_equal(on.host(b.grad), [0.0, 0.0])


# ---- integer tensors promoted by an op become float32, by one rule ---------------------------
def test_integer_division_and_float_functions_give_float32(on):
    x = on.const(np.array([1, 2, 3]))
    half = x / 2
    assert half.numpy().dtype == np.float32
    np.testing.assert_array_equal(half.numpy(), [0.5, 1.0, 1.5])
    three = on.const(np.array(3))
    assert three.exp().numpy().dtype == np.float32
    np.testing.assert_allclose(three.exp().item(), np.exp(3.0), rtol=1e-6)
    mixed = half + on.const(np.ones(3, np.float32))  # was the float32/float64 mix error
    assert mixed.numpy().dtype == np.float32
    np.testing.assert_array_equal(mixed.numpy(), [1.5, 2.0, 2.5])
    assert (x / x).numpy().dtype == np.float32 and (2 / x).numpy().dtype == np.float32


@pytest.mark.parametrize("fn", [F.exp, F.log, F.sqrt, F.tanh, F.sigmoid, F.gelu, F.softplus,
                                F.erf, F.sin, F.cos, F.log2, F.log1p, F.expm1, F.rsqrt, F.mean,
                                F.var, F.std, F.logsumexp, F.softmax, F.log_softmax,
                                lambda a: a ** 0.5, lambda a: a ** -1,
                                lambda a: F.pow(a, Tensor(0.5).to(a.device))])
def test_every_float_function_promotes_integers_to_float32(on, fn):
    for data in (np.array([1, 2, 4]), np.array([True, False, True])):
        with np.errstate(divide="ignore"):  # False ** -1 is inf
            assert fn(on.const(data)).numpy().dtype == np.float32


def test_integer_ops_that_stay_integer(on):
    x = on.const(np.array([1, 2, 3]))
    for y in (x + 1, x * x, x - 2, x ** 2, x // 2, x % 2, -x, x.sum(), x.max(), x.prod(),
              F.abs(x), F.maximum(x, 2), F.cumsum(x)):
        assert y.numpy().dtype == np.int64
    assert (x * 0.5).numpy().dtype == np.float32  # a float constant: float32, as before
    assert F.clip(x, 0.5, 2).numpy().dtype == np.float32  # numpy would give float64
    assert F.clip(x, 0, 2).numpy().dtype == np.int64


def test_float64_stays_float64_and_the_mix_rule_holds(on):
    d = on.const(np.array([1.0, 2.0]))  # float64 data stays float64
    assert (on.const(np.array([1, 2])) / d).numpy().dtype == np.float64
    with pytest.raises(TypeError, match="add: float32 and float64 tensors mixed"):
        (on.const(np.array([1, 2])) / 2) + d


# ---- ops taking an axis on a 0-d tensor ---------------------------------------------------
@pytest.mark.parametrize("fn,name", [(F.softmax, "softmax"), (F.log_softmax, "log_softmax"),
                                     (lambda a, axis: F.sum(a, axis=axis), "sum"),
                                     (lambda a, axis: F.argmax(a, axis=axis), "argmax"),
                                     (lambda a, axis: F.cumsum(a, axis=axis), "cumsum"),
                                     (lambda a, axis: F.flip(a, axis=axis), "flip"),
                                     (lambda a, axis: F.squeeze(a, axis=axis), "squeeze")])
def test_axis_ops_on_a_0d_tensor_are_clear_errors(on, fn, name):
    x = on.leaf(np.array(1.5))
    with pytest.raises(ValueError, match=rf"^{name}: axis -1 is out of range for a tensor of "
                                         r"shape \(\)$"):
        fn(x, axis=-1)


def test_reductions_of_a_0d_tensor_without_an_axis_work(on, check):
    x = on.leaf(np.array(1.5))
    for fn in (F.sum, F.mean, F.max, F.min, F.prod, F.logsumexp):
        np.testing.assert_allclose(fn(x).numpy(), 1.5)
        check(fn, x)
    assert F.argmax(x).item() == 0 and F.cumsum(x).shape == (1,)

"""Elementwise math beyond the core: forward against numpy (or math.erf), gradients against
finite differences on every device, including broadcasting and size-1 dims."""

import math

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor

SHAPES = [(), (1,), (5,), (2, 1, 3)]
BROADCAST = [((3, 4), (3, 4)), ((), (4,)), ((3, 4), (1, 4)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1))]
ERF = np.vectorize(math.erf)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


UNARY = {  # name: (engine function, numpy reference, input kind)
    "abs": (F.abs, np.abs, "away"),
    "sigmoid": (F.sigmoid, _sigmoid, "any"),
    "silu": (F.silu, lambda x: x * _sigmoid(x), "any"),
    "softplus": (F.softplus, lambda x: np.log1p(np.exp(x)), "any"),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), "away"),
    "erf": (F.erf, ERF, "any"),
    "gelu_none": (lambda a: F.gelu(a, approximate="none"),
                  lambda x: 0.5 * x * (1 + ERF(x / np.sqrt(2))), "any"),
    "sin": (F.sin, np.sin, "any"), "cos": (F.cos, np.cos, "any"),
    "rsqrt": (F.rsqrt, lambda x: 1 / np.sqrt(x), "positive"),
    "log2": (F.log2, np.log2, "positive"), "log1p": (F.log1p, np.log1p, "positive"),
    "expm1": (F.expm1, np.expm1, "any"),
    "clip": (lambda a: F.clip(a, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), "any"),
    "clip_low": (lambda a: a.clamp(min=0.3), lambda x: np.maximum(x, 0.3), "any"),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_math(on, rng, check, name, shape):
    fn, reference, kind = UNARY[name]
    x = on.rand(rng, *shape, positive=kind == "positive", away_from_zero=kind == "away")
    if name.startswith("clip"):  # keep the finite-difference step off the clip edges
        h = on.host(x)
        x = on.leaf(np.where(np.abs(np.abs(h - 0.1) - 0.5) < 0.05, h + 0.2, h))
    np.testing.assert_allclose(fn(x).numpy(), reference(on.host(x)), rtol=1e-12, atol=1e-14)
    check(fn, x)


def test_erf_over_its_whole_range_and_in_float32(on):
    x = np.concatenate([np.linspace(-7, 7, 281), [0.0, -0.0, 1e-8, 2.4999, 2.5, 2.5001, 30.0]])
    np.testing.assert_allclose(F.erf(on.const(x)).numpy(), ERF(x), rtol=1e-14, atol=1e-16)
    y = F.erf(on.const(x.astype(np.float32)))
    assert y.numpy().dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ERF(x.astype(np.float32)), rtol=0, atol=2e-6)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("sa,sb", BROADCAST)
def test_maximum_minimum(on, rng, check, name, sa, sb):
    a, b = on.rand(rng, *sa), on.rand(rng, *sb)
    np.testing.assert_array_equal(getattr(F, name)(a, b).numpy(),
                                  getattr(np, name)(on.host(a), on.host(b)))
    check(getattr(F, name), a, b)


def test_maximum_splits_ties_evenly(on):
    a, b = on.leaf(np.array([1.0, 2.0, 3.0])), on.leaf(np.array([1.0, 0.0, 5.0]))
    F.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(on.host(a.grad), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(on.host(b.grad), [0.5, 0.0, 1.0])


@pytest.mark.parametrize("sa,sb", BROADCAST)
def test_pow_with_a_tensor_exponent(on, rng, check, sa, sb):
    a, b = on.rand(rng, *sa, positive=True), on.rand(rng, *sb)
    np.testing.assert_allclose((a ** b).numpy(), on.host(a) ** on.host(b), rtol=1e-12)
    check(lambda x, y: x ** y, a, b)
    check(lambda y: 2.5 ** y, b)  # scalar ** tensor
    np.testing.assert_allclose((2.5 ** b).numpy(), 2.5 ** on.host(b), rtol=1e-12)


def test_pow_gradient_at_a_zero_base(on):
    a, b = on.leaf(np.array([0.0, 0.0])), on.leaf(np.array([2.0, 3.0]))
    (a ** b).sum().backward()
    np.testing.assert_array_equal(on.host(a.grad), [0.0, 0.0])
    np.testing.assert_array_equal(on.host(b.grad), [0.0, 0.0])


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "sign"])
def test_rounding_has_a_zero_gradient(on, rng, name):
    x = on.leaf(np.array([-2.5, -1.2, -0.5, 0.0, 0.4, 1.5, 2.5, 3.7]))
    y = getattr(F, name)(x)
    np.testing.assert_array_equal(y.numpy(), getattr(np, name if name != "round" else "round")(
        on.host(x)))
    (y * 3.0).sum().backward()
    np.testing.assert_array_equal(on.host(x.grad), np.zeros(8))


def test_floor_division_and_remainder(on, rng):
    a = rng.integers(-9, 10, size=(3, 4))
    b = rng.integers(1, 4, size=(4,)) * np.array([1, -1, 1, -1])
    ta, tb = on.const(a), on.const(b)
    np.testing.assert_array_equal((ta // tb).numpy(), a // b)
    np.testing.assert_array_equal((ta % tb).numpy(), a % b)
    np.testing.assert_array_equal((ta % 4).numpy(), a % 4)
    np.testing.assert_array_equal((7 // tb).numpy(), 7 // b)
    x = on.leaf(rng.standard_normal((3,)) * 5)
    y = x // 2.0
    np.testing.assert_array_equal(y.numpy(), on.host(x) // 2.0)
    assert not y.requires_grad and not (x % 1.5).requires_grad


def test_tensor_methods_match_the_functions(on, rng):
    x = on.rand(rng, 2, 3, away_from_zero=True)
    for name in ("abs", "sigmoid", "silu", "softplus", "sin", "cos", "expm1", "sign"):
        np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(F, name)(x).numpy())
    np.testing.assert_array_equal(abs(x).numpy(), F.abs(x).numpy())
    np.testing.assert_array_equal(x.clip(-0.2, 0.2).numpy(), F.clip(x, -0.2, 0.2).numpy())


@pytest.mark.parametrize("call,error,words", [
    (lambda: F.maximum(Tensor(np.zeros((2, 3))), Tensor(np.zeros(4))), ValueError,
     r"^maximum: shapes \(2, 3\) and \(4,\) do not broadcast"),
    (lambda: Tensor(np.ones((2, 3))) ** Tensor(np.ones(2)), ValueError,
     r"^pow: shapes \(2, 3\) and \(2,\) do not broadcast"),
    (lambda: Tensor([1, 2]) // Tensor([1, 2, 3]), ValueError,
     r"^floor_divide: shapes \(2,\) and \(3,\) do not broadcast"),
    (lambda: F.clip(Tensor([1.0]), 2.0, 1.0), ValueError, r"clip: a_min 2.0 is larger than"),
    (lambda: F.clip(Tensor([1.0])), ValueError, r"clip: give a_min, a_max or both"),
    (lambda: F.gelu(Tensor([1.0]), approximate="erf"), ValueError,
     r"gelu: approximate must be 'tanh' or 'none'"),
    (lambda: F.sin(Tensor([1.0], dtype="float32")) + Tensor(np.ones(1)), TypeError,
     r"add: float32 and float64 tensors mixed"),
    (lambda: Tensor(np.ones(2, np.float32)) % Tensor(np.ones(2)), TypeError,
     r"^remainder: float32 and float64 tensors mixed"),
    (lambda: Tensor(np.ones(2, np.float32)) // Tensor(np.ones(2)), TypeError,
     r"^floor_divide: float32 and float64 tensors mixed"),
])
def test_math_errors_name_the_op(call, error, words):
    with pytest.raises(error, match=words):
        call()


@pytest.mark.parametrize("call,name", [
    (lambda x: x % 0.0, "remainder"), (lambda x: x // 0.0, "floor_divide"),
])
def test_integer_division_ops_are_recorded_under_their_own_names(call, name):
    """`%` is remainder, not floor_divide: the name anomaly checks and messages report."""
    from engine import detect_anomaly
    from engine.autograd import AnomalyError
    with detect_anomaly(), pytest.raises(AnomalyError) as caught:
        call(Tensor([1.0, 2.0]))
    assert caught.value.op == name

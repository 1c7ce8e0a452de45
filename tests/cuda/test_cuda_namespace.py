"""The cuda array namespace (ops/cuda/namespace.py) against numpy: every entry of the
elementwise and reduction tables, broadcasting, views and indexing, creation and dtypes."""

import numpy as np
import pytest

import ops
from ops.cuda import elementwise, reduce

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def xp():
    return ops.get_device("cuda").xp


def dev(a):
    return ops.to_device(np.asarray(a), "cuda")


def host(a):
    return ops.to_host(a)


# name -> (numpy function, input maker); inputs inside each function's domain
_R = np.random.default_rng(0)
_ANY, _POS, _UNIT = _R.standard_normal((3, 5)) * 2, _R.random((3, 5)) + 0.1, _R.random((3, 5)) * 0.9
_SPECIAL = np.array([[1.5, -2.5, 0.5, np.inf], [-np.inf, np.nan, 0.0, -0.0]])
UNARY = {
    "negative": (np.negative, _ANY), "positive": (np.positive, _ANY), "abs": (np.abs, _ANY),
    "exp": (np.exp, _ANY), "expm1": (np.expm1, _ANY), "log": (np.log, _POS),
    "log1p": (np.log1p, _POS), "log2": (np.log2, _POS), "sqrt": (np.sqrt, _POS),
    "square": (np.square, _ANY),
    "tanh": (np.tanh, _ANY), "sin": (np.sin, _ANY), "cos": (np.cos, _ANY),
    "tan": (np.tan, _UNIT), "sinh": (np.sinh, _ANY), "cosh": (np.cosh, _ANY),
    "asin": (np.arcsin, _UNIT), "acos": (np.arccos, _UNIT), "atan": (np.arctan, _ANY),
    "floor": (np.floor, _ANY), "ceil": (np.ceil, _ANY), "trunc": (np.trunc, _ANY),
    "round": (np.round, np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6])),
    "sign": (np.sign, np.array([-2.0, 0.0, 3.0])),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), _ANY),
    "isfinite": (np.isfinite, _SPECIAL), "isnan": (np.isnan, _SPECIAL),
    "isinf": (np.isinf, _SPECIAL), "copy": (np.copy, _ANY),
    "logical_not": (np.logical_not, np.array([True, False])),
    "bitwise_invert": (np.invert, np.array([0, 5, -3])),
    "gelu": (lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))), _ANY),
}
_A, _B = _R.standard_normal((3, 1, 4)) * 2, _R.standard_normal((2, 4)) + 0.5
_IA, _IB = np.array([[7, -7, 5]]), np.array([[2], [-3]])
BINARY = {
    "add": (np.add, _A, _B), "subtract": (np.subtract, _A, _B),
    "multiply": (np.multiply, _A, _B), "divide": (np.divide, _A, _B),
    "floor_divide": (np.floor_divide, _IA, _IB), "remainder": (np.remainder, _IA, _IB),
    "pow": (np.power, np.abs(_A), _B), "maximum": (np.maximum, _A, _B),
    "minimum": (np.minimum, _A, _B), "atan2": (np.arctan2, _A, _B),
    "hypot": (np.hypot, _A, _B), "copysign": (np.copysign, _A, _B),
    "logaddexp": (np.logaddexp, _A, _B), "equal": (np.equal, _IA, _IB),
    "not_equal": (np.not_equal, _A, _B), "less": (np.less, _A, _B),
    "less_equal": (np.less_equal, _IA, _IB), "greater": (np.greater, _A, _B),
    "greater_equal": (np.greater_equal, _A, _B),
    "logical_and": (np.logical_and, _A > 0, _B > 0), "logical_or": (np.logical_or, _A > 0, _B > 0),
    "logical_xor": (np.logical_xor, _A > 0, _B > 0),
    "bitwise_and": (np.bitwise_and, _IA, _IB), "bitwise_or": (np.bitwise_or, _IA, _IB),
    "bitwise_xor": (np.bitwise_xor, _IA, _IB),
    "gelu_backward": (None, _A, _B),
}


@pytest.mark.parametrize("name", list(elementwise.UNARY))
def test_every_unary_function_matches_numpy(xp, name):
    assert name in UNARY, f"add a case for {name!r}"
    fn, x = UNARY[name]
    for a in ([x] if x.dtype.kind != "f" else [x, x.astype(np.float32)]):
        got = host(getattr(xp, name)(dev(a)))
        want = fn(a)
        if name in ("sigmoid", "gelu"):  # numpy spellings with float64 constants
            want = want.astype(a.dtype)
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        tol = 1e-12 if a.dtype == np.float64 else 2e-6
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("name", list(elementwise.BINARY))
def test_every_binary_function_broadcasts_as_numpy(xp, name):
    assert name in BINARY, f"add a case for {name!r}"
    fn, a, b = BINARY[name]
    if fn is None:  # gelu_backward: checked against its reference in test_cuda_kernels.py
        return
    got = host(getattr(xp, name)(dev(a), dev(b)))
    want = fn(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype, (name, got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)


def test_operators_with_python_scalars_keep_the_array_dtype(xp):
    a = np.array([[1.0, -2.0, 3.0]], dtype=np.float32)
    d = dev(a)
    for got, want in [(d + 1.5, a + 1.5), (2.0 - d, 2.0 - a), (d * 3, a * 3), (1 / d, 1 / a),
                      (d ** 2, a ** 2), (-d, -a), (d > 0.5, a > 0.5), (abs(d), abs(a))]:
        assert host(got).dtype == want.dtype
        np.testing.assert_allclose(host(got), want, rtol=1e-6)
    i = dev(np.array([1, 2, 3]))
    assert host(i / 2).dtype == np.float64 and host(i * 2).dtype == np.int64
    assert host((i > 1) & (i < 3)).tolist() == [False, True, False]


@pytest.mark.parametrize("block", [False, True])
@pytest.mark.parametrize("name", ["sum", "prod", "mean", "max", "min", "any", "all",
                                  "argmax", "argmin", "count_nonzero"])
def test_reductions_over_axes_match_numpy(xp, monkeypatch, name, block):
    assert set(reduce.REDUCTIONS) <= {"sum", "prod", "max", "min", "any", "all"}
    if block:
        monkeypatch.setattr(reduce, "BLOCK_MIN_R", 1)
    a = _R.standard_normal((3, 4, 5))
    a[1, 2, :] = 0.0
    axes = [None, 0, -1, 1] if name.startswith("arg") else [None, 0, -1, (0, 2), (1,)]
    for axis in axes:
        for keepdims in (False, True):
            want = getattr(np, name)(a, axis=axis, keepdims=keepdims)
            got = host(getattr(xp, name)(dev(a), axis=axis, keepdims=keepdims))
            assert got.shape == np.shape(want), (name, axis, keepdims)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14,
                                       err_msg=f"{name} {axis} {keepdims}")


def test_max_propagates_nan_and_sums_of_ints_and_bools_are_int64(xp):
    a = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(host(xp.max(dev(a), axis=1)), [np.nan, 3.0])
    assert host(xp.sum(dev(np.array([True, True, False])))) == 2
    assert host(xp.sum(dev(np.array([1, 2])))).dtype == np.int64


def test_views_transposes_and_basic_indexing(xp):
    a = np.arange(24.0).reshape(2, 3, 4)
    d = dev(a)
    for key in [(1,), (slice(None), 2), (Ellipsis, -1), (slice(None, None, -1), None, 1),
                (0, slice(1, 3), slice(None, None, 2)), (slice(5, 9),), (Ellipsis, None)]:
        np.testing.assert_array_equal(host(d[key]), a[key], err_msg=str(key))
    np.testing.assert_array_equal(host(d.T), a.T)
    np.testing.assert_array_equal(host(d.mT), np.swapaxes(a, -1, -2))
    np.testing.assert_array_equal(host(xp.permute_dims(d, (2, 0, 1))), a.transpose(2, 0, 1))
    np.testing.assert_array_equal(host(xp.reshape(d.T, (4, -1))), a.T.reshape(4, -1))
    np.testing.assert_array_equal(host(xp.broadcast_to(d[:, :1, :], (2, 3, 4))),
                                  np.broadcast_to(a[:, :1, :], (2, 3, 4)))
    np.testing.assert_array_equal(host(xp.squeeze(xp.expand_dims(d, axis=1), 1)), a)
    np.testing.assert_array_equal(host(xp.moveaxis(d, 0, -1)), np.moveaxis(a, 0, -1))
    np.testing.assert_array_equal(host(xp.concat([d, d[:1]], axis=0)),
                                  np.concatenate([a, a[:1]]))
    np.testing.assert_array_equal(host(xp.stack([d[0], d[1]], axis=1)), np.stack([a[0], a[1]], 1))
    with pytest.raises(IndexError, match="out of bounds"):
        d[2]
    with pytest.raises(ValueError, match="cannot reshape"):
        xp.reshape(d, (5, 5))


def test_integer_array_indexing_take_and_take_along_axis(xp):
    a = np.arange(24.0).reshape(2, 3, 4)
    d = dev(a)
    i, j = np.array([2, 0, -1, 2]), np.array([[1], [0]])
    np.testing.assert_array_equal(host(d[:, dev(i), :]), a[:, i, :])
    np.testing.assert_array_equal(host(xp.take(d, dev(i), axis=2)), np.take(a, i, axis=2))
    np.testing.assert_array_equal(host(d[dev(j), 1:, dev(i[:3])]), a[j, 1:, i[:3]])
    np.testing.assert_array_equal(host(d[1:, dev(j), dev(i)]), a[1:, j, i])
    np.testing.assert_array_equal(host(d[dev(j), 2, dev(i)]), a[j, 2, i])
    idx = np.array([[[3], [0], [1]], [[2], [2], [0]]])
    np.testing.assert_array_equal(host(xp.take_along_axis(d, dev(idx), axis=-1)),
                                  np.take_along_axis(a, idx, axis=-1))


def test_setitem_and_in_place_operators_write_through_views(xp):
    a = np.zeros((3, 4))
    d = dev(a)
    d[1, :] = 2.0
    d[:, 1:3] = dev(np.array([1.0, 5.0]))
    d[2:, ...] += 1
    v = d[:, ::3]
    v *= 10
    a[1, :] = 2.0
    a[:, 1:3] = [1.0, 5.0]
    a[2:, ...] += 1
    a[:, ::3] *= 10
    np.testing.assert_array_equal(host(d), a)


def test_creation_dtypes_and_casts(xp):
    assert host(xp.zeros((2, 3), dtype=xp.float32)).dtype == np.float32
    np.testing.assert_array_equal(host(xp.ones((2,), dtype=xp.int64)), [1, 1])
    np.testing.assert_array_equal(host(xp.full((2, 2), 7.5)), np.full((2, 2), 7.5))
    np.testing.assert_array_equal(host(xp.arange(2, 11, 3)), np.arange(2, 11, 3))
    np.testing.assert_allclose(host(xp.arange(0.0, 1.0, 0.25, dtype=xp.float32)),
                               np.arange(0.0, 1.0, 0.25, dtype=np.float32))
    x = dev(np.array([-1.7, 0.0, 2.2]))
    np.testing.assert_array_equal(host(xp.astype(x, xp.int64)), [-1, 0, 2])
    np.testing.assert_array_equal(host(xp.astype(x, xp.bool)), [True, False, True])
    np.testing.assert_array_equal(host(xp.where(x > 0, x, 0.0)), [0.0, 0.0, 2.2])
    assert xp.isdtype(xp.float32, "real floating") and xp.isdtype(xp.int64, "integral")
    assert xp.asarray(x) is x and xp.asarray(x, copy=True) is not x
    ops.reset_transfer_stats()
    np.testing.assert_array_equal(host(xp.asarray([[1, 2]])), [[1, 2]])  # host data: counted
    assert ops.transfer_stats()["to_device"]["calls"] == 1
    assert host(xp.asarray(3.5, dtype=xp.float32)).dtype == np.float32  # scalars: made there
    assert ops.transfer_stats()["to_device"]["calls"] == 1


def test_matmul_operator_broadcasts_and_takes_vectors(xp):
    a, b, v = _R.standard_normal((2, 1, 3, 4)), _R.standard_normal((5, 4, 2)), _R.standard_normal(4)
    np.testing.assert_allclose(host(dev(a) @ dev(b)), a @ b, rtol=1e-12)
    np.testing.assert_allclose(host(dev(a) @ dev(v)), a @ v, rtol=1e-12)
    np.testing.assert_allclose(host(dev(v) @ dev(b)), v @ b, rtol=1e-12)


def test_scalar_reads_are_counted_and_host_conversion_is_explicit(xp):
    x = dev(np.array([2.5]))
    ops.reset_transfer_stats()
    assert float(x) == 2.5 and bool(x > 1) and int(xp.astype(x, xp.int64)) == 2
    assert ops.devices.scalar_reads() == {"calls": 3, "bytes": 8 + 1 + 8}
    with pytest.raises(TypeError, match="exactly one element"):
        bool(dev(np.array([1.0, 2.0])))
    with pytest.raises(TypeError, match="not converted to numpy implicitly"):
        np.asarray(x)
    with pytest.raises(ValueError, match=r"add: shapes \(3,\) and \(2,\) cannot be broadcast"):
        dev(np.ones(3)) + dev(np.ones(2))


def test_roll_and_tile_match_numpy(xp):
    a = _R.standard_normal((3, 4))
    d = dev(a)
    for shift, axis in [(1, 0), (-1, 1), (5, None), ((1, 2), (0, 1)), (0, 1), (2, (0, 1))]:
        np.testing.assert_array_equal(host(xp.roll(d, shift, axis=axis)),
                                      np.roll(a, shift, axis=axis), err_msg=str((shift, axis)))
    for reps in [2, (2, 1), (1, 3), (2, 2, 1)]:
        np.testing.assert_array_equal(host(xp.tile(d, reps)), np.tile(a, reps),
                                      err_msg=str(reps))
    np.testing.assert_array_equal(host(xp.tile(dev(np.arange(3)), (2, 2))),
                                  np.tile(np.arange(3), (2, 2)))


def test_scans_flips_eye_and_linspace(xp):
    """The standard functions the library ops call through xp (cumulative sums and products,
    flips), and eye / linspace."""
    a = _R.standard_normal((3, 4))
    d = dev(a)
    np.testing.assert_allclose(host(xp.cumulative_sum(d, axis=1)), np.cumsum(a, 1), rtol=1e-12)
    np.testing.assert_allclose(host(xp.cumulative_prod(d, axis=0, include_initial=True)),
                               np.concatenate([np.ones((1, 4)), np.cumprod(a, 0)]), rtol=1e-12)
    np.testing.assert_array_equal(host(xp.cumulative_sum(dev(np.array([True, True])))), [1, 2])
    np.testing.assert_array_equal(host(xp.flip(d, axis=-1)), np.flip(a, -1))
    np.testing.assert_array_equal(host(xp.flip(d)), np.flip(a))
    np.testing.assert_array_equal(host(xp.eye(3, 4, k=1)), np.eye(3, 4, k=1))
    np.testing.assert_allclose(host(xp.linspace(0, 1, 5)), np.linspace(0, 1, 5), rtol=1e-15)
    np.testing.assert_allclose(host(xp.linspace(2, 3, 4, endpoint=False)),
                               np.linspace(2, 3, 4, endpoint=False), rtol=1e-15)


_NAN_SAFE = [n for n in UNARY if n not in ("logical_not", "bitwise_invert")]


@pytest.mark.parametrize("name", _NAN_SAFE)
def test_nan_and_infinities_propagate_as_in_numpy(xp, name):
    """NaN in, NaN out (and isnan/isfinite/sign say what numpy says); inf where numpy gives
    inf. Python's math (the simulator) raises on inf for the trigonometric functions, so
    those get NaN only."""
    fn = UNARY[name][0]
    special = [np.nan] if name in ("sin", "cos", "tan", "asin", "acos") else \
        [np.nan, np.inf, -np.inf]
    x = np.array(special + [0.0, 1.5])
    if name in ("log", "log1p", "log2", "sqrt", "asin", "acos"):
        x = np.array(special[:2] + [0.0, 0.5])  # inside the domain (and its edge)
    with np.errstate(all="ignore"):
        want = fn(x)
    got = host(getattr(xp, name)(dev(x)))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
    np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name)


def test_sigmoid_of_nan_is_nan_and_of_infinities_0_and_1(xp):
    got = host(xp.sigmoid(dev(np.array([np.nan, np.inf, -np.inf, 0.0]))))
    np.testing.assert_array_equal(got, [np.nan, 1.0, 0.0, 0.5])


@pytest.mark.parametrize("name", ["maximum", "minimum", "add", "multiply", "logaddexp"])
def test_binary_functions_propagate_nan(xp, name):
    a, b = np.array([np.nan, 1.0, np.nan, -np.inf]), np.array([2.0, np.nan, np.nan, 1.0])
    with np.errstate(all="ignore"):
        want = getattr(np, name)(a, b)
    got = host(getattr(xp, name)(dev(a), dev(b)))
    np.testing.assert_array_equal(got, want)

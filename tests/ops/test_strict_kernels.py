"""What only the test-only "strict" device checks (array-api-strict arrays, which refuse
anything outside the array API standard and any conversion to numpy): which device owns an
array, transfers counted in calls and bytes, its hand-built scatter_add, the lazy import.
(Every kernel on it against the numpy reference: test_device_kernels.py.) Also the array
kernels (contiguous, dropout_mask, scatter_add) on the CPU against hand-computed values."""

import subprocess
import sys

import numpy as np
import pytest

import ops
from tests.ops.test_device_kernels import moved, tol

pytest.importorskip("array_api_strict")


@pytest.fixture(scope="module")
def strict():
    return ops.get_device("strict")


def test_strict_arrays_belong_to_the_strict_device_only(strict):
    a = ops.to_device(np.arange(6.0).reshape(2, 3), strict)
    assert ops.device_of(a) is strict and ops.array_namespace(a) is strict.xp
    assert str(a.device) == str(strict.xp.Device("device1"))
    assert strict.implementations() == ("strict", "reference")
    assert ops.kernel("softmax", strict) is ops.kernel("softmax", backend="numpy")
    assert ops.kernel("scatter_add", strict) is not ops.kernel("scatter_add", backend="numpy")
    with pytest.raises(TypeError):  # a strict array on its CPU device is nobody's
        ops.device_of(strict.xp.asarray([1.0]))


def test_transfers_are_counted_in_calls_and_bytes(strict):
    ops.reset_transfer_stats()
    a = ops.to_device(np.zeros((3, 4)), strict)           # 96 bytes in
    assert ops.to_device(a, strict) is a                   # already there: no copy
    back = ops.to_host(a)                                  # 96 bytes out
    ops.to_host(back)                                      # numpy already: no copy
    ops.kernel("dropout_mask", strict)((2, 5), 0.5, "float32", np.random.default_rng(0))
    assert ops.transfer_stats() == {"to_device": {"calls": 2, "bytes": 96 + 40},
                                    "to_host": {"calls": 1, "bytes": 96}}
    ops.reset_transfer_stats()
    assert ops.transfer_stats()["to_device"] == {"calls": 0, "bytes": 0}


def test_kernels_on_strict_move_nothing(strict):
    """A kernel's inputs and outputs stay on the device: no transfer inside it."""
    x = ops.to_device(np.random.default_rng(0).standard_normal((4, 6)), strict)
    t = ops.to_device(np.array([1, -100, 5, 0]), strict)
    ops.reset_transfer_stats()
    loss, lse = ops.kernel("cross_entropy", strict)(x, t, -100)
    ops.kernel("cross_entropy_backward", strict)(x, t, lse, -100, loss * 0.0 + 1.0)
    ops.kernel("layer_norm", strict)(x, x[0, :], x[1, :], 1e-5)
    assert ops.transfer_stats()["to_device"]["calls"] == 0
    assert ops.transfer_stats()["to_host"]["calls"] == 0


@pytest.mark.slow
def test_importing_ops_does_not_import_array_api_strict():
    code = ("import sys, ops; print('array_api_strict' in sys.modules); "
            "ops.get_device('strict'); print('array_api_strict' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.slow
def test_a_missing_array_api_strict_gives_one_clear_error():
    code = ("import sys; sys.modules['array_api_strict'] = None\n"
            "import ops\n"
            "try:\n    ops.get_device('strict')\n"
            "except ops.DeviceError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install array-api-strict" in out and len(out.strip().splitlines()) == 1


# ---- the new array kernels on the CPU ----------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_contiguous(backend):
    contiguous = ops.kernel("contiguous", backend=backend)
    a = np.arange(12.0).reshape(3, 4)
    assert contiguous(a) is a
    t = contiguous(a.T)
    assert t.flags.c_contiguous and not np.shares_memory(t, a)
    np.testing.assert_array_equal(t, a.T)


def _old_dropout(x, p, generator):
    """engine/functions/layers.py DropoutOp.forward's mask, as it was written."""
    keep = generator.random(x.shape, dtype=np.float32 if x.dtype == np.float32
                            else np.float64) >= p
    return (keep / x.dtype.type(1 - p)).astype(x.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.0])
def test_dropout_mask_is_bit_identical_to_the_old_dropout(dtype, p):
    shape = (17, 33)
    old = _old_dropout(np.zeros(shape, dtype), p, np.random.default_rng(5))
    gen = np.random.default_rng(5)
    new = ops.kernel("dropout_mask")(shape, p, dtype, gen)
    assert new.dtype == np.dtype(dtype) and new.shape == shape
    np.testing.assert_array_equal(new.view(np.uint8), old.view(np.uint8))
    # the generator advanced exactly as before: the next draws agree too
    old_gen = np.random.default_rng(5)
    _old_dropout(np.zeros(shape, dtype), p, old_gen)
    assert gen.random() == old_gen.random()


def test_dropout_mask_values_by_hand():
    class Fixed:  # a generator drawing known numbers
        def random(self, shape, dtype):
            return np.array([[0.1, 0.25], [0.26, 0.9]], dtype=dtype).reshape(shape)
    mask = ops.kernel("dropout_mask")((2, 2), 0.25, "float64", Fixed())
    np.testing.assert_array_equal(mask, [[0.0, 1 / 0.75], [1 / 0.75, 1 / 0.75]])


def test_scatter_add_by_hand():
    scatter_add = ops.kernel("scatter_add")
    out = scatter_add((4,), np.array([0, 2, 0, 0]), np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(out, [8.0, 0.0, 2.0, 0.0])
    rows = scatter_add((3, 2), np.array([2, 2]), np.array([[1.0, 2.0], [10.0, 20.0]]), "float32")
    assert rows.dtype == np.float32
    np.testing.assert_array_equal(rows, [[0, 0], [0, 0], [11, 22]])
    pairs = scatter_add((2, 3), (np.array([1, 1, 0]), np.array([2, 2, 0])),
                        np.array([1.0, 2.0, 5.0]), np.dtype(np.float64))
    np.testing.assert_array_equal(pairs, [[5, 0, 0], [0, 0, 3]])
    cols = scatter_add((2, 3), (slice(None), np.array([1, 1])), np.ones((2, 2)))
    np.testing.assert_array_equal(cols, [[0, 2, 0], [0, 2, 0]])


def test_scatter_add_on_strict_follows_numpy_index_rules(strict):
    """The strict form rebuilds numpy's advanced-indexing layout by hand: check it on many
    index forms against np.add.at."""
    shape = (4, 5, 6)
    a1, a2 = np.array([0, 2, 2, 3]), np.array([[1], [0]])
    indices = [a1, (slice(1, 3), np.array([[0, 0], [4, 1]])), (a1, slice(None), a1 + 1),
               (Ellipsis, np.array([5, 5, 0])), (1, np.array([0, 0]), slice(2, 5)),
               (np.array([0, 0]), 2, a2), (slice(None), 1, np.array([3, 3, -1])),
               (np.array([-1, 3]),), (slice(None, None, -1), np.array([1, 1])),
               (0, slice(1, 3)), 2, (None, 0, Ellipsis, slice(1, 3)), (np.int64(2), a1),
               (a2, Ellipsis, np.array([0, 0]))]
    rng = np.random.default_rng(0)
    for index in indices:
        values = rng.standard_normal(np.zeros(shape)[index].shape)
        want = ops.kernel("scatter_add")(shape, index, values)
        got = ops.kernel("scatter_add", strict)(shape, moved(index, "strict"),
                                                moved(values, "strict"), "float64")
        np.testing.assert_allclose(ops.to_host(got), want, **tol("strict", "float64"),
                                   err_msg=repr(index))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_cross_entropy_backward_takes_grad_as_a_0d_array(backend):
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        logits = rng.standard_normal((5, 7)).astype(dtype)
        targets = np.array([1, -100, 6, 0, 2])
        fwd, bwd = (ops.kernel(n, backend=backend) for n in ("cross_entropy",
                                                             "cross_entropy_backward"))
        _, lse = fwd(logits, targets, -100)
        as_float = bwd(logits, targets, lse, -100, 0.3)
        np.testing.assert_array_equal(bwd(logits, targets, lse, -100, np.asarray(0.3)), as_float)
        grad32 = np.asarray(0.3, np.float32)
        np.testing.assert_array_equal(bwd(logits, targets, lse, -100, grad32),
                                      bwd(logits, targets, lse, -100, float(grad32)))

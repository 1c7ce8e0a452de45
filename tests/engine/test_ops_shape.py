"""Shape ops: forward against numpy, gradients against finite differences (float64) on every
device, PyTorch aliases, and errors naming the op and the shapes."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor


def _same(t, expected):
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_stack(on, rng, check, axis):
    xs = [on.rand(rng, 2, 3) for _ in range(3)]
    _same(F.stack(xs, axis=axis), np.stack([on.host(x) for x in xs], axis=axis))
    check(lambda *ts: F.stack(ts, axis=axis), *xs)


@pytest.mark.parametrize("shape,axis", [((2, 3), 0), ((2, 3), -1), ((2, 3), 2), ((), 0),
                                        ((1, 3), (0, 2))])
def test_unsqueeze_expand_dims_squeeze(on, rng, check, shape, axis):
    x = on.rand(rng, *shape)
    expected = np.expand_dims(on.host(x), axis)
    _same(F.expand_dims(x, axis), expected)
    if isinstance(axis, int):
        _same(x.unsqueeze(axis), expected)
    check(lambda a: F.unsqueeze(a, axis) * 2.0, x)
    _same(F.squeeze(F.expand_dims(x, axis), axis), on.host(x))


def test_squeeze(on, rng, check):
    x = on.rand(rng, 1, 3, 1, 2)
    _same(x.squeeze(), np.squeeze(on.host(x)))
    _same(F.squeeze(x, 2), np.squeeze(on.host(x), 2))
    _same(F.squeeze(x, (0, -2)), np.squeeze(on.host(x), (0, 2)))
    check(lambda a: a.squeeze(), x)


def test_flatten(on, rng, check):
    x = on.rand(rng, 2, 3, 4)
    assert x.flatten().shape == (24,) and F.flatten(x, 1).shape == (2, 12)
    assert F.flatten(x, 0, 1).shape == (6, 4)
    check(lambda a: F.flatten(a, 1), x)


@pytest.mark.parametrize("shape,target", [((3,), (2, 3)), ((1, 3), (4, 3)), ((2, 1), (2, 5)),
                                          ((), (2, 2)), ((2, 1, 3), (2, 4, 3))])
def test_broadcast_to_and_expand(on, rng, check, shape, target):
    x = on.rand(rng, *shape)
    _same(F.broadcast_to(x, target), np.broadcast_to(on.host(x), target))
    check(lambda a: F.broadcast_to(a, target), x)
    if shape:
        keep = (-1,) * len(shape)
        torch_style = target[:len(target) - len(shape)] + keep
        _same(x.expand(*torch_style), np.broadcast_to(on.host(x), target[:-len(shape)] + shape))


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_flip(on, rng, check, axis):
    x = on.rand(rng, 2, 3)
    _same(F.flip(x, axis), np.flip(on.host(x), axis))
    check(lambda a: F.flip(a, axis), x)


@pytest.mark.parametrize("shift,axis", [(1, None), (2, 1), (-1, 0), ((1, 2), (0, 1))])
def test_roll(on, rng, check, shift, axis):
    x = on.rand(rng, 2, 3)
    _same(F.roll(x, shift, axis), np.roll(on.host(x), shift, axis))
    check(lambda a: F.roll(a, shift, axis), x)


@pytest.mark.parametrize("k", [0, 1, -1])
@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 4), (4, 2)])
def test_tril_triu(on, rng, check, k, shape):
    x = on.rand(rng, *shape)
    _same(F.tril(x, k), np.tril(on.host(x), k))
    _same(x.triu(k), np.triu(on.host(x), k))
    check(lambda a: F.tril(a, k), x)
    check(lambda a: F.triu(a, k), x)


@pytest.mark.parametrize("width", [1, (1, 2), ((0, 1), (2, 0)), ((0, 0), (0, 0))])
def test_pad(on, rng, check, width):
    x = on.rand(rng, 2, 3)
    _same(F.pad(x, width, constant_values=-1.5),
          np.pad(on.host(x), width, constant_values=-1.5))
    check(lambda a: F.pad(a, width), x)


@pytest.mark.parametrize("shape,reps", [((2, 3), (2, 1)), ((3,), (2, 2)), ((2, 1), 3),
                                        ((1, 2), (1, 2, 2))])
def test_tile_and_repeat(on, rng, check, shape, reps):
    x = on.rand(rng, *shape)
    _same(F.tile(x, reps), np.tile(on.host(x), reps))
    check(lambda a: F.tile(a, reps), x)
    sizes = (reps,) if isinstance(reps, int) else reps
    _same(x.repeat(*sizes), np.tile(on.host(x), reps))  # PyTorch's repeat is numpy's tile


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_take_along_axis_scatter_add(on, rng, check, axis):
    x = on.rand(rng, 3, 4)
    shape = list(x.shape)
    shape[axis] = 5  # more picks than positions: repeats accumulate in the backward
    idx = rng.integers(0, x.shape[axis], size=shape)
    _same(F.take_along_axis(x, on.const(idx), axis),
          np.take_along_axis(on.host(x), idx, axis))
    _same(x.gather(axis, on.const(idx)), np.take_along_axis(on.host(x), idx, axis))
    check(lambda a: F.take_along_axis(a, on.const(idx), axis), x)
    src = on.rand(rng, *shape)
    expected = on.host(x).copy()
    np.add.at(expected, tuple(idx if d == axis % 2 else
                              np.arange(n).reshape([-1 if e == d else 1 for e in range(2)])
                              for d, n in enumerate(shape)), on.host(src))
    _same(F.scatter_add(x, axis, on.const(idx), src), expected)
    check(lambda a, s: F.scatter_add(a, axis, on.const(idx), s), x, src)


def test_one_hot(on):
    idx = on.const(np.array([[0, 2], [1, 1]]))
    y = F.one_hot(idx, 3)
    np.testing.assert_array_equal(y.numpy(), np.eye(3, dtype=np.int64)[[[0, 2], [1, 1]]])
    assert y.numpy().dtype == np.int64
    assert F.one_hot(idx, 4, dtype="float32").numpy().dtype == np.float32


def test_concatenate_is_concat(on, rng, check):
    a, b = on.rand(rng, 2, 1), on.rand(rng, 2, 3)
    _same(F.concatenate([a, b], axis=1), np.concatenate([on.host(a), on.host(b)], axis=1))
    check(lambda a, b: F.concatenate([a, b], axis=-1), a, b)


@pytest.mark.parametrize("call,error,words", [
    (lambda x: F.stack([x, x[:1]]), ValueError, (r"stack: tensors must have one shape, got "
                                                r"\(2, 3\), \(1, 3\)")),
    (lambda x: F.stack([x], axis=3), ValueError, (r"stack: axis 3 is out of range for a tensor "
                                                 r"of shape \(2, 3\)")),
    (lambda x: F.unsqueeze(x, 4), ValueError, r"expand_dims: axis 4 is out of range"),
    (lambda x: F.squeeze(x, 0), ValueError, (r"squeeze: axis 0 of a tensor of shape \(2, 3\) "
                                            r"is not of size 1")),
    (lambda x: F.broadcast_to(x, (3, 3)), ValueError, (r"broadcast_to: shape \(2, 3\) does not "
                                                      r"broadcast to \(3, 3\)")),
    (lambda x: F.flip(x, 2), ValueError, r"flip: axis 2 is out of range"),
    (lambda x: F.tril(x[0]), ValueError, r"tril: needs at least 2 dimensions, got shape \(3,\)"),
    (lambda x: F.pad(x, ((1, 1),) * 3), ValueError, r"pad: pad_width"),
    (lambda x: F.gather(x, 1, Tensor(np.zeros((2, 3)))), TypeError,
     r"gather: indices must be integers, got float"),
    (lambda x: F.gather(x, 1, Tensor(np.zeros((3, 3), np.int64))), ValueError,
     r"gather: indices \(3, 3\) must match the tensor's shape \(2, 3\) except along axis 1"),
    (lambda x: F.take_along_axis(x, Tensor(np.full((2, 1), 3)), 1), IndexError,
     r"take_along_axis: an index is out of range for axis 1 of size 3"),
    (lambda x: F.one_hot(Tensor([0, 3]), 3), IndexError, r"one_hot: an index is out of range"),
    (lambda x: F.flatten(x, 1, 0), ValueError, r"flatten: start_axis 1 comes after end_axis 0"),
])
def test_shape_errors_name_the_op(call, error, words):
    with pytest.raises(error, match=words):
        call(Tensor(np.zeros((2, 3))))

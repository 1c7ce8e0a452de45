"""Autodiff machinery: graph walk order, deep chains, accumulation, modes, retain_graph,
diamonds and scatter-add through integer indexing."""

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor, enable_grad, is_grad_enabled, no_grad
from engine.autograd import topological_order


def _param(*shape, dtype=np.float64, seed=0):
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return Tensor(data, requires_grad=True)


@pytest.mark.slow
def test_deep_chain_of_100000_ops_backpropagates():
    x = Tensor(np.array([1.0], np.float32), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0  # each step: one add node; recursion would need 100,000 frames
    assert y.item() == 100_001.0
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.0])


@pytest.mark.slow
def test_deep_chain_gradient_is_the_product_of_local_derivatives():
    x = Tensor(np.array([0.5]), requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0001  # d y / d x = 1.0001 ** 20000
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 20_000], rtol=1e-9)


def test_topological_order_puts_parents_first_and_is_deterministic():
    a, b = _param(3), _param(3, seed=1)
    c = a * b
    d = c + a
    e = (d * c).sum()
    order = topological_order(e)
    assert [n._op.name for n in order] == ["mul", "add", "mul", "sum"]
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        for parent in node._prev:
            if parent._prev:
                assert position[id(parent)] < position[id(node)]
    assert [id(n) for n in topological_order(e)] == [id(n) for n in order]


def test_gradients_accumulate_across_backward_calls():
    x = _param(2, 3)
    w = np.arange(6.0).reshape(2, 3)
    (x * w).sum().backward()
    (x * w).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * w)
    x.zero_grad()
    assert x.grad is None
    (x * w).sum().backward()
    np.testing.assert_array_equal(x.grad, w)


def test_leaf_used_twice_in_one_op_gets_both_contributions():
    x = Tensor(np.array([3.0, -2.0]), requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, -4.0])


def test_diamond_graph_reusing_a_node():
    # y = a*b is used by both branches: dL/dy sums the two paths before flowing to a and b.
    a = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([5.0, -1.0]), requires_grad=True)
    y = a * b
    loss = (y.exp() + y * y).sum()  # dL/dy = exp(y) + 2y
    loss.backward()
    yv = np.array([10.0, -3.0])
    dy = np.exp(yv) + 2 * yv
    np.testing.assert_allclose(a.grad, dy * b.data, rtol=1e-12)
    np.testing.assert_allclose(b.grad, dy * a.data, rtol=1e-12)


def test_getitem_with_repeated_integer_indices_scatter_adds():
    x = Tensor(np.arange(5.0), requires_grad=True)
    idx = np.array([0, 3, 3, 1, 3])
    w = np.array([1.0, 10.0, 100.0, 1000.0, 10000.0])
    (x[idx] * w).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1000.0, 0.0, 10110.0, 0.0])


def test_getitem_2d_integer_arrays_with_duplicates():
    x = Tensor(np.zeros((3, 4)), requires_grad=True)
    rows, cols = np.array([[0, 0], [2, 0]]), np.array([[1, 1], [3, 1]])
    x[rows, cols].sum().backward()
    want = np.zeros((3, 4))
    want[0, 1], want[2, 3] = 3.0, 1.0
    np.testing.assert_array_equal(x.grad, want)


def test_no_grad_builds_no_graph_and_enable_grad_turns_it_back_on():
    x = _param(3)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2.0
        with enable_grad():
            z = x * 3.0
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    assert z.requires_grad and z.grad_fn == "mul"
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), no_grad():
        raise ZeroDivisionError
    assert is_grad_enabled()


def test_constants_only_give_no_graph():
    y = Tensor([1.0, 2.0]) * 3.0
    assert not y.requires_grad and y._prev == ()


def test_backward_frees_saved_buffers_and_a_second_backward_raises():
    x = _param(4)
    y = (x.exp() * x).sum()
    y.backward()
    first = x.grad.copy()
    with pytest.raises(RuntimeError, match=r"freed \(op .*\).*retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad, first)  # the failed call changed nothing it reached


def test_retain_graph_allows_a_second_backward():
    x = _param(4)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    want = np.exp(x.data) * (x.data + 1)
    np.testing.assert_allclose(x.grad, 2 * want, rtol=1e-12)


def test_non_scalar_backward_needs_an_explicit_gradient():
    x = _param(2, 3)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\).*explicit gradient"):
        y.backward()
    g = np.arange(6.0).reshape(2, 3)
    y.backward(g)
    np.testing.assert_array_equal(x.grad, 2 * g)


def test_backward_gradient_of_the_wrong_shape_is_refused():
    y = _param(2, 3) * 2.0
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        y.backward(np.ones((3, 2)))


def test_backward_on_a_leaf_fills_its_own_grad():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    assert x.grad.dtype == np.float32


def test_only_inputs_that_require_grad_get_gradients():
    x, c = _param(3), Tensor(np.ones(3))
    (x * c).sum().backward()
    assert c.grad is None and x.grad is not None


def test_intermediate_tensors_do_not_keep_grad():
    x = _param(3)
    h = x * 2.0
    (h * h).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(x.grad, 8 * x.data, rtol=1e-12)


def test_max_splits_the_gradient_evenly_between_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


def test_relu_gradient_at_zero_is_zero():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


def test_split_pieces_backpropagate_into_their_slices():
    x = Tensor(np.zeros((2, 6)), requires_grad=True)
    a, b, c = F.split(x, 3, axis=1)
    (a * 1.0 + b * 2.0).sum().backward()  # c unused: its slice gets no gradient
    np.testing.assert_array_equal(x.grad, [[1, 1, 2, 2, 0, 0]] * 2)
    assert c.shape == (2, 2)


def test_masked_fill_blocks_the_gradient_where_masked():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    mask = np.array([[True, False, False], [False, False, True]])
    (F.masked_fill(x, mask, 0.0) * 5.0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.where(mask, 0.0, 5.0))


def test_pow_zero_has_zero_gradient_even_at_zero():
    x = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** 0 + x ** 1).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])

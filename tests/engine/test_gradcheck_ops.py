"""Every differentiable op against float64 finite differences (engine.gradcheck), over shapes
with broadcasting and size-1 dims, on both CPU backends and on the strict device (array-api-
strict arrays that refuse anything outside the standard, including any numpy); then the heavy
ops' float32 results compared between the numpy and numba backends. (The `attn gradcheck`
table runs as tests too: test_gradcheck_table.py.)"""

import numpy as np
import pytest

import engine.functional as F
import ops
from engine import Tensor


@pytest.mark.parametrize("name", ["matmul", "softmax", "layer_norm", "attention"])
def test_the_backend_fixture_switches_kernels(backend, name):
    assert ops.get_backend() == backend
    reference = ops.kernel(name, backend="numpy")
    fast = "cpu" in ops.implementations(name) and backend == "numba"
    assert (ops.kernel(name) is not reference) == fast


# ---- elementwise and broadcasting -----------------------------------------------------------
BROADCAST = [((3, 4), (3, 4)), ((), (4,)), ((3, 4), (4,)), ((3, 4), (1, 4)),
             ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((1,), (2, 3))]
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}


@pytest.mark.parametrize("sa,sb", BROADCAST)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_ops(on, rng, check, op, sa, sb):
    b = on.rand(rng, *sb, positive=op == "div")
    check(BINARY[op], on.rand(rng, *sa), b)


@pytest.mark.parametrize("shape", [(), (1,), (5,), (2, 1, 3)])
def test_unary_ops(on, rng, check, shape):
    check(lambda a: -a, on.rand(rng, *shape))
    check(F.exp, on.rand(rng, *shape))
    check(F.log, on.rand(rng, *shape, positive=True))
    check(F.sqrt, on.rand(rng, *shape, positive=True))
    check(F.tanh, on.rand(rng, *shape))
    check(F.relu, on.rand(rng, *shape, away_from_zero=True))
    check(F.sigmoid, on.rand(rng, *shape))
    check(F.gelu, on.rand(rng, *shape))
    check(lambda a: a.double() * a, on.rand(rng, *shape))  # cast (a no-op here) keeps the graph


@pytest.mark.parametrize("exponent", [2, 3, -1, 0.5, -1.5, 1])
def test_pow(on, rng, check, exponent):
    check(lambda a: a ** exponent, on.rand(rng, 2, 3, positive=True))


def test_pow_integer_exponent_of_negative_numbers(on, rng, check):
    check(lambda a: a ** 3, on.rand(rng, 4, away_from_zero=True))


def test_scalars_mixed_in(on, rng, check):
    check(lambda a: (2.0 - a) * 3.0 / (a * a + 1.0), on.rand(rng, 3, 1))
    check(lambda a: 1.0 / a, on.rand(rng, 2, 2, positive=True))


# ---- reductions ------------------------------------------------------------------------------
REDUCE = [((2, 3, 4), None), ((2, 3, 4), 1), ((2, 3, 4), -1), ((2, 3, 4), (0, 2)),
          ((1, 3), 0), ((5,), 0), ((), None)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape,axis", REDUCE)
def test_reductions(on, rng, check, shape, axis, keepdims):
    for fn in (F.sum, F.mean, F.max):  # standard normals: no ties for max
        check(lambda a, fn=fn: fn(a, axis=axis, keepdims=keepdims), on.rand(rng, *shape))


# ---- shapes and indexing ---------------------------------------------------------------------
def test_reshape_permute_transpose(on, rng, check):
    check(lambda a: a.reshape(3, 4) * 2.0, on.rand(rng, 2, 6))
    check(lambda a: a.reshape(-1), on.rand(rng, 2, 1, 3))
    check(lambda a: a.permute(2, 0, 1), on.rand(rng, 2, 3, 4))
    check(lambda a: a.transpose(-1, 0), on.rand(rng, 2, 1, 3))
    check(lambda a: a.T, on.rand(rng, 3, 2))


@pytest.mark.parametrize("index", [1, (slice(None), 0), (Ellipsis, slice(1, None, 2)),
                                   np.array([2, 0, 2, 2]), (np.array([0, 1, 1]), 2),
                                   (slice(None), None, np.array([[3, 3], [0, 1]]))])
def test_getitem(on, rng, check, index):
    if on.device == "strict" and isinstance(index, tuple) and any(i is None for i in index):
        pytest.skip("an integer array beside None is numpy-only indexing (not in the standard)")
    check(lambda a: a[index], on.rand(rng, 3, 4))


def test_getitem_boolean_mask(on, rng, check):
    if on.device == "strict":
        pytest.skip("the strict device has no scatter-add for boolean masks (forward works)")
    mask = on.const(np.array([[True, False, True], [False, False, True]]))
    check(lambda a: a[mask] * 3.0, on.rand(rng, 2, 3))


@pytest.mark.parametrize("axis,shapes", [(0, [(1, 3), (2, 3)]), (1, [(2, 1), (2, 3), (2, 2)]),
                                         (-1, [(2, 1, 2), (2, 1, 1)])])
def test_concat_and_split(on, rng, check, axis, shapes):
    check(lambda *xs: F.concat(xs, axis=axis), *[on.rand(rng, *s) for s in shapes])


@pytest.mark.parametrize("sizes,axis", [(3, -1), ([1, 3, 2], 1), ([2, 1], 0)])
def test_split(on, rng, check, sizes, axis):
    weights = [1.0, -2.0, 0.5]
    check(lambda a: F.concat([p * w for p, w in zip(F.split(a, sizes, axis=axis), weights)],
                              axis=axis), on.rand(rng, 3, 6))


@pytest.mark.parametrize("sc,sa,sb", [((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), (2, 1)),
                                      ((1, 3), (2, 1), ())])
def test_where_and_masked_fill(on, rng, check, sc, sa, sb):
    cond = on.const(rng.random(sc) > 0.5)
    check(lambda a, b: F.where(cond, a, b), on.rand(rng, *sa), on.rand(rng, *sb))
    check(lambda a: F.masked_fill(a, cond, -2.0), on.rand(rng, 2, 3))


# ---- layers (kernels through ops.kernel) ------------------------------------------------------
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((1, 4), (4, 1)), ((2, 3, 4), (4, 5)),
                                   ((2, 3, 4), (2, 4, 5)), ((3, 4), (2, 4, 2)),
                                   ((2, 1, 3, 2), (3, 2, 1))])
def test_matmul(on, rng, check, sa, sb):
    check(F.matmul, on.rand(rng, *sa), on.rand(rng, *sb))


@pytest.mark.parametrize("xs", [(4, 3), (2, 3, 3), (3,), (1, 3)])
def test_linear(on, rng, check, xs):
    check(F.linear, on.rand(rng, *xs), on.rand(rng, 2, 3), on.rand(rng, 2))
    check(F.linear, on.rand(rng, *xs), on.rand(rng, 1, 3))


@pytest.mark.parametrize("shape,axis", [((3, 5), -1), ((2, 3, 4), 1), ((4,), 0), ((3, 1), -1),
                                        ((2, 3), 0)])
def test_softmax_and_log_softmax(on, rng, check, shape, axis):
    check(lambda a: F.softmax(a, axis=axis), on.rand(rng, *shape))
    check(lambda a: F.log_softmax(a, axis=axis), on.rand(rng, *shape))


@pytest.mark.parametrize("targets", [[0, 4, 2], [1, -100, 3], [2]])
def test_cross_entropy(on, rng, check, targets):
    t = on.const(np.array(targets))
    check(lambda z: F.cross_entropy(z, t) * 1.7, on.rand(rng, len(targets), 5))


def test_cross_entropy_all_rows_ignored_gives_zero_gradient(on, rng, check):
    z = on.rand(rng, 2, 3)
    check(lambda z: F.cross_entropy(z, on.const([-1, -1]), ignore_index=-1), z)
    np.testing.assert_array_equal(on.host(z.grad), np.zeros((2, 3)))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 5), (1, 1, 2), (4, 1)])
def test_layer_norm(on, rng, check, shape):
    c = shape[-1]
    check(F.layer_norm, on.rand(rng, *shape), on.rand(rng, c), on.rand(rng, c))
    check(lambda x: F.layer_norm(x), on.rand(rng, *shape))


@pytest.mark.parametrize("idx", [np.array([0, 3, 3, 1]), np.array([[2, 2], [0, 2]]),
                                 np.array(1)])
def test_embedding(on, rng, check, idx):
    idx = on.const(idx)
    check(lambda w: F.embedding(idx, w), on.rand(rng, 4, 3))


def test_dropout_with_a_fixed_mask(on, rng, check):
    check(lambda a: F.dropout(a, 0.4, generator=np.random.default_rng(5)), on.rand(rng, 4, 5))
    x = on.rand(rng, 3)
    assert F.dropout(x, 0.5, training=False) is x


ATTENTION = [  # q, k, v shapes (B, H, T, D), then causal and scale
    ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 2), False, None),
    ((2, 1, 2, 3), (2, 1, 4, 3), (2, 1, 4, 3), True, None),
    ((1, 1, 4, 2), (1, 1, 4, 2), (1, 1, 4, 3), True, 0.7),
    ((1, 2, 1, 3), (1, 2, 5, 3), (1, 2, 5, 2), True, None)]


@pytest.mark.parametrize("case", ATTENTION)
def test_scaled_dot_product_attention(on, rng, check, case):
    sq, sk, sv, causal, scale = case
    q, k, v = on.rand(rng, *sq), on.rand(rng, *sk), on.rand(rng, *sv)
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=causal, scale=scale),
           q, k, v)
    check(lambda q, k: F.attention_weights(q, k, causal=causal, scale=scale), q, k)


@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_attention_with_a_mask(on, rng, check, kind):
    q, k, v = on.rand(rng, 2, 1, 3, 2), on.rand(rng, 2, 1, 4, 2), on.rand(rng, 2, 1, 4, 3)
    allowed = rng.random((2, 1, 3, 4)) > 0.3
    allowed[..., 0] = True  # every query sees at least one key
    mask = on.const(allowed if kind == "bool" else
                    np.where(allowed, rng.standard_normal(allowed.shape), -np.inf))
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask), q, k, v)
    check(lambda q, k: F.attention_weights(q, k, mask=mask), q, k)


def test_attention_fully_masked_row_has_zero_output_and_gradient(on, rng, check):
    q, k, v = on.rand(rng, 1, 1, 2, 2), on.rand(rng, 1, 1, 3, 2), on.rand(rng, 1, 1, 3, 2)
    mask = on.const(np.array([[True, False, True], [False, False, False]]))
    out = F.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_array_equal(on.host(out)[0, 0, 1], [0.0, 0.0])
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask), q, k, v)
    np.testing.assert_array_equal(on.host(q.grad)[0, 0, 1], [0.0, 0.0])


def test_kernels_fed_non_contiguous_views(on, rng, check):
    check(lambda a, b: F.matmul(a.T, b.permute(1, 0)), on.rand(rng, 3, 2), on.rand(rng, 4, 3))
    check(lambda a: F.softmax(a.permute(1, 0, 2)), on.rand(rng, 2, 3, 4))
    check(lambda a, w, b: F.layer_norm(a.T, w, b), on.rand(rng, 3, 4), on.rand(rng, 3),
          on.rand(rng, 3))
    check(lambda a: F.gelu(a[:, ::2]), on.rand(rng, 3, 5))
    # heads split the way a model does it: (B, T, H, D) -> (B, H, T, D)
    check(lambda q, k, v: F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=True),
        on.rand(rng, 1, 3, 2, 2), on.rand(rng, 1, 3, 2, 2), on.rand(rng, 1, 3, 2, 2))


def test_a_small_mlp_loss(on, rng, check):
    x, t = on.const(rng.standard_normal((4, 3))), on.const(np.array([0, 2, 1, 2]))
    w1, b1, w2, b2 = on.rand(rng, 5, 3), on.rand(rng, 5), on.rand(rng, 3, 5), on.rand(rng, 3)

    def loss(w1, b1, w2, b2):
        h = F.layer_norm(F.linear(x, w1, b1)).gelu()
        return F.cross_entropy(F.linear(h, w2, b2), t)

    check(loss, w1, b1, w2, b2)


# ---- float32: numba backend against the numpy backend -----------------------------------------
def _both_backends(fn, *arrays):
    """fn's output and input gradients (for a fixed random projection) on each backend."""
    results = []
    for name in ("numpy", "numba"):
        with ops.use_backend(name):
            inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
            out = fn(*inputs)
            w = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
            (out * w).sum().backward()
            results.append([out.data] + [t.grad for t in inputs])
    return results


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


HEAVY = {
    "matmul": (F.matmul, [(17, 63), (63, 65)]),
    "matmul_batched": (F.matmul, [(2, 3, 17), (2, 17, 5)]),
    "matmul_past_cache_blocks": (F.matmul, [(130, 300), (300, 40)]),  # M > MC, K > KC
    "softmax_threaded": (F.softmax, [(257, 1024)]),  # >= 2^18 elements: the prange path
    "layer_norm_threaded": (F.layer_norm, [(256, 1025), (1025,), (1025,)]),
    "linear": (F.linear, [(3, 17, 65), (33, 65), (33,)]),
    "softmax": (F.softmax, [(5, 65)]),
    "log_softmax": (F.log_softmax, [(3, 17)]),
    "layer_norm": (F.layer_norm, [(4, 63), (63,), (63,)]),
    "gelu": (F.gelu, [(3, 65)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, np.arange(17) % 11), [(17, 11)]),
    "embedding": (lambda w: F.embedding(np.array([[1, 1], [6, 0]]), w), [(7, 17)]),
    "attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=True),
                  [(2, 2, 17, 8), (2, 2, 17, 8), (2, 2, 17, 8)]),
    "attention_cross": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=True),
                        [(1, 2, 5, 4), (1, 2, 65, 4), (1, 2, 65, 3)]),
}


@pytest.mark.parametrize("name", sorted(HEAVY))
def test_numba_backend_matches_numpy_backend_in_float32(rng, name, monkeypatch):
    monkeypatch.setattr("ops.attention_cpu.BLOCK_Q", 8)  # several tiles, ragged last ones
    monkeypatch.setattr("ops.attention_cpu.BLOCK_K", 16)
    fn, shapes = HEAVY[name]
    ref, got = _both_backends(fn, *[_f32(rng, *s) for s in shapes])
    for r, g in zip(ref, got):
        assert g.dtype == np.float32 and g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(r).max()))

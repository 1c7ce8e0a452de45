"""Every kernel's cuda form against its numpy reference on the CPU, in float32 and float64,
at sizes that are and are not multiples of the tiles (ops/cuda/launch.py and matmul.py
constants; the `small_tiles` runs shrink them), with size-1 dimensions; results stay on the
device and no kernel moves data."""

import numpy as np
import pytest

import ops
from ops.cuda import launch, reduce
from tests.ops.test_strict_kernels import _attention_qkv_backward

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


def _x(r, *shape):
    return r.standard_normal(shape)


def _attention(causal, tq, tk, mask=None, d=4):
    def make(r):
        m = mask(tq, tk) if mask else None
        return _x(r, 2, 3, tq, d), _x(r, 2, 3, tk, d), _x(r, 2, 3, tk, d + 1), causal, 0.5, m
    return make


def _attention_backward(*spec):
    def make(r):
        q, k, v, causal, scale, mask = _attention(*spec)(r)
        o, lse = ops.kernel("attention", backend="numpy")(q, k, v, causal, scale, mask)
        return _x(r, *o.shape), q, k, v, o, lse, causal, scale, mask
    return make


def _mask_with_a_dead_row(tq, tk):
    """Additive (1, 1, Tq, Tk) mask: -1 here and there, row 1 fully masked."""
    mask = np.where(np.arange(tq * tk).reshape(1, 1, tq, tk) % 3 == 0, -1.0, 0.0)
    mask[..., 1, :] = -np.inf
    return mask


def _head_mask(tq, tk):
    """(1, 3, 1, Tk): broadcast over batch and queries, one row of keys per head."""
    return np.where(np.arange(3 * tk).reshape(1, 3, 1, tk) % 4 == 1, -2.0, 0.5)


ATTENTION = [(False, 4, 4), (True, 4, 4), (True, 3, 6), (True, 6, 3), (True, 2, 0),
             (True, 9, 9), (False, 1, 1, None, 1), (False, 4, 5, _mask_with_a_dead_row),
             (True, 3, 5, _mask_with_a_dead_row), (True, 5, 7, _head_mask)]
TARGETS = [np.array([1, 0, -100, 4, 2, -100]), np.array([3, 1, 4, 1, 0, 2]), np.full(6, -100)]


def _cross_entropy_backward(targets, grad):
    def make(r):
        logits = _x(r, 6, 5) * 3
        _, lse = ops.kernel("cross_entropy", backend="numpy")(logits, targets, -100)
        return logits, targets, lse, -100, grad(r) if callable(grad) else grad
    return make


def _layer_norm_backward(*shape):
    def make(r):
        x, w, b = _x(r, *shape), _x(r, shape[-1]), _x(r, shape[-1])
        _, mean, rstd = ops.kernel("layer_norm", backend="numpy")(x, w, b, 1e-5)
        return _x(r, *shape), x, w, mean, rstd
    return make


def _adamw(r):
    return _x(r, 3, 5), _x(r, 3, 5), _x(r, 3, 5), np.abs(_x(r, 3, 5)), 1e-2, 0.9, 0.99, 1e-8, \
        0.1, 3


def _mm(shape_a, shape_b):
    return lambda r: (_x(r, *shape_a), _x(r, *shape_b))


def _rows(*shape, scale=3.0):
    return lambda r: (_x(r, *shape) * scale,)


def _row_grads(kernel, *shape):
    return lambda r: (ops.kernel(kernel, backend="numpy")(_x(r, *shape) * 3), _x(r, *shape))


# kernel name -> functions making its arguments (numpy, float64) from a seeded generator.
# matmul sizes: the simulator's tile is 8 x 8 x 8 (small_tiles: 4 x 4 x 2).
CASES = {
    "matmul": [_mm((8, 8), (8, 16)), _mm((5, 7), (7, 9)), _mm((1, 1), (1, 1)),
               _mm((3, 5, 7), (3, 7, 9)), _mm((2, 1, 3), (2, 3, 1))],
    "matmul_nt": [_mm((8, 8), (16, 8)), _mm((5, 7), (9, 7)), _mm((6, 5, 7), (6, 9, 7))],
    "linear": [lambda r: (_x(r, 5, 7), _x(r, 9, 7), _x(r, 9)),
               lambda r: (_x(r, 5, 7), _x(r, 9, 7), None)],
    "sum_rows": [_rows(7, 3), _rows(1, 5)],
    "matmul_tn": [_mm((8, 8), (8, 16)), _mm((7, 5), (7, 9)), _mm((3, 7, 1), (3, 7, 9))],
    "softmax": [_rows(3, 4, 8), _rows(2, 7), _rows(1, 1), _rows(2, 13),
                lambda r: (np.where(_x(r, 3, 6) > 0.5, -np.inf, _x(r, 3, 6)),)],
    "softmax_backward": [_row_grads("softmax", 3, 8), _row_grads("softmax", 2, 13)],
    "log_softmax": [_rows(3, 4, 8), _rows(2, 7), _rows(1, 1), _rows(2, 13)],
    "log_softmax_backward": [_row_grads("log_softmax", 3, 8),
                             _row_grads("log_softmax", 2, 13)],
    "gelu": [_rows(3, 9, scale=4.0), _rows(1)],
    "gelu_backward": [lambda r: (_x(r, 3, 9) * 4, _x(r, 3, 9))],
    "layer_norm": [lambda r: (_x(r, 2, 3, 8) * 2 + 1, _x(r, 8), _x(r, 8), 1e-5),
                   lambda r: (_x(r, 5, 13), _x(r, 13), _x(r, 13), 1e-5),
                   lambda r: (_x(r, 3, 1), _x(r, 1), _x(r, 1), 1e-5)],
    "layer_norm_backward": [_layer_norm_backward(2, 3, 8), _layer_norm_backward(9, 5)],
    "attention": [_attention(*spec) for spec in ATTENTION],
    "attention_backward": [_attention_backward(*spec) for spec in ATTENTION],
    "attention_qkv": [(lambda r, c=c: (_x(r, 2, 5, 12), 2, c, 0.5)) for c in (False, True)],
    "attention_qkv_backward": [_attention_qkv_backward(c) for c in (False, True)],
    "cross_entropy": [(lambda r, t=t: (_x(r, 6, 5) * 3, t, -100)) for t in TARGETS],
    "cross_entropy_backward": [_cross_entropy_backward(t, g) for t in TARGETS
                               for g in (0.7, lambda r: np.asarray(1.3))],
    "embedding": [lambda r: (_x(r, 7, 4), np.array([[0, 3, 3], [6, 0, 1]])),
                  lambda r: (_x(r, 7, 4), np.array(2))],
    "embedding_backward": [lambda r: (np.array([[0, 3, 3], [6, 0, 3]]), _x(r, 2, 3, 4), 7)],
    "adamw_update": [_adamw],
    "sum_squares": [lambda r: ((_x(r, 3, 4), _x(r, 5), _x(r, 1)),), lambda r: ((_x(r, 2, 2),),)],
    "contiguous": [lambda r: (_x(r, 4, 3).T,), lambda r: (_x(r, 3, 4),)],
    "scatter_add": [lambda r: ((5,), np.array([0, 3, 3, 1, 3]), _x(r, 5), None),
                    lambda r: ((4, 3), np.array([[2, 2], [0, 2]]), _x(r, 2, 2, 3), "float64"),
                    lambda r: ((4, 3, 2), (np.array([1, 1, 3]), slice(None), np.array([0, 0, 1])),
                               _x(r, 3, 3), None),
                    lambda r: ((4, 3), (slice(1, 3), np.array([0, 0, -1])), _x(r, 2, 3), None),
                    lambda r: ((3, 4), (np.array([0, 2, 0]), np.array([1, 1, 1])), _x(r, 3), None)],
}
# dropout_mask: the cuda form draws its own mask (test_dropout_mask_*)


def _cast(value, dtype):
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(dtype)
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype) for v in value)
    if isinstance(value, str) and value.startswith("float"):
        return dtype.name
    return value


def _arrays(result):
    return [a for item in result for a in _arrays(item)] if isinstance(result, tuple) \
        else [result]


def _run_case(name, dtype, on_cuda, tol):
    cuda = ops.get_device("cuda")
    for seed, make in enumerate(CASES[name]):
        cpu_args = _cast(make(np.random.default_rng(seed)), dtype)
        dev_args = on_cuda(_cast(make(np.random.default_rng(seed)), dtype))
        want = ops.kernel(name, "cpu", backend="numpy")(*cpu_args)
        ops.reset_transfer_stats()
        got = ops.kernel(name, cuda)(*dev_args)
        assert ops.transfer_stats()["to_device"]["calls"] == 0, (name, seed)  # nothing moved
        assert ops.transfer_stats()["to_host"]["calls"] == 0, (name, seed)
        if name == "adamw_update":  # in place: compare param, m, v
            assert want is None and got is None
            want, got = tuple(cpu_args[i] for i in (0, 2, 3)), tuple(dev_args[i] for i in (0, 2, 3))
        for w, g in zip(_arrays(want), _arrays(got), strict=True):
            assert ops.device_of(g) is cuda, (name, seed, type(g))
            h = ops.to_host(g)
            assert h.shape == np.shape(w) and h.dtype == np.asarray(w).dtype, \
                (name, seed, h.shape, np.shape(w), h.dtype)
            np.testing.assert_allclose(h, w, **tol(dtype), err_msg=f"{name} case {seed}")


@pytest.mark.parametrize("name", [n for n in ops.names() if n != "dropout_mask"])
def test_every_kernel_on_cuda_matches_the_reference(name, dtype, on_cuda, tol):
    assert name in CASES, f"kernel {name!r} has no cuda case: add one to CASES"
    assert "cuda" in ops.implementations(name), f"kernel {name!r} has no cuda form"
    _run_case(name, dtype, on_cuda, tol)


@pytest.mark.parametrize("name", ["matmul", "matmul_nt", "matmul_tn", "softmax",
                                  "log_softmax_backward", "layer_norm", "layer_norm_backward",
                                  "attention", "attention_backward", "cross_entropy"])
def test_kernels_with_small_tiles_and_many_blocks(name, small_tiles, on_cuda, tol):
    _run_case(name, np.dtype("float64"), on_cuda, tol)


@pytest.mark.parametrize("name", ["softmax", "log_softmax_backward", "layer_norm",
                                  "layer_norm_backward", "attention", "attention_backward",
                                  "cross_entropy", "adamw_update"])
def test_kernels_with_wide_blocks(name, wide_blocks, on_cuda, tol):
    _run_case(name, np.dtype("float32"), on_cuda, tol)


def test_reductions_through_blocks_agree(monkeypatch, on_cuda, tol):
    monkeypatch.setattr(reduce, "BLOCK_MIN_R", 1)
    _run_case("layer_norm_backward", np.dtype("float64"), on_cuda, tol)
    _run_case("cross_entropy", np.dtype("float64"), on_cuda, tol)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_dropout_mask_is_zero_or_the_scale_kept_at_rate_1_minus_p(dtype_name):
    mask = ops.to_host(ops.kernel("dropout_mask", "cuda")((64, 50), 0.25, dtype_name,
                                                          np.random.default_rng(0)))
    assert mask.dtype == np.dtype(dtype_name) and mask.shape == (64, 50)
    scale = np.dtype(dtype_name).type(1) / np.dtype(dtype_name).type(0.75)
    assert set(np.unique(mask)) <= {0.0, scale}
    kept = (mask > 0).mean()
    assert abs(kept - 0.75) < 4 * np.sqrt(0.75 * 0.25 / mask.size)  # 4 sigma


def test_dropout_mask_follows_the_generator_and_not_the_thread_count(monkeypatch):
    make = ops.kernel("dropout_mask", "cuda")
    a = ops.to_host(make((7, 9), 0.5, "float32", np.random.default_rng(1)))
    b = ops.to_host(make((7, 9), 0.5, "float32", np.random.default_rng(2)))
    monkeypatch.setattr(launch, "THREADS", 2)
    again = ops.to_host(make((7, 9), 0.5, "float32", np.random.default_rng(1)))
    np.testing.assert_array_equal(a, again)
    assert not np.array_equal(a, b)
    gen = np.random.default_rng(3)
    first, second = make((4,), 0.5, "float32", gen), make((4,), 0.5, "float32", gen)
    assert ops.device_of(first).name == "cuda" and first is not second  # the generator moved


def test_kernels_stride_past_a_one_block_grid(monkeypatch, on_cuda, tol):
    """With MAX_GRID 1 every kernel that sizes a grid dimension from the data (matmul tiles,
    layer norm's row blocks, the embedding backward's chunks) runs it all from one block row:
    the grid-stride loops that keep huge shapes (more than 65535 blocks) correct."""
    from ops.cuda import embedding, layernorm, matmul
    monkeypatch.setattr(launch, "MAX_GRID", 1)
    monkeypatch.setattr(layernorm, "ROWS_PER_BLOCK", 2)
    monkeypatch.setattr(embedding, "EMB_ROWS", 2)
    monkeypatch.setattr(matmul, "TILE_M", 4)
    monkeypatch.setattr(matmul, "TILE_N", 4)
    monkeypatch.setattr(matmul, "REG_M", 2)
    monkeypatch.setattr(matmul, "REG_N", 2)
    r = np.random.default_rng(5)
    cases = [("matmul", (_x(r, 2, 9, 3), _x(r, 2, 3, 7))),
             ("layer_norm_backward", _layer_norm_backward(9, 3)(r)),
             ("embedding_backward", (r.integers(0, 4, 11), _x(r, 11, 3), 4))]
    for name, args in cases:
        want = ops.kernel(name, backend="numpy")(*args)
        got = ops.kernel(name, "cuda")(*on_cuda(args))
        for g, w in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            np.testing.assert_allclose(ops.to_host(g), w, err_msg=name, **tol(w.dtype))


@pytest.mark.parametrize("tiles", [(4, 4, 2, 2, 2), (6, 4, 4, 2, 2), (8, 8, 8, 4, 4)])
def test_matmul_through_many_double_buffered_k_tiles(monkeypatch, on_cuda, tiles):
    """K spanning several k-tiles (odd and even counts, a partial last one), in the three
    transposition forms, with tiles whose element count the threads do not divide (6 x 4
    x 4 with 6 threads: the staging guard)."""
    from ops.cuda import matmul
    for name, value in zip(("TILE_M", "TILE_N", "TILE_K", "REG_M", "REG_N"), tiles):
        monkeypatch.setattr(matmul, name, value)
    r = np.random.default_rng(sum(tiles))
    for K in (1, tiles[2] * 3, tiles[2] * 2 + 1):
        a, b = _x(r, 2, 7, K), _x(r, 2, K, 9)
        cases = (("matmul", a, b), ("matmul_nt", a, np.swapaxes(b, 1, 2).copy()),
                 ("matmul_tn", np.swapaxes(a, 1, 2).copy(), b))
        for name, x, y in cases:
            got = ops.to_host(ops.kernel(name, "cuda")(*on_cuda((x, y))))
            np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12, err_msg=f"{name} {K}")

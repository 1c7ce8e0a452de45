"""Every kernel's cuda form against its numpy reference (the shared suite,
tests/ops/test_device_kernels.py, run with device="cuda"), then what only cuda has: the
same cases through small tiles and many blocks, wide blocks, block reductions, grid-stride
loops past a one-block grid, double-buffered k-tiles, and the dropout mask drawn on the
device."""

import numpy as np
import pytest

import ops
from ops.cuda import launch, reduce
from tests.ops.test_device_kernels import *
from tests.ops.test_device_kernels import _layer_norm_backward, _x, run_case


@pytest.mark.parametrize("name", ["matmul", "matmul_nt", "matmul_tn", "softmax",
                                  "log_softmax_backward", "layer_norm", "layer_norm_backward",
                                  "attention", "attention_backward", "cross_entropy"])
def test_kernels_with_small_tiles_and_many_blocks(name, small_tiles):
    run_case(name, "cuda", "float64")


@pytest.mark.parametrize("name", ["softmax", "log_softmax_backward", "layer_norm",
                                  "layer_norm_backward", "attention", "attention_backward",
                                  "cross_entropy", "adamw_update"])
def test_kernels_with_wide_blocks(name, wide_blocks):
    run_case(name, "cuda", "float32")


def test_reductions_through_blocks_agree(monkeypatch):
    monkeypatch.setattr(reduce, "BLOCK_MIN_R", 1)
    run_case("layer_norm_backward", "cuda", "float64")
    run_case("cross_entropy", "cuda", "float64")


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


def test_kernels_stride_past_a_one_block_grid(monkeypatch, matmul_tiles, on_cuda, tol):
    """With MAX_GRID 1 every kernel that sizes a grid dimension from the data (matmul tiles,
    layer norm's row blocks, the embedding backward's chunks) runs it all from one block row:
    the grid-stride loops that keep huge shapes (more than 65535 blocks) correct."""
    from ops.cuda import embedding, layernorm
    monkeypatch.setattr(launch, "MAX_GRID", 1)
    monkeypatch.setattr(layernorm, "ROWS_PER_BLOCK", 2)
    monkeypatch.setattr(embedding, "EMB_ROWS", 2)
    matmul_tiles(TILE_M=4, TILE_N=4, REG_M=2, REG_N=2)
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
def test_matmul_through_many_double_buffered_k_tiles(matmul_tiles, on_cuda, tiles):
    """K spanning several k-tiles (odd and even counts, a partial last one), in the three
    transposition forms, with tiles whose element count the threads do not divide (6 x 4
    x 4 with 6 threads: the staging guard)."""
    matmul_tiles(**dict(zip(("TILE_M", "TILE_N", "TILE_K", "REG_M", "REG_N"), tiles)))
    r = np.random.default_rng(sum(tiles))
    for K in (1, tiles[2] * 3, tiles[2] * 2 + 1):
        a, b = _x(r, 2, 7, K), _x(r, 2, K, 9)
        cases = (("matmul", a, b), ("matmul_nt", a, np.swapaxes(b, 1, 2).copy()),
                 ("matmul_tn", np.swapaxes(a, 1, 2).copy(), b))
        for name, x, y in cases:
            got = ops.to_host(ops.kernel(name, "cuda")(*on_cuda((x, y))))
            np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12, err_msg=f"{name} {K}")

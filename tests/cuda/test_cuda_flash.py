"""The tiled attention kernels (ops/cuda/attention_flash.py) against the numpy reference:
forward and backward, causal or not, with and without masks (padding, a fully masked row, per-head
masks), Tq != Tk, tiles and chunks wider and narrower than the block, partial last tiles;
the launches they make; bit-for-bit reproducible gradients; the per-row fallback."""

import functools

import numpy as np
import pytest

import ops
import ops.cuda as oc
from ops.cuda import attention_flash as flash
from ops.cuda import launch
from tests.ops.test_device_kernels import _head_mask, _mask_with_a_dead_row, _x


def _padding(tq, tk):
    """(2, 1, 1, Tk): batch 0 sees every key, batch 1 its first two (a padded sequence)."""
    mask = np.zeros((2, 1, 1, tk))
    mask[1, ..., 2:] = -np.inf
    return mask


# (1, 1, Tq, Tk) with finite penalties and row 1 fully masked (no key visible); per head
_arbitrary = functools.partial(_mask_with_a_dead_row, penalty=-1.5)
_per_head = functools.partial(_head_mask, heads=2)


# (causal, Tq, Tk, mask): square, more queries than keys (dead causal rows), more keys.
SHAPES = [(True, 7, 7, None), (True, 6, 3, None), (False, 5, 9, None), (True, 3, 10, None),
          (False, 5, 6, _padding), (True, 6, 6, _padding), (False, 4, 5, _arbitrary),
          (True, 5, 7, _arbitrary), (True, 5, 5, _per_head)]


def _case(r, causal, tq, tk, mask):
    q, k, v = _x(r, 2, 2, tq, 3), _x(r, 2, 2, tk, 3), _x(r, 2, 2, tk, 2)
    return q, k, v, causal, 0.7, mask(tq, tk) if mask else None


def _forward_and_backward(args, on_cuda):
    """(reference o, lse, dq, dk, dv), (cuda ones, as numpy), and the cuda launches."""
    ref = ops.kernel("attention", backend="numpy")
    o, lse = ref(*args)
    do = np.random.default_rng(1).standard_normal(o.shape)
    want = (o, lse) + ops.kernel("attention_backward", backend="numpy")(do, *args[:3], o, lse,
                                                                       *args[3:])
    dev = on_cuda(args)
    oc.reset_launch_stats()
    od, lsed = ops.kernel("attention", "cuda")(*dev)
    grads = ops.kernel("attention_backward", "cuda")(on_cuda(do), *dev[:3], od, lsed, *dev[3:])
    stats = oc.launch_stats()["by_kernel"]
    return want, tuple(ops.to_host(g) for g in (od, lsed) + grads), stats


@pytest.mark.parametrize("threads, tile, chunk", [(2, 2, 2), (2, 4, 3), (8, 3, 2), (4, 2, 5)])
def test_tiled_attention_forward_and_backward_match_the_reference(
        monkeypatch, on_cuda, threads, tile, chunk):
    monkeypatch.setattr(launch, "ROW_THREADS", threads)
    monkeypatch.setattr(flash, "TILE", tile)
    monkeypatch.setattr(flash, "CHUNK", chunk)
    r = np.random.default_rng(threads * 10 + tile)
    for spec in SHAPES:
        want, got, stats = _forward_and_backward(_case(r, *spec), on_cuda)
        # the tiled kernels, once each, and no per-row kernel
        assert {k: n for k, n in stats.items() if k.endswith(("forward_kernel", "dq_kernel",
                                                              "dkv_kernel"))} \
            == {"flash_forward_kernel": 1, "flash_dq_kernel": 1, "flash_dkv_kernel": 1}, stats
        for name, g, w in zip(("o", "lse", "dq", "dk", "dv"), got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=f"{name} {spec}")


def test_the_tiled_kernels_run_and_not_the_per_row_ones(monkeypatch, on_cuda):
    """The launcher picks the flash kernels (they fit shared memory); with no room it falls
    back to the per-row kernels, which agree with the reference too."""
    r = np.random.default_rng(3)
    args = _case(r, True, 5, 7, _arbitrary)
    assert "flash_dq_kernel" in _forward_and_backward(args, on_cuda)[2]
    monkeypatch.setattr(flash, "SHARED_BYTES", 0)
    want, got, stats = _forward_and_backward(args, on_cuda)
    assert {"forward_kernel", "dq_kernel", "dkv_kernel"} <= set(stats)
    assert not any(k.startswith("flash") for k in stats)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_tiled_gradients_are_bit_for_bit_reproducible(monkeypatch, on_cuda):
    """No atomics: every gradient element has one owner that sums in a fixed order, so two
    runs (and runs over more or fewer blocks) give identical bits."""
    monkeypatch.setattr(launch, "ROW_THREADS", 4)
    r = np.random.default_rng(4)
    args = _case(r, True, 6, 6, _padding)
    first = _forward_and_backward(args, on_cuda)[1]
    monkeypatch.setattr(launch, "MAX_BLOCKS", 3)
    again = _forward_and_backward(args, on_cuda)[1]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_wide_heads_get_smaller_tiles_and_the_widest_the_per_row_kernels(monkeypatch):
    monkeypatch.setattr(flash, "TILE", 16)  # the GPU's tile and chunk
    monkeypatch.setattr(flash, "CHUNK", 32)
    assert flash.shape("float32", 64, 64) == (16, 32)
    tile, chunk = flash.shape("float32", 128, 128)
    assert tile * chunk < 16 * 32
    assert flash.shared_bytes("float32", 128, 128, tile, chunk) <= flash.SHARED_BYTES
    assert flash.shape("float32", 8192, 8192) is None and flash.shape("float32", 0, 4) is None
    assert flash.shared_bytes("float64", 8, 8) == 2 * flash.shared_bytes("float32", 8, 8)


@pytest.mark.parametrize("tiled", [True, False])
def test_a_nan_propagates_through_the_attention_kernels(monkeypatch, on_cuda, tiled):
    """A NaN in one query row (or key) gives exactly the reference's NaNs in o and lse, and
    the gradients are NaN wherever the reference's are (never hidden), equal elsewhere where
    both are finite. (The reference turns a NaN lse into 0 when it recomputes p, so some of
    its gradients stay finite where ours are NaN; and with a causal or -inf mask, entries
    cut off from the NaN stay finite here where its dense 0 * NaN makes them NaN: not
    causal here.)"""
    if not tiled:
        monkeypatch.setattr(flash, "SHARED_BYTES", 0)  # the per-row kernels
    r = np.random.default_rng(6)
    for which, row in (("q", 2), ("k", 3)):
        q, k, v, _, scale, mask = _case(r, False, 6, 6, None)
        (q if which == "q" else k)[0, 1, row, 0] = np.nan
        want, got, _ = _forward_and_backward((q, k, v, False, scale, mask), on_cuda)
        for name, g, w in zip(("o", "lse", "dq", "dk", "dv"), got, want, strict=True):
            msg = f"{which} {name}"
            assert np.isnan(w).any() and not np.isnan(g[0, 0]).any(), msg  # only head (0, 1)
            if name in ("o", "lse"):
                np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=msg)
            assert np.isnan(g[np.isnan(w)]).all(), msg
            both = ~np.isnan(g) & ~np.isnan(w)
            np.testing.assert_allclose(g[both], w[both], rtol=1e-12, atol=1e-12, err_msg=msg)

"""The vector pieces of the attention kernels' row softmax (ops/simd.py): the vector exp
against float64 numpy, the masked tail, the tree sum; and the attention kernels at the
256-bit width in a fresh process."""

import os
import subprocess
import sys

import numpy as np
import pytest

from ops.numba_config import jit
from ops.simd import lanes, vexp_below_zero, vload, vreduce_add, vstore, vtail

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@jit(cache=False)
def _vexp(x, out):
    w = lanes(x)
    for j in range(0, x.size, w):
        vstore(out, j, vexp_below_zero(vload(x, j)))


@jit(cache=False)
def _tail(x, k, fill, out):
    vstore(out, 0, vtail(vload(x, 0), k, fill))


@jit(cache=False)
def _sum(x):
    return vreduce_add(vload(x, 0))


@jit(cache=False)
def _lanes(x):
    return lanes(x)


def _whole_vectors(values):
    x = np.asarray(values, np.float32)
    n = -(-x.size // 16) * 16  # 16 lanes covers both widths
    return np.concatenate([x, np.zeros(n - x.size, np.float32)])


def test_vector_exp_matches_float64_exp():
    x = _whole_vectors(np.concatenate([np.linspace(-87, 0, 400_000, dtype=np.float32),
                                       -np.logspace(-30, 1.9, 20_000).astype(np.float32)]))
    out = np.empty_like(x)
    _vexp(x, out)
    ref = np.exp(x.astype(np.float64))
    kept = x > -87  # -87 and below are flushed to 0 (next test)
    rel = np.abs(out[kept] - ref[kept]) / ref[kept]
    assert rel.max() < 4e-7, rel.max()  # exp_f32's bound (tests/ops/test_fastexp.py): 3e-7
    assert out[x == 0].min() == 1.0


def test_vector_exp_edges_flush_and_nan():
    x = _whole_vectors([-87.0, -87.5, -100.0, -np.inf, np.nan, -86.99, 0.0, -0.0])
    out = np.empty_like(x)
    _vexp(x, out)
    assert np.all(out[:4] == 0)  # at and below -87: flushed (exp(-87) is the last normal)
    assert np.isnan(out[4])  # NaN kept
    assert abs(out[5] / np.exp(np.float64(x[5])) - 1) < 4e-7
    assert out[6] == out[7] == 1.0


def test_tail_replaces_lanes_from_k():
    x = np.arange(1, 17, dtype=np.float32)
    w = _lanes(x)
    for k in (0, 1, w - 1, w):
        out = np.zeros_like(x)
        _tail(x, k, -np.inf, out)
        want = np.where(np.arange(w) < k, x[:w], -np.inf)
        np.testing.assert_array_equal(out[:w], want)


def test_tree_sum_of_the_lanes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16).astype(np.float32)
    w = _lanes(x)
    assert abs(_sum(x) - x[:w].astype(np.float64).sum()) < 1e-5
    x[3] = np.inf
    assert _sum(x) == np.inf
    x[5] = np.nan
    assert np.isnan(_sum(x))


_NARROW = """
import numpy as np
from ops import simd, attention_cpu as fused
from tests.ops.test_attention_qkv import _plain
assert simd.VEC_BITS == 256, simd.VEC_BITS
rng = np.random.default_rng(0)
for causal in (False, True):
    for b, t, c, nh in ((2, 19, 32, 2), (1, 70, 64, 4)):
        qkv = rng.standard_normal((b, t, 3 * c)).astype(np.float32)
        y, lse = fused.flash_forward_qkv(qkv, nh, causal, 0.3, 64, 256)
        np.testing.assert_allclose(y, _plain(qkv, nh, causal, 0.3), rtol=2e-4, atol=2e-5)
        # the backward against central differences of sum(y * dy), in float64 for the check
        dy = rng.standard_normal(y.shape).astype(np.float32)
        g = fused.flash_backward_qkv(dy, qkv, y, lse, nh, causal, 0.3, 64, 256)
        q64 = qkv.astype(np.float64)
        for idx in [(0, 0, 0), (0, t - 1, c + 1), (b - 1, t // 2, 2 * c + 3)]:
            e = np.zeros_like(q64)
            e[idx] = 1e-4
            num = ((_plain(q64 + e, nh, causal, 0.3) - _plain(q64 - e, nh, causal, 0.3))
                   * dy).sum() / 2e-4
            assert abs(g[idx] - num) < 2e-3 * max(1, abs(num)), (idx, g[idx], num)
print("ok")
"""


@pytest.mark.slow
def test_256_bit_attention_kernels_when_forced(tmp_path):
    # the row softmax's vectors (exp, tail, sums) at the AVX2 width, in a fresh process with
    # its own kernel cache (the cache does not key on the width)
    env = dict(os.environ, ENGINE_VEC_BITS="256", NUMBA_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", _NARROW], check=False, env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]

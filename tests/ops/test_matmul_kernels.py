"""The Numba matmul kernels (matmul, matmul_nt, matmul_tn) against their numpy references."""

import numpy as np
import pytest

import ops
from ops import matmul as mm
from ops import matmul_cpu

RNG = np.random.default_rng(1234)
SIZES = (1, 3, 17, 63, 65, 127, 129)
# |ours - exact| <= TOL * sqrt(K) * max|a| * max|b|: the error of a K-term float sum grows
# like sqrt(K) ulps; a wrong index gives errors of order max|a| max|b|, far above this.
TOL = {np.float32: 1e-5, np.float64: 1e-13}
VARIANTS = {
    "matmul": (mm.matmul_cpu, mm.matmul_reference, False, False),
    "matmul_nt": (mm.matmul_nt_cpu, mm.matmul_nt_reference, False, True),
    "matmul_tn": (mm.matmul_tn_cpu, mm.matmul_tn_reference, True, False),
}


def _operands(name, m, n, k, dtype, batch=()):
    """Random a, b stored as kernel `name` expects them for an (m, n, k) product."""
    _, _, ta, tb = VARIANTS[name]
    a = RNG.standard_normal((*batch, *((k, m) if ta else (m, k)))).astype(dtype)
    b = RNG.standard_normal((*batch, *((n, k) if tb else (k, n)))).astype(dtype)
    return a, b


def _check(name, a, b):
    """Run the cpu form of `name` on (a, b) and compare with the float64 reference."""
    cpu, ref, ta, _ = VARIANTS[name]
    out = cpu(a, b)
    want = ref(a.astype(np.float64), b.astype(np.float64))
    assert out.dtype == a.dtype and out.shape == want.shape
    k = a.shape[-2] if ta else a.shape[-1]
    scale = np.sqrt(max(k, 1)) * np.abs(a).max(initial=1) * np.abs(b).max(initial=1)
    np.testing.assert_allclose(out, want, rtol=0, atol=TOL[a.dtype.type] * scale)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_2d_sizes(name, dtype):
    # each dimension through every size with the other two fixed, then a few mixes
    shapes = [(s, 20, 30) for s in SIZES] + [(20, s, 30) for s in SIZES]
    shapes += [(20, 30, s) for s in SIZES] + [(1, 1, 1), (129, 127, 65), (1, 129, 1)]
    for m, n, k in shapes:
        _check(name, *_operands(name, m, n, k, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_3d_batched(name, dtype):
    # S x (M, N, K): small matrices (whole matrices per thread), one big (grid per matrix)
    for s, (m, n, k) in [(1, (3, 17, 5)), (2, (65, 63, 17)), (7, (17, 33, 65)),
                         (3, (129, 129, 65)), (64, (16, 16, 16))]:
        _check(name, *_operands(name, m, n, k, dtype, batch=(s,)))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_non_contiguous_inputs(name):
    # every other row and column of bigger arrays: strided in both axes
    big_a, big_b = _operands(name, 80, 100, 60, np.float32)
    _check(name, big_a[::2, ::2], big_b[::2, ::2])
    # transposed views (C-contiguous after a transpose: read through the flipped flag)
    a, b = _operands(name, 40, 50, 30, np.float64)
    _check(name, np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T)
    # 3-D: a swapaxes view, a reversed batch, every other matrix of the batch
    a3, b3 = _operands(name, 19, 21, 23, np.float32, batch=(4,))
    _check(name, np.ascontiguousarray(np.swapaxes(a3, 1, 2)).swapaxes(1, 2), b3[::-1])
    _check(name, a3[::2], b3[1::2])


@pytest.mark.parametrize("name", list(VARIANTS))
def test_small_blocks_and_every_schedule(name, monkeypatch):
    # tiny block sizes push many blocks through the edge code; SERIAL_WORK picks the path
    monkeypatch.setattr(matmul_cpu, "MC", 7)
    monkeypatch.setattr(matmul_cpu, "KC", 5)
    monkeypatch.setattr(matmul_cpu, "NC", 9)
    for serial_work in (0, 1 << 40):
        monkeypatch.setattr(mm, "SERIAL_WORK", serial_work)
        _check(name, *_operands(name, 31, 45, 23, np.float32))
        _check(name, *_operands(name, 13, 29, 12, np.float64, batch=(5,)))


def test_packed_a_transposed_path():
    # matmul_tn packs A^T when one thread's block is at least 16 micro-tiles wide
    a, b = _operands("matmul_tn", 20, 300, 40, np.float32)
    _check("matmul_tn", a, b)
    c = np.zeros(20 * 300, np.float32)
    blocks = (matmul_cpu.MC, matmul_cpu.KC, matmul_cpu.NC)
    fn = matmul_cpu.GEMM_BLOCK.address(np.float32)
    matmul_cpu.gemm_serial(fn, a.reshape(-1), 20, 1, b.reshape(-1), 300, 0, c, 1, 20, 300, 40,
                           blocks, False, c[:0], False)
    np.testing.assert_allclose(c.reshape(20, 300), a.T @ b, rtol=1e-5, atol=1e-4)


def test_empty_and_k_zero():
    a = np.zeros((0, 4), np.float32)
    assert mm.matmul_cpu(a, np.ones((4, 3), np.float32)).shape == (0, 3)
    out = mm.matmul_cpu(np.ones((2, 0)), np.ones((0, 3)))
    assert out.shape == (2, 3) and not out.any()


def test_result_is_new_deterministic_and_readonly_inputs_work():
    a, b = _operands("matmul", 70, 90, 80, np.float32)
    a.setflags(write=False)
    first, second = mm.matmul_cpu(a, b), mm.matmul_cpu(a, b)
    assert np.array_equal(first, second)
    assert not np.shares_memory(first, a) and not np.shares_memory(first, b)


def test_bad_shapes_raise_value_error_naming_the_kernel():
    with pytest.raises(ValueError, match="matmul_nt"):
        mm.matmul_nt_cpu(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="matmul"):
        mm.matmul_cpu(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="matmul_tn"):
        mm.matmul_tn_cpu(np.ones((2, 3, 4)), np.ones((3, 3, 4)))
    with pytest.raises(ValueError, match="matmul"):
        mm.matmul_reference(np.ones((2, 2, 3, 4)), np.ones((2, 2, 4, 3)))


def test_registered_forms():
    for name, (cpu, ref, _, _) in VARIANTS.items():
        assert ops.kernel(name, backend="numba") is cpu
        assert ops.kernel(name, backend="numpy") is ref


def test_shuffle_network_transposes_every_width():
    # the register transpose used to pack B, simulated on lists for 4, 8 and 16 lanes
    for n in (4, 8, 16):
        rows = [[q * n + p for p in range(n)] for q in range(n)]
        for pairs, lo, hi in matmul_cpu._shuffle_steps(n):
            out = list(rows)
            for i, j in pairs:
                both = rows[i] + rows[j]
                out[i], out[j] = [both[t] for t in lo], [both[t] for t in hi]
            rows = out
        assert rows == [[q * n + p for q in range(n)] for p in range(n)]


_NARROW = """
import numpy as np
from ops import matmul as mm, matmul_cpu
assert matmul_cpu.VEC_BITS == 256, matmul_cpu.VEC_BITS
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    for m, n, k in ((37, 45, 29), (129, 70, 65)):
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        for got in (mm.matmul_cpu(a, b), mm.matmul_nt_cpu(a, np.ascontiguousarray(b.T)),
                    mm.matmul_tn_cpu(np.ascontiguousarray(a.T), b)):
            np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
print("ok")
"""


@pytest.mark.slow
def test_256_bit_kernels_when_forced(tmp_path):
    # the AVX2 width is what machines without AVX-512 run: check it here too, in a fresh
    # process with its own kernel cache (the cache does not key on the width)
    import os
    import subprocess
    import sys
    env = dict(os.environ, ENGINE_VEC_BITS="256", NUMBA_CACHE_DIR=str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run = subprocess.run([sys.executable, "-c", _NARROW], check=False, env=env, cwd=root,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, i, o", [(1, 1, 1), (7, 5, 3), (13, 17, 33), (300, 64, 192),
                                     (64, 300, 40), (9, 0, 4)])
def test_linear_adds_the_bias_inside_the_product(dtype, n, i, o):
    # shapes with edge tiles in both directions, one-vector-wide tiles (o = 16 lanes and
    # less), K over one KC block (300 > KC is covered with small blocks below) and K = 0
    r = np.random.default_rng(n * 100 + o)
    x, w, b = (r.standard_normal(s).astype(dtype) for s in ((n, i), (o, i), (o,)))
    want = x.astype(np.float64) @ w.T.astype(np.float64) + b
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(mm.linear_cpu(x, w, b), want, **tol)
    np.testing.assert_allclose(mm.linear_cpu(x, w, None), want - b, **tol)
    np.testing.assert_allclose(mm.linear_reference(x, w, b), want, **tol)


def test_linear_bias_goes_in_once_over_many_k_blocks(monkeypatch):
    # with KC = 8 the product takes 5 K blocks; only the first may start from the bias
    monkeypatch.setattr(matmul_cpu, "KC", 8)
    r = np.random.default_rng(3)
    x, w, b = r.standard_normal((50, 40)), r.standard_normal((70, 40)), r.standard_normal(70)
    np.testing.assert_allclose(mm.linear_cpu(x, w, b), x @ w.T + b, rtol=1e-12, atol=1e-12)


def test_linear_refuses_shapes_that_do_not_fit():
    with pytest.raises(ValueError, match=r"linear: bias \(4,\) must be \(3,\)"):
        mm.linear_cpu(np.ones((2, 5)), np.ones((3, 5)), np.ones(4))
    with pytest.raises(ValueError, match="linear: x"):
        mm.linear_reference(np.ones((2, 4)), np.ones((3, 5)), None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (255, 3), (256, 7), (257, 192), (2048, 64), (0, 4)])
def test_sum_rows_is_the_column_sum(dtype, shape):
    x = np.random.default_rng(shape[0]).standard_normal(shape).astype(dtype)
    got = mm.sum_rows_cpu(x)
    assert got.shape == (shape[1],) and got.dtype == dtype
    tol = 1e-4 * max(1, shape[0]) ** 0.5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, x.astype(np.float64).sum(axis=0), rtol=tol, atol=tol)


def test_sum_rows_does_not_depend_on_the_thread_count():
    import numba
    x = np.random.default_rng(0).standard_normal((3000, 50)).astype(np.float32)
    one = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = mm.sum_rows_cpu(x)
    finally:
        numba.set_num_threads(one)
    np.testing.assert_array_equal(serial, mm.sum_rows_cpu(x))

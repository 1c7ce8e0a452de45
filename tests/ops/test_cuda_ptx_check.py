"""scripts/check_cuda_ptx.py finds what the CUDA simulator hides: float64 in a float32
kernel and local-memory spills in a hot one (the full check runs in .ci/run)."""

import math
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _checker():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import scripts.check_cuda_ptx as checker
    return checker


def test_the_checks_flag_float64_and_spills_in_ptx_text():
    check = _checker().check
    assert check("softmax", "float32", "mul.f32 %f1, %f2, %f3;") == []
    assert "float64" in check("gelu", "float32", "cvt.f64.f32 %fd1, %f1;")[0]
    assert check("gelu", "float64", "mul.f64 %fd1, %fd2, %fd3;") == []  # float64 kernels may
    assert "spills" in check("matmul", "float32", "ld.local.f32 %f1, [%rd1];")[0]
    assert check("adamw_update", "float32", "ld.local.f32 %f1, [%rd1];") == []  # not hot
    assert check("unary.sin", "float32", "mul.f64 %fd2, %fd1, 0d3BF9;") == []  # libdevice


@pytest.mark.slow
def test_a_float64_constant_in_float32_code_is_caught_by_the_real_compiler():
    checker = _checker()
    from numba import cuda, types
    try:
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
    except Exception as err:  # noqa: BLE001  (no NVVM here: pip install -e ".[cuda]")
        pytest.skip(f"numba-cuda's NVVM is not available: {err}")

    def leaky(out, x):
        i = cuda.grid(1)
        if i < x.size:
            out[i] = x[i] * math.pi  # math.pi is a float64: the product is float64

    sig = (types.float32[::1], types.float32[::1])
    ptx, _ = cuda.compile_ptx(leaky, sig, cc=(7, 5))
    assert checker.check("leaky", "float32", ptx)
    kernel = checker.matmul.matmul_kernel("float32", False, True, (64, 64, 16, 4, 4))
    ptx, _ = cuda.compile_ptx(kernel.py_func, (types.Array(types.float32, 3, "C"),) * 3
                              + (types.int64,) * 3, cc=(7, 5))
    assert checker.check("matmul", "float32", ptx) == []
    ptxas = checker.find_ptxas()
    if ptxas:  # machine code: no spills at 256 threads; 1024 threads would not fit the registers
        problems, registers = checker.assemble(ptxas, ptx, (7, 5), 256)
        assert problems == [] and 0 < registers <= 255
        assert "registers x 1024 threads" in checker.assemble(ptxas, ptx, (7, 5), 1024)[0][0]


@pytest.mark.slow
def test_the_script_runs_without_the_simulator_only():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_cuda_ptx.py"), "--only",
                          "nothing"], capture_output=True, text=True, check=False,
                         env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"})
    assert out.returncode != 0 and "unset NUMBA_ENABLE_CUDASIM" in out.stderr

"""The cuda tests: Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set before numba is
first imported, so these run in their own pytest process: README's test command) or a real
GPU. With neither, every test here is skipped with the reason.

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda

Shapes are tiny: the simulator runs one Python thread per CUDA thread.
"""

import os
import sys

import numpy as np
import pytest

import ops


def _unavailable():
    """None when the cuda device loads here, else why not."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1" and "numba" in sys.modules \
            and not _gpu_visible():
        return ("no GPU, and the CUDA simulator is off: run NUMBA_ENABLE_CUDASIM=1 python -m "
                "pytest tests/cuda")
    try:
        ops.get_device("cuda")
    except (ops.DeviceError, ImportError) as err:
        return str(err)
    return None


def _gpu_visible():
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")


REASON = _unavailable()


def pytest_collection_modifyitems(config, items):
    if REASON is None:
        return
    skip = pytest.mark.skip(reason=f"cuda device unavailable: {REASON}")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _fast_simulator():
    """The simulator's scheduler polls its threads while they wait on the GIL; a short switch
    interval cut the micro GPT step from 21 s to 5 s (measured here)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    yield
    sys.setswitchinterval(previous)


# Tolerances on a real GPU (docs/cuda.md): NVVM contracts a * b + c into FMAs and
# libdevice's exp / log / tanh are within 1-2 ulp of correctly rounded, so float64 results
# that match numpy to the last bit under the simulator (Python's math) differ in the last
# few bits on hardware; a training step compounds that. float32 tests already allow 1e-4.
GPU_FLOAT64 = {"rtol": 1e-9, "atol": 1e-12}


@pytest.fixture(autouse=True, scope="session")
def _hardware_tolerances():
    """On a GPU, assert_allclose in these tests allows at least GPU_FLOAT64 (the
    simulator keeps each test's own, tighter tolerance)."""
    from ops.cuda import launch
    if REASON is not None or launch.SIMULATOR:
        yield
        return
    original = np.testing.assert_allclose

    def widened(actual, desired, rtol=1e-7, atol=0, **kwargs):
        original(actual, desired, rtol=max(rtol, GPU_FLOAT64["rtol"]),
                 atol=max(atol, GPU_FLOAT64["atol"]), **kwargs)
    np.testing.assert_allclose = widened
    yield
    np.testing.assert_allclose = original


@pytest.fixture(scope="session")
def cuda_device():
    return ops.get_device("cuda")


@pytest.fixture
def device():
    """The shared equivalence suites (tests/conftest.py's `device` runs them on "strict")
    rerun by the modules here, on "cuda"."""
    return "cuda"


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def tol():
    """tol(dtype) -> assert_allclose tolerances: sums on the device run in another order."""
    from tests.ops.test_device_kernels import tol
    return lambda dtype: tol("cuda", dtype)


@pytest.fixture
def on_cuda():
    """on_cuda(value): arrays (also inside tuples) moved onto the cuda device, the rest kept."""
    from tests.ops.test_device_kernels import moved
    return lambda value: moved(value, "cuda")


@pytest.fixture
def matmul_tiles(monkeypatch):
    """matmul_tiles(TILE_M=.., REG_N=.., ...): the cuda matmul's tile constants for this test
    (its kernels are rebuilt for the new shapes)."""
    from ops.cuda import matmul

    def set_tiles(**values):
        for name, value in values.items():
            monkeypatch.setattr(matmul, name, value)
    return set_tiles


@pytest.fixture
def small_tiles(monkeypatch, matmul_tiles):
    """Shrink the matmul tile and the threads per block, to push several blocks and partial
    tiles through the boundary code (kernels are rebuilt for the new shapes)."""
    from ops.cuda import launch
    matmul_tiles(TILE_M=4, TILE_N=4, TILE_K=2, REG_M=2, REG_N=2)
    monkeypatch.setattr(launch, "THREADS", 2)
    monkeypatch.setattr(launch, "ROW_THREADS", 2)
    monkeypatch.setattr(launch, "MAX_BLOCKS", 2)
    monkeypatch.setattr(launch, "MAX_GRID", 2)  # grid-stride past the grid limit


@pytest.fixture
def wide_blocks(monkeypatch):
    """Eight threads per block (the simulator's default is two): deeper reduction trees, rows
    shorter than the block, several threads per output tile."""
    from ops.cuda import launch
    monkeypatch.setattr(launch, "THREADS", 8)
    monkeypatch.setattr(launch, "ROW_THREADS", 8)

"""The kernel registry and backend switch, the threading set-up, and fork safety."""

import os
import subprocess
import sys

import numpy as np
import pytest

import ops
from ops import registry


def test_numba_is_the_default_backend_and_picks_cpu_forms():
    assert ops.get_backend() == "numba"
    for name in ("matmul", "softmax", "cross_entropy", "layer_norm", "attention", "adamw_update"):
        assert ops.implementations(name)[:2] == ["reference", "cpu"], name
        assert ops.kernel(name) is registry._KERNELS[(name, "cpu")]
        assert ops.kernel(name, backend="numpy") is registry._KERNELS[(name, "reference")]


def test_use_backend_switches_per_block_and_restores():
    with ops.use_backend("numpy"):
        assert ops.get_backend() == "numpy"
        assert ops.kernel("softmax") is registry._KERNELS[("softmax", "reference")]
        with ops.use_backend("numba"):
            assert ops.kernel("softmax") is registry._KERNELS[("softmax", "cpu")]
        assert ops.get_backend() == "numpy"
    assert ops.get_backend() == "numba"


@pytest.mark.slow
def test_environment_variable_sets_the_process_backend():
    code = "import ops; print(ops.get_backend(), ops.kernel('softmax').__name__)"
    env = dict(os.environ, ENGINE_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["numpy", "softmax_reference"]


@pytest.mark.slow
def test_bad_backend_and_unknown_kernel_give_clear_errors():
    with pytest.raises(ValueError, match="unknown backend 'torch'"):
        ops.set_backend("torch")
    with pytest.raises(LookupError, match="no kernel named 'softmaxx'"):
        ops.kernel("softmaxx")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        ops.kernel("softmax", device="tpu")
    with pytest.raises(ops.DeviceError, match="device 'cuda' is not available"):
        ops.kernel("softmax", device="cuda")


def test_threading_layer_is_the_chosen_one_and_never_omp():
    import numba

    from ops import runtime

    chosen = runtime.configured()["threading_layer"]  # the conftest configured the process
    ops.kernel("softmax")(np.ones((1024, 512), np.float32))  # big enough to run in parallel
    assert numba.threading_layer() == chosen
    assert chosen in ("tbb", "workqueue")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_after_parallel_kernels_survives_and_computes():
    code = """
import os, numpy as np, ops, ops.runtime
ops.runtime.configure()
a = np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32)
b = np.random.default_rng(1).standard_normal((200, 100)).astype(np.float32)
ops.kernel("matmul")(a, b)
pid = os.fork()
if pid == 0:
    ok = np.allclose(ops.kernel("matmul")(a, b), a @ b, rtol=1e-4, atol=1e-3)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_malloc_is_tuned_on_glibc_and_can_be_turned_off():
    code = "import ops.runtime as r; print(r.configure()['malloc_tuned'])"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        check=True).stdout.strip()
    env = dict(os.environ, ENGINE_MALLOC_TUNING="0")
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert (on, off) == ("True", "False")

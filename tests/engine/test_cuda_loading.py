"""The "cuda" device loads lazily: importing the engine or ops never imports numba.cuda, and
without a GPU or the simulator asking for it is one clear line saying how to get one.
(The cuda tests themselves run in their own process: tests/cuda/conftest.py.)"""

import os
import subprocess
import sys

import pytest


def _run(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**environ, **env}).stdout


@pytest.mark.slow
def test_importing_the_engine_and_ops_does_not_import_numba_cuda():
    out = _run("import sys, engine, ops, engine.functional, engine.models, engine.training\n"
               "print(sorted(m for m in sys.modules if m.startswith('numba.cuda')))")
    assert out.strip() == "[]"


@pytest.mark.slow
def test_cuda_without_a_gpu_or_the_simulator_is_one_clear_line():
    code = ("import ops\n"
            "try:\n    ops.get_device('cuda')\n    print('LOADED')\n"
            "except ops.DeviceError as e:\n    print(e)\n")
    out = _run(code, CUDA_VISIBLE_DEVICES="")  # hides any GPU of this machine
    assert len(out.strip().splitlines()) == 1
    assert out.startswith("device 'cuda' is not available")
    assert 'pip install -e ".[cuda]"' in out and "NUMBA_ENABLE_CUDASIM=1" in out

"""The BLAS thread policy (ops/blas.py): one BLAS thread under the numba backend by default."""

import os
import subprocess
import sys

import pytest

from ops import blas

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PROBE = ("import ops, ops.runtime, json; from ops.blas import blas_info; "
          "ops.runtime.configure(); print(json.dumps(blas_info()))")


@pytest.mark.parametrize("env, want", [({}, 1), ({"ENGINE_BLAS_THREADS": "keep"}, None),
                                       ({"ENGINE_BLAS_THREADS": "3"}, 3),
                                       ({"ENGINE_BACKEND": "numpy"}, None),
                                       ({"ENGINE_BACKEND": "numpy",
                                         "ENGINE_BLAS_THREADS": "2"}, 2)])
def test_threads_wanted(monkeypatch, env, want):
    for name in ("ENGINE_BLAS_THREADS", "ENGINE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert blas.blas_threads_wanted() == want


@pytest.mark.parametrize("bad", ["0", "-1", "many"])
def test_bad_setting_names_the_variable(monkeypatch, bad):
    monkeypatch.setenv("ENGINE_BLAS_THREADS", bad)
    with pytest.raises(ValueError, match="ENGINE_BLAS_THREADS"):
        blas.blas_threads_wanted()


def _threads_after_import(**env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("ENGINE_BLAS_THREADS", "ENGINE_BACKEND", "OPENBLAS_NUM_THREADS",
                         "OMP_NUM_THREADS")}
    run = subprocess.run([sys.executable, "-c", _PROBE], env=full | env, cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120)
    import json
    return [lib["threads"] for lib in json.loads(run.stdout)]


@pytest.mark.slow
def test_configure_limits_blas_under_numba_and_keep_leaves_it():
    limited = _threads_after_import()
    if not limited:
        pytest.skip("threadpoolctl sees no BLAS library in numpy")
    assert limited == [1] * len(limited)
    kept = _threads_after_import(ENGINE_BLAS_THREADS="keep")
    if os.cpu_count() > 1:  # left alone, OpenBLAS uses every core
        assert max(kept) > 1
    assert _threads_after_import(ENGINE_BLAS_THREADS="2") == [2] * len(limited)

"""`attn gradcheck`: the table of gradient checks, in a subprocess and (for a failing check)
in-process."""

import pytest

import cli
from commands import gradcheck_cases
from tests.cli.test_cli import _one_line_error, attn


@pytest.mark.slow
def test_every_op_and_layer_passes_on_the_default_backend():
    r = attn("gradcheck")
    assert r.returncode == 0, r.stderr
    assert "numba backend" in r.stdout and "failed" not in r.stdout
    for name in gradcheck_cases.op_names():
        assert f" {name} " in r.stdout
    assert f"{len(gradcheck_cases.CASES)} of {len(gradcheck_cases.CASES)} checks passed" \
        in r.stdout


@pytest.mark.slow
def test_named_ops_on_the_numpy_backend():
    r = attn("gradcheck", "softmax", "TransformerBlock", "--backend", "numpy")
    assert r.returncode == 0, r.stderr
    assert "numpy backend" in r.stdout and "3 of 3 checks passed" in r.stdout
    assert " attention " not in r.stdout


@pytest.mark.slow
def test_the_strict_device():
    pytest.importorskip("array_api_strict")
    r = attn("gradcheck", "attention", "GRU", "getitem", "--device", "strict")
    assert r.returncode == 0, r.stderr
    assert "gradcheck (strict)" in r.stdout and "5 of 5 checks passed" in r.stdout


@pytest.mark.slow
def test_bad_input():
    _one_line_error(attn("gradcheck", "nope"), "unknown op 'nope'")
    _one_line_error(attn("gradcheck", "--device", "strict", "--backend", "numpy"), "--backend")
    _one_line_error(attn("gradcheck", "--device", "gpu"), "--device")
    r = attn("gradcheck", "--list")
    assert r.returncode == 0 and "softmax" in r.stdout.split()


def test_a_wrong_gradient_fails_the_table(monkeypatch, capsys):
    wrong = gradcheck_cases.Case(
        "wrong", "x * x.detach()", lambda new: (lambda a: a * a.detach(), [new(2, 2)]))
    broken = gradcheck_cases.Case(
        "broken", "raises", lambda new: (lambda a: a @ a, [new(2, 3)]))
    monkeypatch.setattr(gradcheck_cases, "CASES", [*gradcheck_cases.CASES[:2], wrong, broken])
    assert cli.main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "analytic" in out and "ValueError" in out
    assert "2 of 4 checks passed; 2 failed" in out


@pytest.mark.slow
def test_the_cuda_device_unavailable_is_one_line(tmp_path):
    """Here: no GPU and no simulator (tests/cuda/test_cuda_cli_gradcheck.py runs it on one)."""
    import os
    import subprocess
    import sys

    from tests.cli.test_cli import ROOT
    if os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version"):
        pytest.skip("a GPU is visible: the cuda device may load")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "gradcheck", "softmax",
                        "--device", "cuda"], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=300, check=False)
    _one_line_error(r, "--device cuda", "not available", "NUMBA_ENABLE_CUDASIM=1")
    _one_line_error(attn("gradcheck", "--device", "cuda", "--backend", "numba"),
                    "the cuda device has its own")

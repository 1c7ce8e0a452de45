"""`attn info`: versions, threads, the kernel cache, CPU features, CUDA status; numba.cuda
is not imported unless --cuda asks."""

import json
import os
import subprocess
import sys

import pytest

from tests.cli.test_cli import FAST, ROOT, _one_line_error, attn


@pytest.mark.slow
def test_info_table():
    r = attn("info")
    assert r.returncode == 0, r.stderr
    # Table cells wrap at the terminal width: read the text without the borders.
    text = " ".join(r.stdout.translate({ord(c): " " for c in "│┃"}).split())
    for words in ("numpy", "numba", "llvmlite", "rich", "threading layer", "kernel cache",
                  "avx2", "NUMBA_ENABLE_CUDASIM", "--cuda probes"):
        assert words in text, words


@pytest.mark.slow
def test_json_facts_and_a_cold_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}  # an empty cache: cold
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "info", "--json"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert facts["versions"]["numpy"] and facts["threading"]["threads"] >= 1
    assert facts["kernel_cache"] == {**facts["kernel_cache"], "dir": str(tmp_path),
                                     "cached": 0, "warm": False}
    assert set(facts["cpu"]["features"]) >= {"avx2", "avx512f"}
    assert facts["cuda"]["probed"] is False and "available" not in facts["cuda"]
    # the matmul kernel's width follows the CPU; numpy's BLAS runs on one thread (ops/blas.py)
    assert facts["blas"]["vector_bits"] == (512 if facts["cpu"]["features"]["avx512f"] else 256)
    assert all(lib["threads"] == 1 for lib in facts["blas"]["libraries"])


@pytest.mark.slow
def test_numba_cuda_is_not_imported_without_cuda():
    code = ("import sys, io, contextlib, cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert cli.main(['info']) == 0\n"
            "print('numba.cuda' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


@pytest.mark.slow
def test_cuda_probe_under_the_simulator():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "info", "--cuda",
                        "--json"], capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    cuda = json.loads(r.stdout)["cuda"]
    assert cuda["probed"] and cuda["simulator_env"]
    assert cuda["available"] is True or "error" in cuda  # either way, an answer, not a crash


@pytest.mark.slow
def test_bad_flag():
    _one_line_error(attn("info", "--gpu"), "--gpu")


def test_the_first_compile_is_announced_only_on_an_empty_cache(tmp_path, monkeypatch, capsys):
    import cli
    import ops
    from commands import info
    monkeypatch.setattr(info, "kernel_cache", lambda: {"cached": 0})
    with ops.use_backend("numba"):
        assert "the first step compiles the kernels" in info.first_compile_note()
    with ops.use_backend("numpy"):  # no kernels to compile
        assert info.first_compile_note() is None
    # attn train says it before the first step, unless --quiet
    with ops.use_backend("numba"):
        assert cli.main(["train", *FAST, "--out", str(tmp_path / "a")]) == 0
        assert "first run here" in capsys.readouterr().out
        assert cli.main(["train", *FAST, "--quiet", "--out", str(tmp_path / "b")]) == 0
        assert "first run here" not in capsys.readouterr().out
        monkeypatch.setattr(info, "kernel_cache", lambda: {"cached": 1})  # some are cached
        assert info.first_compile_note() is None
        assert cli.main(["train", *FAST, "--out", str(tmp_path / "c")]) == 0
        assert "first run here" not in capsys.readouterr().out

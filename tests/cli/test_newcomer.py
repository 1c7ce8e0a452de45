"""What a new user's first commands touch: nothing optional, and nothing in their process.

A fresh `pip install -e .` has no test extra (array-api-strict), no numba-cuda and no
matplotlib. Each test runs a fresh interpreter in which those modules are blocked
(`sys.modules[name] = None` makes any import of them fail), so a command or module that
reaches for one fails here as it would on the user's machine.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLOCKED = ("array_api_strict", "numba.cuda", "matplotlib", "PIL", "jupytext", "torch")

_BLOCK = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None
"""

_PUBLIC = _BLOCK + """
import importlib, pkgutil
import engine, ops, commands
from ops.devices import OPTIONAL_MODULES
imported = []
for package in (engine, ops, commands):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.startswith(OPTIONAL_MODULES):
            continue
        importlib.import_module(info.name)
        imported.append(info.name)
import cli
statuses = {}
for argv in (["--help"], ["info"], ["info", "--json"],
             *[[name, "--help"] for name in cli.SUBCOMMANDS]):
    try:
        statuses[" ".join(argv)] = cli.main(argv)
    except SystemExit as e:  # argparse's --help exits 0
        statuses[" ".join(argv)] = e.code
import tempfile
out = tempfile.mkdtemp() + "/run"  # a short run and a sample, as the first command does
for argv in (["train", "--steps", "2", "--eval-every", "0", "--eval-examples", "5",
              "--min-len", "3", "--max-len", "4", "--batch-size", "4", "--out", out],
             ["sample", "--ckpt", out, "--num", "2"]):
    statuses[" ".join(argv[:1])] = cli.main(argv)
print("\\n" + json.dumps({"imported": imported, "statuses": statuses}))
""".replace("import importlib", "import importlib, json")


def _run(code, **env):
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, **env}, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.mark.slow
def test_public_modules_and_every_help_run_without_optional_packages():
    out = _run(_PUBLIC)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "engine.training.trainer" in report["imported"]
    assert "ops.attention_cpu" in report["imported"]
    assert "commands.info" in report["imported"]
    assert {"train", "sample", "info", "--help"} <= set(report["statuses"])
    bad = {argv: status for argv, status in report["statuses"].items() if status not in (0, None)}
    assert not bad, (bad, out.stderr[-2000:])
    assert "error" not in out.stderr


_STATE = """
import ctypes, gc, json, os, signal, sys
import numpy as np
import numba
from threadpoolctl import threadpool_info

def state():
    return {"blas": [(i["internal_api"], i["num_threads"]) for i in threadpool_info()],
            "layer": str(numba.config.THREADING_LAYER), "env": dict(os.environ),
            "signals": [str(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)],
            "numpy_err": np.geterr(), "recursion": sys.getrecursionlimit(),
            "gc": [gc.isenabled(), gc.get_threshold()]}

before = state()
loaded = []
_init = ctypes.CDLL.__init__
def spy(self, name, *args, **kwargs):  # libc (mallopt) and libtbb would come through here
    loaded.append(str(name))
    return _init(self, name, *args, **kwargs)
ctypes.CDLL.__init__ = spy
import engine, engine.nn, engine.models, engine.training, engine.data, ops
from engine import Tensor
import engine.functional as F
x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
(x * 2).sum().backward()          # the autograd path runs, no kernel configured anything
ctypes.CDLL.__init__ = _init
after = state()
changed = sorted(k for k in before if before[k] != after[k])
print(json.dumps({"changed": changed, "loaded": loaded, "blas": after["blas"],
                  "layer": after["layer"]}))
"""


@pytest.mark.slow
def test_import_engine_changes_no_process_state():
    out = _run(_STATE, ENGINE_BLAS_THREADS="", OPENBLAS_NUM_THREADS="",
               OMP_NUM_THREADS="")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["changed"] == [], report
    assert report["loaded"] == [], report  # no mallopt, no preloaded TBB


@pytest.mark.slow
def test_configure_is_explicit_and_applies_the_tuning():
    code = _STATE.replace("ctypes.CDLL.__init__ = _init\n",
                          "ctypes.CDLL.__init__ = _init\nimport ops.runtime\n"
                          "print(json.dumps(ops.runtime.configure()))\n")
    out = _run(code, ENGINE_BLAS_THREADS="", OPENBLAS_NUM_THREADS="", OMP_NUM_THREADS="")
    applied = json.loads(out.stdout.strip().splitlines()[-2])
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert applied["threading_layer"] in ("tbb", "workqueue")
    assert report["layer"] == applied["threading_layer"]
    assert "layer" in report["changed"]
    if report["blas"]:  # threadpoolctl sees numpy's BLAS: one thread under the numba backend
        assert {threads for _, threads in report["blas"]} == {1}


@pytest.mark.slow
def test_a_bad_engine_setting_is_one_line_naming_the_variable():
    for name, value in (("ENGINE_BACKEND", "foo"), ("ENGINE_VEC_BITS", "abc"),
                        ("ENGINE_BLAS_THREADS", "abc")):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "info"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False,
                             env={**os.environ, name: value})
        assert out.returncode == 2, (name, out.stderr[-500:])
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("attn: error: " + name), lines

"""`attn info --ops`: every kernel of the registry with its engine callers, its forms per
implementation and its tests, each file:line at the definition it names."""

import json
import os
import re
import subprocess
import sys

import pytest

from commands import op_table
from ops import registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _places(table):
    for entry in table:
        yield from entry["callers"]
        yield from (at for at in entry["forms"].values() if at is not None)


def _cuda_forms(cuda, **env):
    """The cuda column, computed in a fresh interpreter; and whether numba.cuda got imported."""
    code = ("import json, sys; from commands import op_table; t = op_table.op_table(cuda="
            f"{cuda}); print(json.dumps([{{e['kernel']: e['forms']['cuda'] for e in t}}, "
            "'numba.cuda' in sys.modules]))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                       text=True, timeout=300, check=False,
                       env={**os.environ, "PYTHONPATH": ROOT, **env})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def table():
    pytest.importorskip("array_api_strict")  # so ops.strict's forms are in the registry
    return op_table.op_table()


def test_every_registered_kernel_and_form_is_listed(table):
    import ops.strict
    kernels = {e["kernel"]: e for e in table}
    assert set(ops.names()) <= set(kernels)
    for name in ops.names():
        for impl in ops.implementations(name):
            assert kernels[name]["forms"][impl] is not None, (name, impl)


def test_every_place_is_the_line_defining_what_it_names(table):
    places = list(_places(table))
    assert len(places) > 2 * len(table)
    for at in places:
        with open(os.path.join(ROOT, at["file"]), encoding="utf-8") as f:
            line = f.read().splitlines()[at["line"] - 1]
        name = at["name"].split(".")[-1]
        assert re.match(rf"\s*(async\s+)?(def|class)\s+{name}\b", line), (at, line)


def test_callers_and_tests_are_found(table):
    softmax = next(e for e in table if e["kernel"] == "softmax")
    assert [c["name"] for c in softmax["callers"]] == ["Softmax"]
    assert "tests/ops/test_softmax_kernels.py" in softmax["tests"]
    for entry in table:
        for test in entry["tests"]:
            with open(os.path.join(ROOT, test), encoding="utf-8") as f:
                text = f.read()
            words = [entry["kernel"], *(c["name"] for c in entry["callers"])]
            assert any(re.search(rf"\b{w}\b", text) for w in words), (entry["kernel"], test)


def test_a_missing_form_shows_as_missing(monkeypatch, capsys):
    def only_a_reference(x):
        return x

    monkeypatch.setattr(registry, "_KERNELS", dict(registry._KERNELS))
    registry.register("zz_only_a_reference", "reference", only_a_reference)
    entry = next(e for e in op_table.op_table() if e["kernel"] == "zz_only_a_reference")
    made_here = entry["forms"]["reference"]  # a local function: the function making it
    assert made_here["name"] == "test_a_missing_form_shows_as_missing", made_here
    assert {k for k, v in entry["forms"].items() if v is None} == {"cpu", "cuda", "strict"}
    assert entry["callers"] == [] and entry["tests"] == ["tests/cli/test_op_table.py"]
    op_table.print_table([entry])
    rows = [" ".join(line.translate({ord(c): " " for c in "│┃"}).split())
            for line in capsys.readouterr().out.splitlines()]
    for impl in ("cpu", "cuda", "strict"):  # a device falls back to the reference: said so
        assert f"{impl} missing the reference runs" in rows
    assert "zz_only_a_reference called by missing" in rows


def test_the_cuda_column_without_numba_cuda_matches_the_registry():
    read, imported = _cuda_forms(False)
    assert not imported  # read from ops/cuda/*.py with ast
    assert read["softmax"]["file"].startswith("ops/cuda/")
    registered, imported = _cuda_forms(True, NUMBA_ENABLE_CUDASIM="1")
    assert imported
    assert read == registered

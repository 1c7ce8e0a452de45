"""ops.warm: the background compile on a cold start, and its manifest."""

import json
import os
import subprocess
import sys

import pytest
from numba.core import types

from ops import warm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("t", [
    types.int64, types.float32, types.boolean, types.Array(types.float32, 2, "C"),
    types.Array(types.int64, 1, "C", readonly=True), types.UniTuple(types.int64, 4),
    types.Tuple((types.int64, types.float64)),
    types.UniTuple(types.Array(types.float64, 1, "C"), 3)])
def test_types_survive_the_manifest(t):
    assert warm.decode(warm.encode(t)) == t


@pytest.mark.parametrize("text", ["__import__('os')", "Array.__class__", "open('x')",
                                  "float32 + 1"])
def test_the_manifest_is_parsed_not_evaluated(text):
    with pytest.raises(ValueError, match="not a kernel argument type"):
        warm.decode(text)


def test_manifest_names_only_ops_kernels():
    manifest = json.loads(warm.MANIFEST.read_text())
    assert sorted(manifest) == sorted(warm.ORDER)
    with pytest.raises(ValueError, match="not an ops kernel"):
        warm._target("os", "system")


def test_a_missing_or_broken_manifest_never_stops_training(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_PRECOMPILE", "1")
    monkeypatch.setattr(warm, "MANIFEST", tmp_path / "absent.json")
    assert warm.start_background() is None
    (tmp_path / "absent.json").write_text('{"optimizer": [["ops.optim", "nope", []]]}')
    assert warm.start_background() is None


def test_off_when_asked(monkeypatch):
    monkeypatch.setenv("ENGINE_PRECOMPILE", "0")
    assert warm.start_background() is None


@pytest.mark.slow
def test_precompiled_cache_serves_a_whole_training_step(tmp_path):
    # ops.warm on an empty cache, then a training step, its evaluation and greedy decoding
    # in a fresh process: nothing may be left to compile, and what it called must be what
    # the manifest lists (else the manifest is stale: scripts/warm_manifest.py rewrites it)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=ROOT)
    subprocess.run([sys.executable, "-m", "ops.warm"], cwd=ROOT, env=env, check=True,
                   timeout=600)
    out = subprocess.run([sys.executable, "scripts/warm_manifest.py", "--child"], cwd=ROOT,
                         env=env, check=True, capture_output=True, text=True, timeout=600)
    record = json.loads(out.stdout)
    assert record["compiled"] == []
    assert record["manifest"] == json.loads(warm.MANIFEST.read_text())


def test_start_background_only_on_a_cold_cache_with_a_spare_core(monkeypatch):
    monkeypatch.delenv("ENGINE_PRECOMPILE", raising=False)
    started = []
    monkeypatch.setattr(warm.subprocess, "Popen", lambda *a, **k: started.append(a) or "p")
    monkeypatch.setattr(warm, "_spare_core", lambda: True)
    monkeypatch.setattr(warm, "_cold", lambda: False)
    assert warm.start_background() is None and not started
    monkeypatch.setattr(warm, "_cold", lambda: True)
    assert warm.start_background() == "p"
    assert started[0][0][1:] == ["-m", "ops.warm"]
    monkeypatch.setattr(warm, "_spare_core", lambda: False)  # busy cores: not started...
    assert warm.start_background() is None and len(started) == 1
    monkeypatch.setenv("ENGINE_PRECOMPILE", "1")  # ...unless asked for
    assert warm.start_background() == "p" and len(started) == 2


def test_spare_core_reads_idle_time_or_the_load(monkeypatch):
    monkeypatch.setattr(warm.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(warm, "_idle_cores", lambda: 1.4)
    assert warm._spare_core()
    monkeypatch.setattr(warm, "_idle_cores", lambda: 0.3)
    assert not warm._spare_core()
    monkeypatch.setattr(warm, "_idle_cores", lambda: None)  # no /proc/stat: the load average
    monkeypatch.setattr(warm.os, "getloadavg", lambda: (0.3, 0.0, 0.0))
    assert warm._spare_core()
    monkeypatch.setattr(warm.os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    assert not warm._spare_core()
    monkeypatch.setattr(warm.os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(warm, "_idle_cores", lambda: 1.0)
    assert not warm._spare_core()


def test_idle_cores_counts_cores_worth_of_idle_time():
    idle = warm._idle_cores(0.05)
    assert idle is None or 0 <= idle <= (os.cpu_count() or 1) + 1e-9

"""The hostile-user probes, run as a user would (`python cli.py` in a subprocess):
each refusal is exit 2 with exactly one line on stderr, and leaves an earlier checkpoint as it
was; two real runs into one directory, a reader during saves, and SIGTERM."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import cli
from engine.training import checkpoint
from tests.cli.test_cli import FAST, ROOT, _one_line_error, attn


def _files(path):
    """The checkpoint's files and their bytes (the run lock's pid aside)."""
    return {name: (path / name).read_bytes() for name in sorted(os.listdir(path))
            if name != ".lock"}


@pytest.mark.slow
def test_refusals_are_one_line_and_leave_the_checkpoint_alone(ckpt_copy, tmp_path):
    before = _files(ckpt_copy)
    ck = str(ckpt_copy)
    _one_line_error(attn("train", "--out", ck, "--resume", "--config", "small"),
                    "config 'small' differs from the checkpoint's 'tiny'")
    _one_line_error(attn("train", "--out", ck, "--resume", "--steps", "1"),
                    "already at step 2")
    _one_line_error(attn("sample", "--ckpt", str(ckpt_copy / "config.json")), "is a file")
    _one_line_error(attn("sample", "--ckpt", ck, "--num", "10000000000000"),
                    "--num of 10,000,000,000,000 examples needs about", "available")
    assert _files(ckpt_copy) == before


@pytest.mark.slow
def test_bad_settings_are_one_line_before_any_work(tmp_path):
    out = tmp_path / "o"
    _one_line_error(attn("train", *FAST, "--seed", "-1", "--out", str(out)), "--seed", ">= 0")
    _one_line_error(attn("train", *FAST, "--batch-size", "10000000000000", "--out", str(out)),
                    "batch size 10000000000000 needs about", "of memory")
    _one_line_error(attn("train", *FAST, "--out", "/proc/nope"), "cannot save checkpoints")
    r = attn("train", *FAST, "--lr", "1e308", "--out", str(out))  # diverges: exit 1, one line
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "RuntimeWarning" not in r.stderr and "training stopped at step 1" in r.stderr


@pytest.mark.slow
def test_absurd_config_json_or_nan_weights_are_one_line(ckpt_copy, tmp_path):
    nan = shutil.copytree(ckpt_copy, tmp_path / "nan")
    path = ckpt_copy / "config.json"
    doc = json.loads(path.read_text())
    doc["config"]["model"]["n_embd"] = 10**9
    path.write_text(json.dumps(doc))
    _one_line_error(attn("sample", "--ckpt", str(ckpt_copy)), "needs about", "of memory")
    with np.load(nan / "model.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["lm_head.weight"][0, 0] = np.nan
    np.savez(nan / "model.npz", **arrays)
    _one_line_error(attn("sample", "--ckpt", str(nan)), "tensor lm_head.weight holds NaN")


@pytest.mark.slow
def test_help_lists_what_may_change_on_resume():
    text = " ".join(attn("train", "--help").stdout.split())
    assert ("only --steps, --batch-size, --lr, --eval-every, --eval-examples, --ckpt-every "
            "and --device may change") in text


def test_without_out_each_run_is_fresh_and_sample_takes_the_newest(tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.chdir(tmp_path)  # in process: runs/ lands in tmp_path
    for expected in ("runs/reverse", "runs/reverse-2"):
        assert cli.main(["train", *FAST, "--quiet"]) == 0
        assert capsys.readouterr().out.splitlines()[0] == f"run directory: {expected}"
    os.utime(tmp_path / "runs" / "reverse-2" / "config.json", ns=(0, 10**9))  # older now
    assert cli.main(["sample", "--num", "1"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--steps", "3", "--quiet"]) == 0  # the newest
    assert checkpoint.load(tmp_path / "runs" / "reverse").train_state["step"] == 3
    assert cli.main(["sample", "--task", "sort"]) == 2
    assert "no checkpoint under 'runs/sort'" in capsys.readouterr().err


def _wait_for(condition, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_runs_one_directory_a_reader_during_saves_and_sigterm(tmp_path):
    out = tmp_path / "run"
    writer = subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), "train", *FAST,
                               "--steps", "100000", "--ckpt-every", "1", "--quiet",
                               "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (out / "config.json").exists() or writer.poll() is not None)
        assert writer.poll() is None, writer.communicate()
        second = attn("train", "--out", str(out), "--resume", "--steps", "200000")
        _one_line_error(second, "is in use by another training run", f"(process {writer.pid})")
        # a new run is refused too: by the lock, or by the checkpoint already saved
        second = attn("train", *FAST, "--out", str(out))
        assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1
        assert ("in use by another training run" in second.stderr
                or "already holds a checkpoint" in second.stderr), second.stderr
        steps = set()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # every read is whole, though saves go on
            steps.add(checkpoint.load(out).train_state["step"])
        assert len(steps) > 1
        writer.send_signal(signal.SIGTERM)
        _, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 130 and err.strip() == "attn train: error: interrupted"
    saved = checkpoint.load(out)
    assert saved.train_state["interrupted"] and saved.train_state["step"] >= max(steps)
    assert not checkpoint.writer_active(out)
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


@pytest.mark.parametrize("flag", ["--batch-size", "--eval-examples"])
def test_huge_sizes_in_process_are_one_line(flag, capsys, tmp_path):
    assert cli.main(["train", *FAST, flag, "10000000000000", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "needs about" in err

"""Tests of the `attn` command line, run as a user would: `python cli.py ...` in a subprocess."""

import os
import subprocess
import sys

import pytest

import cli
from engine.training import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Short sequences and few steps: these tests check the plumbing, not the learning.
FAST = ["--steps", "2", "--eval-every", "0", "--eval-examples", "10", "--min-len", "3",
        "--max-len", "5", "--batch-size", "8"]


def attn(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), *args],
                          capture_output=True, text=True, cwd=cwd or ROOT, timeout=300,
                          check=False)


def _one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


def test_train_then_resume_then_sample(tmp_path):
    out = str(tmp_path / "run")
    r = attn("train", *FAST, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "final" in r.stdout and "exact match" in r.stdout and "attn sample" in r.stdout
    assert checkpoint.load(out).train_state["step"] == 2

    _one_line_error(attn("train", *FAST, "--out", out), "already holds a checkpoint")
    r = attn("train", "--out", out, "--resume", "--steps", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    ck = checkpoint.load(out)
    assert ck.train_state["step"] == 3
    assert ck.config["train"]["batch_size"] == 8  # saved settings kept on resume

    r = attn("sample", "--ckpt", out)
    assert r.returncode == 0, r.stderr
    assert "expected" in r.stdout and r.stdout.count("=") >= 5  # five held-out problems
    r = attn("sample", "--ckpt", out, "--prompt", "314", "--temperature", "0.8", "--top-k", "3")
    assert r.returncode == 0, r.stderr
    assert "314=" in r.stdout and "413." in r.stdout


def test_text_train_and_sample(tmp_path):
    text = tmp_path / "words.txt"
    text.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    out = str(tmp_path / "t")
    r = attn("train", "--text", str(text), "--steps", "2", "--eval-every", "0",
             "--batch-size", "4", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    r = attn("sample", "--ckpt", out, "--prompt", "the ", "--tokens", "30", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("the ") and len(r.stdout.strip()) >= 20
    _one_line_error(attn("sample", "--ckpt", out, "--prompt", "XYZ"), "not in the vocabulary")


def test_bad_flag_is_one_line_exit_2():
    _one_line_error(attn("train", "--no-such-flag"), "--no-such-flag")
    _one_line_error(attn("train", "--steps", "-3"), "--steps")
    _one_line_error(attn("train", "--task", "multiply"), "--task")
    _one_line_error(attn("frobnicate"), "frobnicate")
    _one_line_error(attn(), "choose a command")


def test_missing_text_file_exit_2(tmp_path):
    missing = str(tmp_path / "missing.txt")
    _one_line_error(attn("train", "--text", missing, "--out", str(tmp_path / "o")),
                    "missing.txt", "does not exist")


def test_missing_or_broken_checkpoint_exit_2(tmp_path):
    _one_line_error(attn("sample", "--ckpt", str(tmp_path / "nope")), "nope", "does not exist")
    _one_line_error(attn("train", "--resume", "--out", str(tmp_path / "nope")), "nope")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    _one_line_error(attn("sample", "--ckpt", str(broken)), "config.json", "corrupted")


def test_main_in_process_uses_the_subcommand_table(capsys):
    assert set(cli.SUBCOMMANDS) >= {"train", "sample"}
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sample", "--top-k", "zero"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--top-k" in err


def test_bench_bad_flag_is_one_line_exit_2():
    result = attn("bench", "kernels", "--no-such-flag")
    _one_line_error(result, "bench", "--no-such-flag")

"""Tests of the `attn` command line, run as a user would: `python cli.py ...` in a subprocess."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import cli
from engine.training import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORMAT1 = os.path.join(ROOT, "tests", "training", "data", "format1")  # see its test file
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_bad_flag_is_one_line_exit_2():
    _one_line_error(attn("train", "--no-such-flag"), "--no-such-flag")
    _one_line_error(attn("train", "--steps", "-3"), "--steps")
    _one_line_error(attn("train", "--task", "multiply"), "--task")
    _one_line_error(attn("frobnicate"), "frobnicate")
    _one_line_error(attn(), "choose a command")


@pytest.mark.slow
def test_missing_text_file_exit_2(tmp_path):
    missing = str(tmp_path / "missing.txt")
    _one_line_error(attn("train", "--text", missing, "--out", str(tmp_path / "o")),
                    "missing.txt", "does not exist")


@pytest.mark.slow
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


@pytest.mark.slow
def test_bench_bad_flag_is_one_line_exit_2():
    result = attn("bench", "kernels", "--no-such-flag")
    _one_line_error(result, "bench", "--no-such-flag")


@pytest.mark.slow
def test_model_and_device_flags(tmp_path):
    out = str(tmp_path / "g")
    r = attn("train", *FAST, "--model", "gpt", "--device", "cpu", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    ck = checkpoint.load(out)
    assert ck.family == "gpt" and ck.config["train"]["device"] == "cpu"
    rows = (tmp_path / "g" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["kind"] for x in rows] == ["train", "train", "final"]
    _one_line_error(attn("train", *FAST, "--device", "cuda", "--out", str(tmp_path / "c")),
                    "device 'cuda' is not available")
    _one_line_error(attn("train", *FAST, "--device", "tpu", "--out", str(tmp_path / "t")),
                    "unknown device 'tpu'", "cpu")
    _one_line_error(attn("train", "--model", "rnn"), "--model", "'gpt'")
    assert not (tmp_path / "c").exists() and not (tmp_path / "t").exists()


@pytest.mark.slow
def test_resume_keeps_the_saved_device(tmp_path):
    out = str(tmp_path / "s")
    r = attn("train", *FAST, "--device", "strict", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    r = attn("train", "--out", out, "--resume", "--steps", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    ck = checkpoint.load(out)
    assert ck.train_state["step"] == 3 and ck.config["train"]["device"] == "strict"


@pytest.mark.slow
def test_help_names_the_families_and_the_device():
    r = attn("train", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "--model {gpt,seq2seq-gru,seq2seq-transformer,vit}" in text
    assert "--device NAME" in text and "(default cpu;" in text


@pytest.mark.slow
def test_format_1_checkpoint_samples_and_resumes(tmp_path):
    out = str(tmp_path / "f1")
    shutil.copytree(FORMAT1, out)
    r = attn("sample", "--ckpt", out, "--num", "3")
    assert r.returncode == 0, r.stderr
    # the rows the format-1 code printed for this checkpoint
    cells = [[c.strip() for c in line.split("│")[1:4]] for line in r.stdout.splitlines()]
    assert [c for c in cells if c] == [["928=", "213.", "829."], ["15949=", "213.", "94951."],
                                       ["20907=", "213.", "70902."]], r.stdout
    r = attn("train", "--out", out, "--resume", "--steps", "4", "--quiet")
    assert r.returncode == 0, r.stderr
    ck = checkpoint.load(out)
    assert ck.format == 2 and ck.train_state["step"] == 4
    rows = [json.loads(x) for x in (tmp_path / "f1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [0, 1, 2, 3]

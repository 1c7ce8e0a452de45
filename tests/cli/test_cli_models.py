"""The attention family from the command line: `attn train --model ...` and `attn sample` for
the seq2seq models (with --attention) and the ViT (held-out images, an image file)."""

import numpy as np
import pytest

from tests.cli.test_cli import _one_line_error, attn

FAST = ["--steps", "2", "--eval-every", "0", "--eval-examples", "10", "--batch-size", "8"]


@pytest.mark.slow
def test_seq2seq_train_resume_and_sample_with_attention(tmp_path):
    out = str(tmp_path / "gru")
    r = attn("train", "--model", "seq2seq-gru", *FAST, "--min-len", "3", "--max-len", "5",
             "--out", out)
    assert r.returncode == 0, r.stderr
    assert "Seq2SeqGRU tiny" in r.stdout and "exact match" in r.stdout
    r = attn("train", "--resume", "--out", out, "--steps", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    r = attn("sample", "--ckpt", out, "--prompt", "123", "--attention")
    assert r.returncode == 0, r.stderr
    assert "123=" in r.stdout and "what each answer token attended to" in r.stdout
    heat = r.stdout.split("attended to")[1].strip().splitlines()
    assert heat[0].split() == ["_", "_", "1", "2", "3"]  # the input field labels the columns


@pytest.mark.slow
def test_vit_train_and_classify_held_out_and_a_file(tmp_path):
    out = str(tmp_path / "vit")
    r = attn("train", "--model", "vit", "--task", "glyphs", *FAST, "--out", out)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "ViT tiny" in text and "accuracy" in text and "logistic regression on the pixels" in text
    r = attn("sample", "--ckpt", out, "--num", "2", "--attention")
    assert r.returncode == 0, r.stderr
    assert "class token attention" in r.stdout
    img = np.zeros((16, 16), np.float32)
    img[4:12, 7:9] = 1.0
    np.save(tmp_path / "bar.npy", img)
    r = attn("sample", "--ckpt", out, "--image", str(tmp_path / "bar.npy"))
    assert r.returncode == 0, r.stderr
    (tmp_path / "bad.pgm").write_bytes(b"P5\n4 4\n255\n" + bytes(16))
    _one_line_error(attn("sample", "--ckpt", out, "--image", str(tmp_path / "bad.pgm")),
                    "bad.pgm", "4x4", "16x16")


@pytest.mark.slow
def test_a_model_that_does_not_fit_the_data_is_one_line(tmp_path):
    _one_line_error(attn("train", "--model", "vit", "--task", "reverse", *FAST, "--out",
                         str(tmp_path / "a")), "task 'reverse'", "image task")
    _one_line_error(attn("train", "--model", "seq2seq-transformer", "--task", "glyphs", *FAST,
                         "--out", str(tmp_path / "b")), "input and an answer")


@pytest.mark.slow
def test_bad_prompts_and_other_families_are_one_line(tmp_path):
    out = str(tmp_path / "s2s")
    r = attn("train", "--model", "seq2seq-transformer", *FAST, "--min-len", "2", "--max-len",
             "4", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    _one_line_error(attn("sample", "--ckpt", out, "--prompt", "12a"), "12a", "digits")
    _one_line_error(attn("train", "--resume", "--model", "vit", "--out", out),
                    "seq2seq-transformer", "vit")
    _one_line_error(attn("sample", "--ckpt", out, "--image", "x.npy"), "--image needs an image")


def test_default_run_directories_name_the_family(tmp_path, monkeypatch, capsys):
    import cli
    monkeypatch.chdir(tmp_path)  # in process: runs/ lands in tmp_path
    args = ["--model", "seq2seq-gru", *FAST, "--min-len", "2", "--max-len", "3", "--quiet"]
    assert cli.main(["train", *args]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "run directory: runs/reverse-seq2seq-gru"
    assert cli.main(["sample", "--model", "seq2seq-gru", "--num", "1"]) == 0
    assert "task reverse" in capsys.readouterr().out
    assert cli.main(["sample", "--num", "1"]) == 2  # no GPT run of reverse yet
    assert "no checkpoint under 'runs/reverse'" in capsys.readouterr().err


@pytest.mark.slow
def test_each_family_trains_on_its_own_task_by_default(tmp_path, monkeypatch, capsys):
    import cli
    from engine.training import checkpoint
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--model", "vit", *FAST, "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "run directory: runs/glyphs"
    assert checkpoint.load("runs/glyphs").config["train"]["task"] == "glyphs"
    assert cli.main(["sample", "--model", "vit", "--num", "1"]) == 0  # finds runs/glyphs
    assert "glyphs" in capsys.readouterr().out


def test_quiet_keeps_only_the_result_line_and_the_checkpoint(tmp_path, capsys):
    import cli
    out = str(tmp_path / "q")
    args = ["--model", "seq2seq-gru", *FAST, "--eval-every", "1", "--min-len", "2",
            "--max-len", "3", "--out", out]
    assert cli.main(["train", *args, "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines  # no header, no per-evaluation lines, no bar
    assert lines[0].startswith("final step      2  val loss ") and "exact match" in lines[0]
    assert lines[1] == f"checkpoint: {out}"

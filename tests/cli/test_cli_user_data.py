"""`attn train --pairs FILE.tsv` and `attn train --images PATH`, then `attn sample` on them;
bad files are one line naming the file and line."""

import numpy as np
import pytest

from engine.data import save_pgm
from tests.cli.test_cli import _one_line_error, attn
from tests.cli.test_cli_models import FAST


def _pairs(tmp_path):
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdé"), rng.integers(2, 6))) for _ in range(80)]
    path = tmp_path / "rev.tsv"
    path.write_text("\n".join(f"{w}\t{w[::-1]}" for w in words) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_seq2seq_trains_on_a_pairs_file_and_translates_with_attention(tmp_path):
    out, path = str(tmp_path / "run"), _pairs(tmp_path)
    r = attn("train", "--model", "seq2seq-gru", "--pairs", path, *FAST, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "exact match" in r.stdout and "char accuracy" in r.stdout
    assert f"on pairs {path}" in " ".join(r.stdout.split())
    r = attn("sample", "--ckpt", out, "--prompt", "abé", "--attention")
    assert r.returncode == 0, r.stderr
    assert "abé" in r.stdout and "what each answer character attended to" in r.stdout
    heat = r.stdout.split("attended to")[1].strip().splitlines()
    assert heat[0].split() == ["a", "b", "é"]  # the source labels the columns
    r = attn("sample", "--ckpt", out, "--num", "2")
    assert r.returncode == 0 and "expected" in r.stdout, r.stderr
    _one_line_error(attn("sample", "--ckpt", out, "--image", "x.npy"), "--image needs an image")


@pytest.mark.slow
def test_the_gpt_takes_the_same_pairs_file(tmp_path):
    out = str(tmp_path / "gpt")
    r = attn("train", "--pairs", _pairs(tmp_path), *FAST, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    r = attn("sample", "--ckpt", out, "--prompt", "ab")
    assert r.returncode == 0 and "ab" in r.stdout, r.stderr


@pytest.mark.slow
def test_bad_pairs_files_are_one_line_with_the_line_number(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"ab\tba\nno tab here\n")
    _one_line_error(attn("train", "--model", "seq2seq-transformer", "--pairs", str(bad), *FAST,
                         "--out", str(tmp_path / "a")), "bad.tsv:2", "needs one tab")
    bad.write_bytes(b"ab\tba\n\xff\xfe\tx\n")
    _one_line_error(attn("train", "--pairs", str(bad), *FAST, "--out", str(tmp_path / "b")),
                    "bad.tsv:2", "not UTF-8")


@pytest.mark.slow
def test_vit_trains_on_an_image_folder_and_names_the_class_of_a_file(tmp_path):
    rng = np.random.default_rng(0)
    for k, name in enumerate(["dark", "light"]):
        (tmp_path / "set" / name).mkdir(parents=True)
        for i in range(30):
            save_pgm(tmp_path / "set" / name / f"{i}.pgm", rng.random((8, 8)) * 0.4 + 0.5 * k)
    out = str(tmp_path / "vit")
    r = attn("train", "--model", "vit", "--images", str(tmp_path / "set"), *FAST,
             "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    np.save(tmp_path / "x.npy", np.full((8, 8), 0.9, np.float32))
    r = attn("sample", "--ckpt", out, "--image", str(tmp_path / "x.npy"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().split(": ")[-1] in ("dark", "light")
    r = attn("sample", "--ckpt", out, "--num", "2", "--attention")
    assert r.returncode == 0 and "class token attention" in r.stdout, r.stderr
    np.save(tmp_path / "big.npy", np.zeros((16, 16), np.float32))
    _one_line_error(attn("sample", "--ckpt", out, "--image", str(tmp_path / "big.npy")),
                    "big.npy", "8x8")


@pytest.mark.slow
def test_resuming_on_a_changed_pairs_file_is_refused(tmp_path):
    out, path = str(tmp_path / "run"), _pairs(tmp_path)
    r = attn("train", "--model", "seq2seq-transformer", "--pairs", path, *FAST, "--out", out,
             "--quiet")
    assert r.returncode == 0, r.stderr
    with open(path, "a", encoding="utf-8") as f:
        f.write("abcdeabcdeab\tbaedcbaedcba\n")  # same characters, a longer source
    _one_line_error(attn("train", "--resume", "--out", out, "--steps", "3"), "rev.tsv",
                    "changed")

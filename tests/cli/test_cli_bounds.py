"""`attn` refuses what it cannot honour in one line (exit 2), in process: empty paths, data
a model family cannot take (leaving no directory behind), sample flags the checkpoint's
model ignores or cannot decode, and a config.json whose data does not fit its model."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

import cli
from commands import CliError
from commands.sample import MAX_TOKENS, check_sample_args
from engine.data import GlyphImages, SyntheticTask, Vocab
from engine.models.generate import generate
from engine.training import TrainConfig, train
from tests.training.test_data_bounds import TEXT_RUN


def _error(capsys, argv, *words, status=2):
    assert cli.main(argv) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    for word in words:
        assert word in err[0], err[0]


def test_an_empty_out_or_ckpt_is_refused(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--out", "", "--steps", "1"])
    assert e.value.code == 2 and "expected a path, got ''" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sample", "--ckpt", " "])


def test_a_family_that_cannot_take_the_task_is_one_line_and_leaves_nothing(capsys, tmp_path):
    out = tmp_path / "o"
    _error(capsys, ["train", "--model", "gpt", "--task", "glyphs", "--out", str(out)],
           "needs token data", "--model vit")
    assert not out.exists()


def test_sample_refuses_a_data_kind_its_model_cannot_take(capsys, ckpt_copy):
    path = ckpt_copy / "config.json"
    doc = json.loads(path.read_text())
    doc["config"]["data"] = {"kind": "images", "image_size": 8, "seed": 0}
    path.write_text(json.dumps(doc))
    _error(capsys, ["sample", "--ckpt", str(ckpt_copy)], "describes no usable model or data")


def test_sample_refuses_absurd_token_counts(capsys, ckpt_copy):
    _error(capsys, ["sample", "--ckpt", str(ckpt_copy), "--tokens", "1000000000"],
           f"--tokens 1000000000 is more than {MAX_TOKENS:,}")


def _args(**given):
    return SimpleNamespace(**{"prompt": None, "tokens": None, "attention": False, **given})


def test_sample_flags_the_model_would_ignore_are_refused():
    images, task = GlyphImages(image_size=8), SyntheticTask("reverse")
    model = SimpleNamespace(config=SimpleNamespace())
    with pytest.raises(CliError, match="--prompt applies to token models"):
        check_sample_args(_args(prompt="12"), model, images)
    with pytest.raises(CliError, match="--attention .* a text model"):
        check_sample_args(_args(attention=True), model, Vocab("ab"))
    seq2seq = SimpleNamespace(config=SimpleNamespace(max_tgt_len=64))
    with pytest.raises(CliError, match="--tokens 200 is more than 64 .*max_tgt_len"):
        check_sample_args(_args(tokens=200), seq2seq, task)
    check_sample_args(_args(tokens=64, attention=True, prompt="12"), seq2seq, task)


def test_sample_attention_on_a_text_checkpoint_is_refused(capsys, tmp_path):
    book, out = tmp_path / "book.txt", tmp_path / "run"
    book.write_text("abcd efgh\n" * 30)
    train(TrainConfig(text=str(book), out_dir=str(out), **TEXT_RUN), progress=False)
    _error(capsys, ["sample", "--ckpt", str(out), "--attention"], "a text model")


class _FixedLogits:
    """A stand-in token model whose next-token logits are always `row` (V,)."""

    training = False

    def __init__(self, row):
        self.row = np.asarray(row, dtype=np.float32)

    def eval(self):
        pass

    def train(self, mode=True):
        pass

    def decoder(self, batch_size, use_cache):
        return SimpleNamespace(next_logits=lambda tokens: np.tile(self.row, (len(tokens), 1)))


def test_decoding_stops_at_the_stop_token():
    out = generate(_FixedLogits([0, 0, 5, 0]), np.zeros((2, 3), np.int64), 10**9,
                   greedy=True, stop_token=2)
    assert out.tolist() == [[0, 0, 0, 2], [0, 0, 0, 2]]


@pytest.mark.parametrize("row", [[0, np.nan, 1], [0, np.inf, 1], [-np.inf] * 3])
@pytest.mark.parametrize("greedy", [True, False])
def test_non_finite_logits_never_become_tokens(row, greedy):
    with pytest.raises(FloatingPointError, match="not finite"):
        generate(_FixedLogits(row), np.zeros((1, 2), np.int64), 3, greedy=greedy, rng=0)
    generate(_FixedLogits([0, -np.inf, 1]), np.zeros((1, 2), np.int64), 3, greedy=greedy,
             rng=0)  # a masked token is fine


def test_flipping_tie_weights_in_config_json_does_not_drop_a_saved_array(capsys, ckpt_copy):
    path = ckpt_copy / "config.json"
    doc = json.loads(path.read_text())
    doc["config"]["model"]["tie_weights"] = True  # the saved model is untied
    path.write_text(json.dumps(doc))
    _error(capsys, ["sample", "--ckpt", str(ckpt_copy)], "does not fit the model",
           "one tied parameter")


@pytest.mark.parametrize("argv, words", [
    (["graph", "1/0"], "1/0: division by zero"),
    (["graph", "0 ** -1"], "0 ** -1:"),
    (["bench", "kernels", "--only", "NOSUCH"], "--only 'NOSUCH' matches no kernel"),
])
def test_arithmetic_and_unknown_names_are_one_line(capsys, argv, words):
    _error(capsys, argv, words)


def test_gradcheck_refuses_a_negative_seed(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["gradcheck", "--seed", "-1", "softmax"])
    assert e.value.code == 2 and "expected an integer >= 0, got -1" in capsys.readouterr().err


def _metrics_line(ck, line):
    """Replace the last row of ck's metrics.jsonl by `line`, keeping the byte count the
    checkpoint records (so only the row's meaning is wrong)."""
    path = ck / "metrics.jsonl"
    rows = path.read_bytes().splitlines(keepends=True)
    size = len(rows[-1]) - 1
    rows[-1] = line.ljust(size).encode() + b"\n"
    path.write_bytes(b"".join(rows))


@pytest.mark.parametrize("line", ['[1]', '{"step":3}', '{"kind":"eval","step":-1}',
                                  '{"kind":"final","step":2,"val_loss":"x"}',
                                  '{"kind":"final","step":2,"val_loss":1,"exact_match":1}'])
def test_metrics_lines_that_are_json_but_not_rows_are_one_line(capsys, ckpt_copy, tmp_path,
                                                               line, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # the listing's cells on one line each
    _metrics_line(ckpt_copy, line)
    _error(capsys, ["train", "--resume", "--out", str(ckpt_copy), "--steps", "3"],
           "is not a metrics row")
    _error(capsys, ["runs", str(ckpt_copy)], "is not a metrics row")
    root = tmp_path / "root"
    root.mkdir()
    ckpt_copy.rename(root / "bad")
    assert cli.main(["runs", "--root", str(root)]) == 0  # one bad run is a row of the list
    out = " ".join(capsys.readouterr().out.split())
    assert "unreadable" in out and "not a metrics row" in out


def test_deeply_nested_json_in_config_json_is_one_line(capsys, ckpt_copy):
    (ckpt_copy / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    _error(capsys, ["sample", "--ckpt", str(ckpt_copy)], "nested too deeply")
    _error(capsys, ["runs", str(ckpt_copy)], "nested too deeply")


def test_one_bad_run_is_a_row_of_the_runs_listing(capsys, ckpt_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(ckpt_copy, root / "good")
    doc = json.loads((ckpt_copy / "config.json").read_text())
    doc["config"]["train"]["steps"] = "many"
    (ckpt_copy / "config.json").write_text(json.dumps(doc))
    ckpt_copy.rename(root / "bad")
    assert cli.main(["runs", "--root", str(root)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "unreadable" in out and "steps must be a positive integer" in out
    assert "2/2" in out  # the good run is listed with its steps


def test_numba_num_threads_0_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "0")
    assert cli.main(["info"]) == 2
    assert capsys.readouterr().err.strip() == (
        "attn: error: NUMBA_NUM_THREADS='0': use a positive number of threads, or unset it")

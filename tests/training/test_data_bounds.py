"""What a run reads is bounded and checked: text files (regular, at most MAX_TEXT_BYTES, the
same contents on resume), held-out sets of distinct problems, and no empty paths."""

import pytest

from engine.data import DataError, SyntheticTask, text
from engine.training import ConfigError, TrainConfig, train
from tests.training.conftest import TINY_RUN

TEXT_RUN = {**TINY_RUN, "task_options": {}, "model_overrides": {
    "n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 8}}


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "."])
def test_a_text_file_that_is_not_a_regular_file_is_refused(path):
    with pytest.raises(DataError, match="is not a regular file|Is a directory"):
        text.CharDataset(path, 8)


def test_a_text_file_over_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "MAX_TEXT_BYTES", 1000)
    path = tmp_path / "big.txt"
    path.write_text("ab" * 501)
    with pytest.raises(DataError, match="larger than"):
        text.CharDataset(path, 8)


def test_resuming_after_the_text_changed_with_the_same_characters_is_refused(tmp_path):
    path, out = tmp_path / "book.txt", tmp_path / "run"
    path.write_text("abcd efgh\n" * 30)
    train(TrainConfig(text=str(path), out_dir=str(out), **TEXT_RUN), progress=False)
    path.write_text("hgfe dcba\n" * 30)  # the same characters in another order
    with pytest.raises(DataError, match="changed since the checkpoint"):
        train(TrainConfig(text=str(path), out_dir=str(out), resume=True,
                          **{**TEXT_RUN, "steps": 3}), progress=False)


def test_held_out_problems_are_distinct_and_counted_as_such():
    task = SyntheticTask("add", digits=1)
    problems = task.held_out(5000)
    assert 0 < len(problems) < 20  # of 100 inputs one in ten is held out
    assert len({p.tobytes() for p in problems}) == len(problems)
    assert all(len(p) == 3 and p[1] == 10 for p in problems)  # d+d
    assert [p.tolist() for p in task.held_out(3)] == [p.tolist() for p in problems[:3]]
    big = SyntheticTask("reverse", min_len=3, max_len=5).held_out(1000)
    assert len({p.tobytes() for p in big}) == 1000


def test_held_out_sets_are_a_function_of_the_seed_and_prefixes_of_each_other():
    a, b = SyntheticTask("sort", min_len=1, max_len=3, seed=1), SyntheticTask(
        "sort", min_len=1, max_len=3, seed=1)
    assert [x.tolist() for x in a.held_out(5)] == [x.tolist() for x in b.held_out(50)[:5]]


def test_an_empty_out_dir_or_text_path_is_refused():
    for key in ("out_dir", "text"):
        with pytest.raises(ConfigError, match=f"{key} must name a path"):
            TrainConfig(**{key: ""})


@pytest.mark.parametrize("model", ["seq2seq-transformer", "seq2seq-gru", "vit"])
def test_every_family_refuses_a_batch_that_cannot_fit_before_any_work(model):
    task = "glyphs" if model == "vit" else "reverse"
    with pytest.raises(ConfigError, match="batch size 10000000000 needs about .* of memory"):
        train(TrainConfig(model=model, task=task, batch_size=10**10, steps=1), progress=False)

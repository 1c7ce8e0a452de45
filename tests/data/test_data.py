"""Tests of engine.data: synthetic tasks, held-out split, masking, text data and baseline,
each dataset's own evaluation, and how a model config fits itself to a dataset."""

import itertools
import math

import numpy as np
import pytest

from engine import Tensor
from engine.data import (
    END,
    IGNORE_INDEX,
    TASKS,
    CharDataset,
    DataError,
    SyntheticTask,
    build_dataset,
    dataset_from_description,
)
from engine.data.tasks import PAD, SEP, _is_val
from engine.models import GPTConfig
from engine.nn import Module


def _key(inp):
    return tuple(int(t) for t in inp)


@pytest.mark.parametrize("name", TASKS)
def test_train_and_val_never_overlap(name):
    task = SyntheticTask(name, min_len=2, max_len=3, digits=2)  # small spaces: many repeats
    rng = np.random.default_rng(0)
    train = {_key(x) for x in task.sample_inputs("train", 3000, rng)}
    val = {_key(x) for x in task.sample_inputs("val", 300, rng)}
    assert len(val) > 20 and len(train) > 200
    assert train.isdisjoint(val)


def test_split_is_a_fixed_tenth_of_inputs():
    # The split is decided by the input alone: about one input in ten is held out.
    task = SyntheticTask("add", digits=2)
    inputs = task._random_inputs(np.random.default_rng(1), 4000)
    frac = np.mean([_is_val(x) for x in inputs])
    assert 0.07 < frac < 0.13
    assert all(_is_val(x) == _is_val(x.copy()) for x in inputs[:50])


@pytest.mark.parametrize("name", TASKS)
def test_targets_mask_everything_but_the_answer(name):
    task = SyntheticTask(name)
    idx, targets = task.get_batch("train", 16, np.random.default_rng(3))
    assert idx.dtype == targets.dtype == np.int64
    assert idx.shape == targets.shape == (16, task.seq_len)
    for row_idx, row_t in zip(idx, targets):
        sep = int(np.flatnonzero(row_idx == SEP)[0])
        assert sep == task.input_width  # '=' at a fixed position: inputs are right-aligned
        inp = row_idx[:sep][row_idx[:sep] != PAD]
        assert np.all(row_idx[:sep - len(inp)] == PAD)
        want = np.append(task.answer(inp), END)
        # Position t predicts token t+1: the answer is predicted from '=' onwards.
        np.testing.assert_array_equal(row_t[sep:sep + len(want)], want)
        assert np.all(row_t[:sep] == IGNORE_INDEX)
        assert np.all(row_t[sep + len(want):] == IGNORE_INDEX)
        # idx holds the answer after '=' (teacher forcing), then '.' and padding if room
        np.testing.assert_array_equal(row_idx[sep + 1:sep + len(want)], want[:-1])
        rest = row_idx[sep + len(want):]
        assert len(rest) == 0 or (rest[0] == END and np.all(rest[1:] == PAD))


def test_reverse_copy_sort_answers():
    inp = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    assert SyntheticTask("reverse").answer(inp).tolist() == [6, 2, 9, 5, 1, 4, 1, 3]
    assert SyntheticTask("copy").answer(inp).tolist() == inp.tolist()
    assert SyntheticTask("sort").answer(inp).tolist() == [1, 1, 2, 3, 4, 5, 6, 9]


@pytest.mark.parametrize("digits", [1, 3, 5])
def test_addition_answers_are_correct(digits):
    task = SyntheticTask("add", digits=digits)
    rng = np.random.default_rng(digits)
    for split in ("train", "val"):
        for inp in task.sample_inputs(split, 200, rng):
            text = task.vocab.decode(inp)
            a, b = text.split("+")
            assert len(a) == len(b) == digits
            answer = task.vocab.decode(task.answer(inp))
            assert len(answer) == digits + 1
            assert int(answer[::-1]) == int(a) + int(b)  # written least significant first
    if digits == 3:
        assert task.vocab.decode(task.answer(task.vocab.encode("999+999"))) == "8991"
        assert task.vocab.decode(task.answer(task.vocab.encode("007+095"))) == "2010"


def test_batches_are_deterministic_per_seed():
    task = SyntheticTask("reverse")
    a = task.get_batch("train", 8, np.random.default_rng(42))
    b = task.get_batch("train", 8, np.random.default_rng(42))
    c = task.get_batch("train", 8, np.random.default_rng(43))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_reverse_lengths_and_held_out_set():
    task = SyntheticTask("reverse", seed=5)
    lengths = {len(x) for x in task.sample_inputs("train", 500, np.random.default_rng(0))}
    assert lengths == set(range(8, 17))
    first = [_key(x) for x in task.held_out(50)]
    assert first == [_key(x) for x in SyntheticTask("reverse", seed=5).held_out(200)[:50]]
    assert len(set(first)) == 50


def test_prompt_tokens_and_bad_options():
    task = SyntheticTask("add")
    assert task.vocab.decode(task.prompt_tokens("123+456")) == "123+456="
    assert task.vocab.decode(task.prompt_tokens("12+5=")) == "012+005="
    with pytest.raises(DataError, match="not a sum"):
        task.prompt_tokens("12a+4")
    rev = SyntheticTask("reverse", min_len=2, max_len=6)
    assert rev.vocab.decode(rev.prompt_tokens("314")) == "___314="
    with pytest.raises(DataError, match="1 to 6 digits"):
        rev.prompt_tokens("1234567")
    with pytest.raises(DataError, match="unknown task"):
        SyntheticTask("multiply")
    with pytest.raises(DataError):
        SyntheticTask("reverse", min_len=5, max_len=2)
    assert dataset_from_description(task.describe()).describe() == task.describe()


def _text(n):
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "é"]
    return " ".join(rng.choice(words, size=n)) + "\n"


def test_char_dataset_split_batches_and_baseline(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(_text(3000), encoding="utf-8")
    ds = CharDataset(path, block_size=16)
    text = path.read_text(encoding="utf-8")
    assert ds.vocab.itos == "".join(sorted(set(text)))
    n = len(text)
    assert len(ds.splits["train"]) == n * 9 // 10 and len(ds.splits["val"]) == n - n * 9 // 10
    idx, targets = ds.get_batch("val", 4, np.random.default_rng(0))
    assert idx.shape == (4, 16) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx[:, 1:], targets[:, :-1])
    # bigram baseline: better than uniform, and equal to a direct count on this text
    base = ds.bigram_baseline()
    assert 0 < base < math.log(ds.vocab_size)
    tr, va = ds.splits["train"], ds.splits["val"]
    V = ds.vocab_size
    counts = np.ones((V, V))
    for a, b in itertools.pairwise(tr):
        counts[a, b] += 1
    p = counts / counts.sum(1, keepdims=True)
    ref = -np.mean([math.log(p[a, b]) for a, b in itertools.pairwise(va)])
    assert base == pytest.approx(ref, rel=1e-12)
    assert ds.vocab.decode(ds.vocab.encode("the cat")) == "the cat"


def test_char_dataset_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.txt' does not exist"):
        CharDataset(tmp_path / "nope.txt", 8)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\xff\xfe" * 100)
    with pytest.raises(DataError, match="bad.txt' is not UTF-8"):
        CharDataset(bad, 8)
    short = tmp_path / "short.txt"
    short.write_text("hello world", encoding="utf-8")
    with pytest.raises(DataError, match="short.txt' has 11 characters"):
        CharDataset(short, 8)
    with pytest.raises(DataError, match="not a directory|cannot read"):
        CharDataset(tmp_path, 8)


def test_config_for_data_grows_vocab_only_when_needed_and_checks_length():
    tiny = GPTConfig.tiny()
    task = SyntheticTask("reverse")  # 14 tokens, sequences of 33
    assert tiny.for_data(task).vocab_size == 64  # the canonical 64 is kept
    text = CharDataset.from_text("".join(chr(0x100 + i) for i in range(80)) * 10, 16)
    fitted = tiny.for_data(text)
    assert fitted.vocab_size == 80 and tiny.vocab_size == 64  # a copy, grown to the data
    assert fitted.to_dict() == {**tiny.to_dict(), "vocab_size": 80}
    assert tiny.context_length == 64
    with pytest.raises(ValueError, match="sequences of 33 tokens; the model's block_size is 32"):
        GPTConfig.tiny(block_size=32).for_data(task)


def test_build_dataset_text_windows_are_the_context_length(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(_text(500), encoding="utf-8")
    data = build_dataset(text=str(path), task="sort", context_length=24)
    assert isinstance(data, CharDataset) and data.seq_len == 24
    assert data.get_batch("train", 2, np.random.default_rng(0))[0].shape == (2, 24)
    task = build_dataset(task="add", task_options={"digits": 2}, seed=3, context_length=24)
    assert task.describe() == {"kind": "task", "name": "add", "min_len": 8, "max_len": 16,
                               "digits": 2, "seed": 3}


class _Oracle(Module):
    """Answers a task by computing it, wrong on purpose on inputs whose first digit is odd
    (first answer token off by one); logits one-hot. Works with and without the KV cache."""

    def __init__(self, task):
        super().__init__()
        self.task = task
        self.config = GPTConfig.tiny(block_size=task.seq_len + 4)

    def make_cache(self, batch_size):
        return [_Cache(batch_size)]

    def _next(self, row):
        width = self.task.input_width
        inp = row[:width][row[:width] != PAD]
        answer = self.task.answer(inp)
        if inp[0] % 2:
            answer[0] = (answer[0] + 1) % 10
        full = np.concatenate([row[:width + 1], answer, [END]])
        return [full[t + 1] if t + 1 < len(full) else PAD for t in range(len(row))]

    def forward(self, idx, targets=None, kv_cache=None):
        idx = np.asarray(idx)
        if kv_cache is not None:
            kv_cache[0].tokens = np.concatenate([kv_cache[0].tokens, idx], axis=1)
            full, new = kv_cache[0].tokens, idx.shape[1]
        else:
            full, new = idx, idx.shape[1]
        nxt = np.array([self._next(row) for row in full])[:, -new:]  # (B, new)
        logits = np.eye(self.config.vocab_size, dtype=np.float32)[nxt] * 10  # (B, new, V)
        return Tensor(logits), None


class _Cache:
    """The tokens seen so far, standing in for a KV cache."""

    def __init__(self, batch_size):
        self.tokens = np.zeros((batch_size, 0), np.int64)

    @property
    def length(self):
        return self.tokens.shape[1]


@pytest.mark.parametrize("final", [False, True])
def test_task_evaluate_scores_whole_answers(final):
    # Teacher-forced (periodic) and greedy (final) scoring agree with a direct count.
    task = SyntheticTask("reverse", min_len=3, max_len=5, seed=2)
    oracle = _Oracle(task)
    result = task.evaluate(oracle, final=final, examples=60)
    odd_first = sum(int(x[0]) % 2 for x in task.held_out(60))
    assert result == {"exact_match": 1 - odd_first / 60, "exact_match_n": 60}
    assert 0.2 < result["exact_match"] < 0.8  # the count can fail both ways


def test_text_evaluate_reports_the_bigram_baseline_at_the_end():
    data = CharDataset.from_text(_text(800), 16)
    assert data.evaluate(None, final=False) == {}
    assert data.evaluate(None, final=True, examples=5) == {
        "bigram_baseline": data.bigram_baseline()}


def test_decode_marks_ids_outside_the_vocabulary():
    task = SyntheticTask("copy")
    assert task.vocab.decode([1, 2, 40, 12]) == "12?."

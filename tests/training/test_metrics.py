"""Tests of the metrics log: metrics.jsonl holds every step and evaluation once, and resuming
cuts away what a crash left beyond the checkpoint."""

import json
import math

import pytest

from engine.training import SaveError, TrainConfig, checkpoint, train
from engine.training import run as runs
from engine.training.metrics import history_from_rows, rows_from_history

SMALL = {"model_overrides": {"n_layer": 1, "n_embd": 16, "n_head": 2},
         "task_options": {"min_len": 3, "max_len": 5}, "batch_size": 8, "eval_batches": 2,
         "eval_examples": 10, "final_eval_examples": 20}


def _rows(out):
    with open(out / "metrics.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _kinds(rows):
    return [(r["kind"], r["step"]) for r in rows]


def test_rows_are_the_history_and_the_lr_schedule(tmp_path):
    cfg = TrainConfig(steps=6, lr=1e-2, warmup_steps=2, eval_every=2, ckpt_every=0,
                      out_dir=str(tmp_path), **SMALL)
    history = train(cfg, progress=False)
    rows = _rows(tmp_path)
    assert _kinds(rows) == [("train", 0), ("train", 1), ("eval", 2), ("train", 2),
                            ("train", 3), ("eval", 4), ("train", 4), ("train", 5),
                            ("final", 6)]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert set(train_rows[0]) == {"kind", "step", "loss", "lr", "grad_norm"}
    for k in ("step", "loss", "lr", "grad_norm"):
        assert [r[k] for r in train_rows] == history["train"][k]  # exact: floats round-trip
    assert [{k: v for k, v in r.items() if k != "kind"} for r in rows
            if r["kind"] == "eval"] == history["eval"]
    assert {k: v for k, v in rows[-1].items() if k != "kind"} == history["final"]
    # warmup over 2 steps to 1e-2, then cosine to 1e-3 at step 6
    c = 0.5 * (1 + math.cos(math.pi / 4))
    want = [5e-3, 1e-2, 1e-2, 1e-3 + c * 9e-3, 5.5e-3, 1e-3 + (1 - c) * 9e-3]
    assert [r["lr"] for r in train_rows] == pytest.approx(want, rel=1e-12)
    covered = checkpoint.load(tmp_path).train_state["metrics"]
    assert covered == {"file": "metrics.jsonl", "rows": 9,
                       "bytes": (tmp_path / "metrics.jsonl").stat().st_size}


def _crash_at_save_of_step(monkeypatch, crash_step):
    """checkpoint.save dies (after metrics.jsonl got its rows) when saving crash_step."""
    real = checkpoint.save

    def save(path_dir, model, optimizer, config, train_state):
        if train_state["step"] == crash_step:
            raise OSError("power cut (simulated)")
        return real(path_dir, model, optimizer, config, train_state)

    monkeypatch.setattr(checkpoint, "save", save)


@pytest.mark.slow
def test_resume_drops_rows_a_crash_left_beyond_the_checkpoint(tmp_path, monkeypatch):
    cfg = {"steps": 6, "eval_every": 3, "ckpt_every": 3, **SMALL}
    straight = train(TrainConfig(out_dir=str(tmp_path / "a"), **cfg), progress=False)

    out = tmp_path / "b"
    _crash_at_save_of_step(monkeypatch, 6)
    with pytest.raises(SaveError, match="power cut"):  # the periodic save warns, the last
        train(TrainConfig(out_dir=str(out), **cfg), progress=False)  # one raises
    monkeypatch.undo()
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"kind": "train", "st')  # and a torn last line
    assert _kinds(_rows_lenient(out)) == [("train", 0), ("train", 1), ("train", 2),
                                          ("eval", 3), ("train", 3), ("train", 4),
                                          ("train", 5), ("final", 6)]
    assert checkpoint.load(out).train_state["step"] == 3

    run = runs.resume_run(TrainConfig(out_dir=str(out), resume=True, **cfg))
    assert run.step == 3 and run.history["train"]["step"] == [0, 1, 2]
    assert _kinds(_rows(out)) == [("train", 0), ("train", 1), ("train", 2), ("eval", 3)]

    resumed = train(TrainConfig(out_dir=str(out), resume=True, **cfg), progress=False)
    assert resumed == straight
    assert _rows(out) == _rows(tmp_path / "a")  # each step once, the same values


def _rows_lenient(out):
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def test_resume_reads_the_history_back_from_metrics(tmp_path):
    cfg = {"steps": 4, "eval_every": 2, "out_dir": str(tmp_path), **SMALL}
    first = train(TrainConfig(**cfg), progress=False)
    again = train(TrainConfig(resume=True, **cfg), progress=False)  # nothing left to do
    assert again == first and len(_rows(tmp_path)) == 4 + 1 + 1


def test_damaged_metrics_file_is_a_checkpoint_error(tmp_path):
    out = tmp_path / "m"
    train(TrainConfig(steps=3, eval_every=0, out_dir=str(out), **SMALL), progress=False)
    resume = TrainConfig(steps=4, eval_every=0, out_dir=str(out), resume=True, **SMALL)
    path = out / "metrics.jsonl"
    good = path.read_bytes()
    path.write_bytes(good[:-10])
    with pytest.raises(checkpoint.CheckpointError, match="metrics.jsonl' is truncated"):
        train(resume, progress=False)
    path.write_bytes(good.replace(b'"kind": "train", "step": 1', b'"kind"; "train", "step": 1'))
    with pytest.raises(checkpoint.CheckpointError, match="corrupted: line 2 is not JSON"):
        train(resume, progress=False)
    first, second, rest = good.split(b"\n", 2)  # the same bytes in one line fewer
    path.write_bytes(first + b" " * (len(second) + 1) + b"\n" + rest)
    with pytest.raises(checkpoint.CheckpointError, match="holds 3 rows where the "
                                                         "checkpoint covers 4"):
        train(resume, progress=False)
    path.unlink()
    with pytest.raises(checkpoint.CheckpointError, match="metrics.jsonl' is missing"):
        train(resume, progress=False)


def test_history_and_rows_convert_both_ways():
    history = {"train": {"step": [0, 1, 2], "loss": [3.0, 2.5, 2.0], "lr": [1.0, 1.0, 0.5],
                         "grad_norm": [0.1, 0.2, 0.3]},
               "eval": [{"step": 2, "val_loss": 2.4}],
               "final": {"step": 3, "val_loss": 2.2}, "interrupted": False}
    rows = rows_from_history(history)
    assert _kinds(rows) == [("train", 0), ("train", 1), ("eval", 2), ("train", 2),
                            ("final", 3)]
    assert rows[3] == {"kind": "train", "step": 2, "loss": 2.0, "lr": 0.5, "grad_norm": 0.3}
    assert history_from_rows(rows, 3) == history
    # a checkpoint taken later than the last final evaluation has none of its own
    assert history_from_rows(rows, 5)["final"] is None

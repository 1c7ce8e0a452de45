"""Tests of engine.training: it learns, resumes bit-for-bit, and stops cleanly on NaN or Ctrl-C."""

import ctypes
import json
import os
import signal
import sys

import numpy as np
import pytest

import ops
from engine.data import DataError
from engine.training import NonFiniteLossError, TrainConfig, checkpoint, load_model, train
from engine.training import trainer as train_mod
from engine.training.support import critical_section, interrupts_kept, raise_kept_interrupt

# A small model on short sequences so each test runs in a few seconds.
SMALL = {"model_overrides": {"n_layer": 1, "n_embd": 32, "n_head": 2},
         "task_options": {"min_len": 3, "max_len": 5}, "batch_size": 16, "eval_every": 0,
         "final_eval_examples": 50, "warmup_steps": 5}


def test_short_run_loss_falls_well_below_its_start():
    history = train(TrainConfig(steps=40, lr=1e-2, **SMALL), progress=False)
    losses = history["train"]["loss"]
    assert len(losses) == 40 and history["train"]["step"] == list(range(40))
    assert losses[0] > 3.5  # about ln(64) at init
    assert np.mean(losses[-5:]) < losses[0] - 1.5
    final = history["final"]
    assert final["step"] == 40 and 0.0 <= final["exact_match"] <= 1.0
    assert final["val_loss"] < losses[0] - 1.5


def _weights(out_dir):
    return checkpoint.load(out_dir).model_state


def _interrupt_at(monkeypatch, stop_step):
    """Make the loop raise KeyboardInterrupt (as Ctrl-C would) when it reaches stop_step."""
    real = train_mod._train_step

    def step(run):
        if run.step == stop_step:
            raise KeyboardInterrupt
        return real(run)

    monkeypatch.setattr(train_mod, "_train_step", step)


@pytest.mark.slow
def test_resume_equals_uninterrupted_run(tmp_path, monkeypatch):
    # Dropout on, so the restored dropout generators matter as much as weights and AdamW.
    cfg = {**SMALL, "model_overrides": {**SMALL["model_overrides"], "dropout": 0.1},
           "steps": 20, "lr": 5e-3, "eval_every": 4, "ckpt_every": 0}
    straight = train(TrainConfig(out_dir=str(tmp_path / "a"), **cfg), progress=False)

    _interrupt_at(monkeypatch, 10)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out_dir=str(tmp_path / "b"), **cfg), progress=False)
    saved = checkpoint.load(tmp_path / "b")
    assert saved.train_state["step"] == 10 and saved.train_state["interrupted"]
    monkeypatch.undo()
    resumed = train(TrainConfig(out_dir=str(tmp_path / "b"), resume=True, **cfg),
                    progress=False)

    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name  # bit-for-bit
    assert resumed["train"]["loss"] == straight["train"]["loss"]
    assert resumed["eval"] == straight["eval"]
    assert resumed["final"] == straight["final"]
    # and a different seed really does give different weights (the comparison can fail)
    train(TrainConfig(out_dir=str(tmp_path / "c"), **{**cfg, "seed": 1}), progress=False)
    c = _weights(tmp_path / "c")
    assert not np.array_equal(a["lm_head.weight"], c["lm_head.weight"])


def test_resume_with_another_task_is_refused(tmp_path):
    out = str(tmp_path / "r")
    train(TrainConfig(steps=2, out_dir=out, **SMALL), progress=False)
    with pytest.raises(checkpoint.CheckpointError, match="was trained on"):
        train(TrainConfig(steps=4, out_dir=out, resume=True, **{**SMALL, "task": "sort"}),
              progress=False)


def test_huge_learning_rate_stops_with_step_and_op():
    with pytest.raises(NonFiniteLossError) as err:
        train(TrainConfig(steps=30, lr=1e10, **{**SMALL, "warmup_steps": 0}), progress=False)
    message = str(err.value)
    assert "step 1:" in message and "the loss is nan" in message
    assert "first op to produce it:" in message


def test_injected_overflow_names_the_step_and_the_op(monkeypatch):
    real = train_mod._train_step

    def step(run):
        if run.step == 3:  # weights that overflow float32 in the output projection
            run.model.lm_head.weight.data[:] = 3e38
        return real(run)

    monkeypatch.setattr(train_mod, "_train_step", step)
    with pytest.raises(NonFiniteLossError, match=r"step 3: .* first op to produce it: \w+"):
        train(TrainConfig(steps=10, lr=1e-3, **SMALL), progress=False)


def test_text_training_reports_the_bigram_baseline(tmp_path):
    path = tmp_path / "t.txt"
    words = np.random.default_rng(0).choice(["ab", "cd", "abc", "dd"], size=400)
    path.write_text(" ".join(words), encoding="utf-8")
    cfg = TrainConfig(text=str(path), steps=3, **{**SMALL, "task_options": {}},
                      out_dir=str(tmp_path / "o"))
    history = train(cfg, progress=False)
    assert history["final"]["bigram_baseline"] > 0
    assert "exact_match" not in history["final"]
    assert checkpoint.load(tmp_path / "o").config["data"]["chars"] == " abcd"


def test_ctrl_c_waits_for_the_end_of_the_critical_section():
    # A shell that starts pytest in the background leaves SIGINT ignored; install Python's
    # usual handler for this test so it checks the same thing wherever it runs.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        done = []
        with pytest.raises(KeyboardInterrupt), critical_section():
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-update...
            done.append("update finished")  # ...which still completes
        assert done == ["update finished"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)


@pytest.mark.slow
def test_teacher_forced_exact_match_equals_greedy_decoding(tmp_path):
    # A half-trained model, so that many answers are right and many wrong.
    out = str(tmp_path / "m")
    train(TrainConfig(steps=125, lr=1e-2, out_dir=out, **SMALL), progress=False)
    model, task = load_model(out)
    fast = task.exact_match(model, 300, generate=False)
    slow = task.exact_match(model, 300, generate=True)
    assert 0.05 < slow < 0.99, slow  # about 0.72
    assert fast == slow


def test_checkpoint_names_the_family_and_config_json_does_not_grow(tmp_path):
    sizes = {}
    for steps in (3, 40):
        out = tmp_path / str(steps)
        train(TrainConfig(steps=steps, out_dir=str(out), **SMALL), progress=False)
        doc = json.loads((out / "config.json").read_text())
        assert doc["format"] == 2 and doc["config"]["model_family"] == "gpt"
        assert set(doc["train_state"]) == {"step", "rng", "interrupted", "metrics"}
        sizes[steps] = (out / "config.json").stat().st_size, (out / "metrics.jsonl").stat().st_size
    # The per-step rows went to metrics.jsonl (about 100 bytes each); config.json only
    # differs by the digits of a few numbers.
    assert abs(sizes[40][0] - sizes[3][0]) < 40
    assert sizes[40][1] - sizes[3][1] > 37 * 80


def test_unknown_family_or_device_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown model family 'transformer-xl'; known: gpt"):
        train(TrainConfig(steps=1, model="transformer-xl", **SMALL), progress=False)
    with pytest.raises(ops.DeviceError, match="device 'cuda' is not available"):
        train(TrainConfig(steps=1, device="cuda", out_dir=str(tmp_path / "c"), **SMALL),
              progress=False)
    with pytest.raises(ops.DeviceError, match="unknown device 'tpu'"):
        train(TrainConfig(steps=1, device="tpu", **SMALL), progress=False)
    assert not (tmp_path / "c").exists()  # refused before any work


def test_a_task_longer_than_the_block_is_a_data_error():
    overrides = {**SMALL["model_overrides"], "block_size": 8}
    with pytest.raises(DataError, match="task 'reverse' does not fit the model: the data has "
                                        "sequences of 11 tokens; the model's block_size is 8"):
        train(TrainConfig(steps=1, **{**SMALL, "model_overrides": overrides}), progress=False)


@pytest.mark.slow
def test_training_on_the_strict_device_matches_the_cpu(tmp_path, monkeypatch):
    # The array-api-strict device refuses any hidden numpy: the loop, the evaluation, the
    # checkpoint (on Ctrl-C) and the resume run there as on the CPU.
    cfg = {**SMALL, "steps": 6, "eval_every": 2, "final_eval_examples": 20}
    cpu = train(TrainConfig(**cfg), progress=False)
    out = str(tmp_path / "s")
    _interrupt_at(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(device="strict", out_dir=out, **cfg), progress=False)
    monkeypatch.undo()
    strict = train(TrainConfig(device="strict", out_dir=out, resume=True, **cfg),
                   progress=False)
    assert strict["train"]["step"] == cpu["train"]["step"]
    for k in ("loss", "lr", "grad_norm"):
        assert strict["train"][k] == pytest.approx(cpu["train"][k], rel=1e-4)
    for a, b in zip(strict["eval"] + [strict["final"]], cpu["eval"] + [cpu["final"]]):
        assert a == {**b, "val_loss": pytest.approx(b["val_loss"], rel=1e-4)}
    assert checkpoint.load(out).config["train"]["device"] == "strict"


def _callback_from_c(exc):
    """A ctypes callback that raises `exc`: ctypes cannot pass it back through C, so it goes
    to sys.unraisablehook, as a Ctrl-C landing in llvmlite's object-cache hook does while
    Numba compiles a kernel."""
    @ctypes.CFUNCTYPE(None)
    def callback():
        raise exc
    return callback


def test_a_ctrl_c_dropped_inside_a_callback_from_c_stops_at_the_step(tmp_path, monkeypatch):
    real = train_mod._train_step

    def step(run):
        result = real(run)
        if run.step == 3:
            _callback_from_c(KeyboardInterrupt())()  # dropped by ctypes, kept by the trainer
        return result

    monkeypatch.setattr(train_mod, "_train_step", step)
    out = str(tmp_path / "k")
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out_dir=out, **{**SMALL, "steps": 10}), progress=False)
    saved = checkpoint.load(out)
    assert saved.train_state["step"] == 3 and saved.train_state["interrupted"]


def test_interrupts_kept_passes_other_unraisable_errors_on(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(type(u.exc_value)))
    with interrupts_kept():
        _callback_from_c(ValueError("not ours"))()
        _callback_from_c(KeyboardInterrupt())()
        assert seen == [ValueError]
        with pytest.raises(KeyboardInterrupt):
            raise_kept_interrupt()
        raise_kept_interrupt()  # raised once
    assert sys.unraisablehook is not None and seen == [ValueError]
    _callback_from_c(KeyboardInterrupt())()  # outside the block: the previous hook again
    assert seen == [ValueError, KeyboardInterrupt]

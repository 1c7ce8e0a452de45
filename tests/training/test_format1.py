"""A real format-1 checkpoint (written by the code before model families, commit 64c2826)
still loads, evaluates and samples as it did then, and resumes into format 2.

tests/training/data/format1 was made with that code by
    train(TrainConfig(steps=3, model_overrides={"n_layer": 1, "n_embd": 16, "n_head": 2,
          "vocab_size": 16, "block_size": 16}, task_options={"min_len": 3, "max_len": 5},
          batch_size=8, warmup_steps=1, eval_every=2, eval_examples=10,
          final_eval_examples=20, out_dir=...))
"""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import ops
from engine.models import GPT
from engine.models.generate import generate
from engine.training import TrainConfig, checkpoint, load_model, train
from engine.training import run as runs
from engine.training.trainer import evaluate

FIXTURE = Path(__file__).parent / "data" / "format1"
# What the format-1 code printed for `attn sample --ckpt <fixture> --num 3` (greedy).
OLD_SAMPLES = [("928", "213."), ("15949", "213."), ("20907", "213.")]


def _saved():
    return json.loads((FIXTURE / "config.json").read_text())


def test_fixture_is_format_1_and_small():
    doc = _saved()
    assert doc["format"] == 1 and "model_family" not in doc["config"]
    assert doc["train_state"]["history"]["train"]["step"] == [0, 1, 2]
    assert sum(p.stat().st_size for p in FIXTURE.iterdir()) < 100_000


def test_loads_as_a_gpt_and_scores_what_it_scored_then():
    ck = checkpoint.load(FIXTURE)
    assert ck.format == 1 and ck.family == "gpt"
    model, task = load_model(FIXTURE)
    assert isinstance(model, GPT) and model.config.vocab_size == 16
    for name, a in ck.model_state.items():
        assert np.array_equal(ops.to_host(model.state_dict()[name]), a), name
    cfg = TrainConfig.from_dict(ck.config["train"])
    assert (cfg.model, cfg.device) == ("gpt", "cpu")  # fields format 1 did not have
    run = SimpleNamespace(cfg=cfg, data=task, model=model, step=3)
    saved = _saved()["train_state"]["history"]["final"]
    again = evaluate(run, final=True)
    assert again["val_loss"] == pytest.approx(saved["val_loss"], rel=1e-5)
    assert again == {**saved, "val_loss": again["val_loss"]}


def test_greedy_samples_are_the_old_ones():
    model, task = load_model(FIXTURE)
    inputs = task.held_out(3)
    assert [task.vocab.decode(x) for x in inputs] == [p for p, _ in OLD_SAMPLES]
    prompts = np.stack([task.prompt(x) for x in inputs])
    out = ops.to_host(generate(model, prompts, 4, greedy=True))[:, prompts.shape[1]:]
    assert [task.vocab.decode(row) for row in out] == [s for _, s in OLD_SAMPLES]


def test_resumes_into_format_2_with_its_history_in_metrics(tmp_path):
    out = tmp_path / "f1"
    shutil.copytree(FIXTURE, out)
    old = _saved()["train_state"]["history"]
    cfg = TrainConfig.from_dict({**_saved()["config"]["train"], "out_dir": str(out),
                                 "resume": True, "steps": 5})
    run = runs.resume_run(cfg)  # everything restored as saved
    assert run.step == 3 and run.history == old
    ck = checkpoint.load(FIXTURE)
    for name, a in ck.model_state.items():
        assert np.array_equal(ops.to_host(run.model.state_dict()[name]), a), name
    state = run.optimizer.state_dict()["state"]
    for i, saved in ck.optim_state["state"].items():
        assert state[i]["step"] == saved["step"] == 3
        assert np.array_equal(ops.to_host(state[i]["m"]), saved["m"])

    history = train(cfg, progress=False)
    assert history["train"]["step"] == [0, 1, 2, 3, 4]
    for k in ("loss", "lr", "grad_norm"):
        assert history["train"][k][:3] == old["train"][k]
    assert history["eval"][0] == old["eval"][0] and history["eval"][1]["step"] == 4
    assert history["final"]["step"] == 5
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in rows] == [
        ("train", 0), ("train", 1), ("eval", 2), ("train", 2), ("final", 3),
        ("train", 3), ("eval", 4), ("train", 4), ("final", 5)]
    doc = json.loads((out / "config.json").read_text())
    assert doc["format"] == 2 and doc["config"]["model_family"] == "gpt"
    assert "history" not in doc["train_state"]
    assert train(cfg, progress=False) == history  # read back from metrics.jsonl

"""The attention family through the trainer: each family saves and resumes bit for bit like
the GPT, reads its recommended lr and batch size, and the GRU learns reversal for real."""

import numpy as np
import pytest

from engine.data import GlyphImages
from engine.training import TrainConfig, checkpoint, load_model, train, trainer

SMALL = {
    "seq2seq-gru": {"n_embd": 8, "hidden": 8, "attn_size": 8},
    "seq2seq-transformer": {"n_embd": 16, "n_head": 2, "n_enc_layer": 1, "n_dec_layer": 1},
    "vit": {"n_embd": 16, "n_head": 2, "n_layer": 1, "patch_size": 4},
}


def _cfg(model, out, steps):
    task = {"task": "glyphs", "task_options": {"image_size": 8}} if model == "vit" else \
        {"task": "reverse", "task_options": {"min_len": 2, "max_len": 4}}
    return TrainConfig(model=model, model_overrides=SMALL[model], steps=steps, batch_size=8,
                       eval_every=0, eval_batches=1, final_eval_examples=20, ckpt_every=0,
                       out_dir=str(out), **task)


@pytest.mark.slow
@pytest.mark.parametrize("model", list(SMALL))
def test_each_family_resumes_bit_for_bit(tmp_path, monkeypatch, model):
    straight = train(_cfg(model, tmp_path / "a", 6), progress=False)
    real = trainer._train_step

    def interrupted(run):
        if run.step == 3:
            raise KeyboardInterrupt
        return real(run)

    monkeypatch.setattr(trainer, "_train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(model, tmp_path / "b", 6), progress=False)
    monkeypatch.undo()
    resumed = train(TrainConfig(**{**_cfg(model, tmp_path / "b", 6).to_dict(),
                                   "resume": True}), progress=False)
    assert resumed["train"]["loss"] == straight["train"]["loss"]
    a, _ = load_model(tmp_path / "a")
    b, data = load_model(tmp_path / "b")
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    assert checkpoint.load(tmp_path / "b").family == model
    if model == "vit":
        assert isinstance(data, GlyphImages) and data.image_size == 8
        assert {"accuracy", "linear_baseline"} <= set(straight["final"])
    else:
        assert "exact_match" in straight["final"]


def test_families_bring_their_training_defaults():
    assert TrainConfig().lr == 3e-3 and TrainConfig().batch_size == 32
    t = TrainConfig(model="seq2seq-transformer")
    assert t.lr == 1e-3 and t.batch_size == 32
    v = TrainConfig(model="vit", task="glyphs")
    assert (v.steps, v.lr, v.batch_size, v.warmup_steps, v.min_lr) == \
        (1000, 6e-3, 192, 100, 0.0)
    assert (t.warmup_steps, t.min_lr) == (50, None)  # None: lr / 10
    assert TrainConfig().steps == 600
    assert TrainConfig(model="vit", lr=0.01, batch_size=4).lr == 0.01
    assert TrainConfig.from_dict(v.to_dict()) == v  # saved runs record the values
    # a run saved before the ViT's floor became 0 recorded min_lr None, meaning lr / 10:
    # resuming it keeps that schedule
    older = TrainConfig.from_dict({**v.to_dict(), "min_lr": None})
    assert older.min_lr is None and older.lr == v.lr


@pytest.mark.slow
def test_the_gru_learns_to_reverse_short_strings(tmp_path):
    cfg = TrainConfig(model="seq2seq-gru", task="reverse",
                      task_options={"min_len": 2, "max_len": 4}, steps=200, eval_every=0,
                      final_eval_examples=200, model_overrides={"n_embd": 16, "hidden": 32,
                                                                "attn_size": 32})
    final = train(cfg, progress=False)["final"]
    assert final["exact_match"] >= 0.9, final

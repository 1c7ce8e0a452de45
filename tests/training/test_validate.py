"""A checkpoint is checked against its schema and this machine's memory before anything is
built, and a resume may not change the model: each failure names the key."""

import json

import numpy as np
import pytest

from engine.models import GPTConfig
from engine.training import CheckpointError, ConfigError, TrainConfig, load_model, train
from engine.training import run as runs
from engine.training import validate as checks


def _edit(ck, edit):
    path = ck / "config.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _set(section, key, value):
    def edit(doc):
        where = doc["train_state"] if section == "train_state" else doc["config"][section]
        where[key] = value
    return edit


def _resume(ck, **given):
    return train(runs.resume_config(str(ck), given), progress=False)


@pytest.mark.parametrize("section,key,value,words", [
    ("model", "n_embd", "64", "n_embd must be a positive integer, got '64'"),
    ("model", "n_layer", -1, "n_layer must be a positive integer, got -1"),
    ("model", "n_embd", 1e9, "n_embd must be a positive integer, got 1000000000.0"),
    ("model", "dropout", 2, "dropout must be a number in [0, 1)"),
    ("train", "lr", "fast", "train.lr must be a positive number, got 'fast'"),
    ("train", "lr", -0.1, "train.lr must be a positive number"),
    ("train", "batch_size", 0, "train.batch_size must be a positive integer, got 0"),
    ("train", "betas", [0.9, 1.0], "train.betas must be two numbers in [0, 1)"),
    ("train", "grad_clip", -1, "train.grad_clip must be a number >= 0"),
    ("train", "seed", "x", "train.seed must be an integer >= 0"),
    ("train_state", "step", -5, "train_state.step must be an integer >= 0, got -5"),
    ("train_state", "step", "abc", "train_state.step must be an integer >= 0, got 'abc'"),
    ("train_state", "rng", None, "train_state.rng must be an object"),
    ("train_state", "rng", {"x": {"state": 1}}, "train_state.rng['x'] is not a generator"),
    ("train_state", "metrics", {"file": "../../x", "bytes": 0, "rows": 0},
     "train_state.metrics.file must be 'metrics.jsonl'"),
    ("train_state", "interrupted", "no", "train_state.interrupted must be true or false"),
])
def test_malformed_config_json_is_refused_naming_the_key(ckpt_copy, section, key, value, words):
    _edit(ckpt_copy, _set(section, key, value))
    for attempt in (lambda: load_model(ckpt_copy), lambda: _resume(ckpt_copy)):
        with pytest.raises(CheckpointError, match="config.json") as err:
            attempt()
        assert words in str(err.value)


def test_missing_train_state_fields_are_named(ckpt_copy):
    _edit(ckpt_copy, lambda doc: doc["train_state"].pop("rng"))
    with pytest.raises(CheckpointError, match="train_state.rng must be"):
        _resume(ckpt_copy)


@pytest.mark.parametrize("key,value", [("n_embd", 10**9), ("vocab_size", 10**12),
                                       ("n_layer", 10**9)])
def test_absurd_model_sizes_are_refused_by_memory_before_allocating(ckpt_copy, key, value):
    _edit(ckpt_copy, _set("model", key, value))
    with pytest.raises(CheckpointError, match=r"needs about [\d.]+ [KMGTPE]B of memory; this "
                                              r"machine has [\d.]+ [KMGTPE]?B available"):
        load_model(ckpt_copy)


def test_run_memory_is_estimated_before_allocating():
    with pytest.raises(ConfigError, match="a training step of batch size 1000000000000 "
                                          "needs about"):
        train(TrainConfig(batch_size=10**12, steps=1), progress=False)
    with pytest.raises(ConfigError, match="final evaluation of 1,000,000,000,000 examples"):
        train(TrainConfig(final_eval_examples=10**12, steps=1), progress=False)
    with pytest.raises(ConfigError, match=r"the model \(.* parameters"):
        train(TrainConfig(model_overrides={"n_embd": 2**20, "n_head": 1}), progress=False)
    assert checks.human_bytes(1536) == "1.5 KB" and checks.human_bytes(12) == "12 bytes"


def test_non_finite_weights_name_the_tensor(ckpt_copy):
    path = ckpt_copy / "model.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["transformer.h.0.mlp.c_fc.weight"][3, 1] = np.inf
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=r"model.npz': tensor transformer.h.0.mlp.c_fc"
                                              r".weight holds NaN or inf"):
        load_model(ckpt_copy)


@pytest.mark.slow
def test_a_model_setting_cannot_change_on_resume(ckpt_copy):
    with pytest.raises(ConfigError, match="config 'small' differs from the checkpoint's "
                                          "'tiny'.*these can: steps, batch_size"):
        _resume(ckpt_copy, config="small", steps=3)
    with pytest.raises(ConfigError, match="model_overrides .* differs"):
        _resume(ckpt_copy, model_overrides={"n_layer": 2}, steps=3)
    history = _resume(ckpt_copy, steps=3, batch_size=4, lr=1e-3)  # these may change
    assert history["train"]["step"] == [0, 1, 2]


def test_resume_to_fewer_steps_than_done_is_refused(ckpt_copy):
    with pytest.raises(ConfigError, match="is already at step 2: steps 1 would train nothing"):
        _resume(ckpt_copy, steps=1)


def test_config_sizes_name_the_key():
    with pytest.raises(ValueError, match="n_head must be a positive integer, got 0"):
        GPTConfig.tiny(n_head=0)
    with pytest.raises(TypeError, match="tie_weights must be true or false"):
        GPTConfig.tiny(tie_weights="yes")
    assert GPTConfig.small().num_parameters() == 826_112
    with pytest.raises(ConfigError, match="seed must be an integer >= 0, got -1"):
        TrainConfig(seed=-1)


@pytest.mark.parametrize("key,value,words", [
    ("seed", -1, "seed must be an integer >= 0, got -1"),
    ("min_len", "3", "min_len must be an integer >= 0, got '3'"),
    ("max_len", 10**12, "the model's block_size is 64"),
])
def test_a_data_description_that_cannot_be_the_models_is_refused(ckpt_copy, key, value, words):
    _edit(ckpt_copy, _set("data", key, value))
    with pytest.raises(CheckpointError, match="config.json' describes no usable model or data"
                       ) as err:
        load_model(ckpt_copy)
    assert words in str(err.value)

"""Tests of engine.training.checkpoint: exact round trip, clear errors on damage, atomic
replacement."""

import json
import os

import numpy as np
import pytest

from engine.models import GPT, GPTConfig
from engine.optim import AdamW, weight_decay_groups
from engine.training import checkpoint
from engine.training.checkpoint import CheckpointError


def _model_and_optimizer(seed=0, steps=2):
    model = GPT(GPTConfig.tiny(n_layer=1, n_embd=32, block_size=16), rng=seed)
    opt = AdamW(weight_decay_groups(model, 0.1), lr=1e-2)
    rng = np.random.default_rng(seed)
    for _ in range(steps):  # a couple of updates so the optimizer has m, v and step counts
        idx = rng.integers(0, 64, size=(2, 16))
        opt.zero_grad()
        model(idx, idx)[1].backward()
        opt.step()
    return model, opt


CONFIG = {"model_family": "gpt", "model": {"n_layer": 1},
          "train": {"lr": 0.01, "betas": [0.9, 0.99]}, "data": {"kind": "task", "name": "reverse"}}
STATE = {"step": 2, "rng": {"x": {"state": {"state": 2**100 + 7, "inc": 3}}},
         "history": {"loss": [1.5, float("nan")]}}


def test_round_trip_is_exact(tmp_path):
    model, opt = _model_and_optimizer()
    checkpoint.save(tmp_path / "ck", model, opt, CONFIG, STATE)
    assert sorted(os.listdir(tmp_path / "ck")) == ["config.json", "model.npz", "optim.npz"]
    ck = checkpoint.load(tmp_path / "ck")
    assert ck.config == CONFIG and ck.format == 2 and ck.family == "gpt"
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["format"] == 2
    assert ck.train_state["rng"] == STATE["rng"]  # 128-bit ints survive
    assert ck.train_state["step"] == 2 and np.isnan(ck.train_state["history"]["loss"][1])
    model2, opt2 = _model_and_optimizer(seed=1, steps=1)
    checkpoint.restore(ck, model2, opt2)
    for (name, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert s1["state"].keys() == s2["state"].keys()
    for i in s1["state"]:
        assert s1["state"][i]["step"] == s2["state"][i]["step"] == 2
        for k in ("m", "v"):
            assert np.array_equal(s1["state"][i][k], s2["state"][i][k])


def test_no_pickle_in_files(tmp_path):
    model, opt = _model_and_optimizer(steps=1)
    checkpoint.save(tmp_path, model, opt, CONFIG, STATE)
    for name in ("model.npz", "optim.npz"):
        with np.load(tmp_path / name, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)


def _saved(tmp_path, step=2):
    model, opt = _model_and_optimizer(steps=1)
    checkpoint.save(tmp_path, model, opt, CONFIG, {**STATE, "step": step})
    return model, opt


@pytest.mark.parametrize("name", ["model.npz", "optim.npz"])
def test_truncated_npz_names_the_file(tmp_path, name):
    _saved(tmp_path)
    path = tmp_path / name
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=f"{name}' is corrupted or truncated"):
        checkpoint.load(tmp_path)


def test_garbage_npz_names_the_file(tmp_path):
    _saved(tmp_path)
    (tmp_path / "model.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="model.npz"):
        checkpoint.load(tmp_path)


def test_corrupted_json_names_the_file(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(path.read_text()[:-20])
    with pytest.raises(CheckpointError, match="config.json' is corrupted: invalid JSON"):
        checkpoint.load(tmp_path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(CheckpointError, match="config.json' is not a checkpoint"):
        checkpoint.load(tmp_path)


def test_missing_pieces(tmp_path):
    with pytest.raises(CheckpointError, match="nothing' does not exist"):
        checkpoint.load(tmp_path / "nothing")
    _saved(tmp_path)
    os.remove(tmp_path / "optim.npz")
    with pytest.raises(CheckpointError, match="optim.npz' is missing"):
        checkpoint.load(tmp_path)
    os.remove(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="config.json' is missing"):
        checkpoint.load(tmp_path)


def test_files_from_different_saves_are_detected(tmp_path):
    _saved(tmp_path / "a")
    _saved(tmp_path / "b")
    os.replace(tmp_path / "b" / "model.npz", tmp_path / "a" / "model.npz")
    with pytest.raises(CheckpointError, match="model.npz' is not from the same save"):
        checkpoint.load(tmp_path / "a")


def test_restore_into_a_different_model_names_the_file(tmp_path):
    _saved(tmp_path)
    other = GPT(GPTConfig.tiny(n_layer=2, n_embd=32, block_size=16), rng=0)
    with pytest.raises(CheckpointError, match="model.npz' does not fit the model"):
        checkpoint.restore(checkpoint.load(tmp_path), other)


@pytest.mark.parametrize("fail_on", ["optim.npz", "config.json"])
def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch, fail_on):
    model, _ = _saved(tmp_path, step=1)
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    real = checkpoint._write_temp

    def failing(directory, name, write):
        if name == fail_on:  # die halfway through writing this file
            def half(f):
                f.write(b"PK\x03\x04 partial")
                raise OSError("disk full (simulated)")
            return real(directory, name, half)
        return real(directory, name, write)

    monkeypatch.setattr(checkpoint, "_write_temp", failing)
    newer, opt = _model_and_optimizer(seed=5, steps=2)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(tmp_path, newer, opt, CONFIG, {**STATE, "step": 99})
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before
    ck = checkpoint.load(tmp_path)  # no temporary files left, old save still loads
    assert ck.train_state["step"] == 1
    for name, a in model.state_dict().items():
        assert np.array_equal(ck.model_state[name], a)


def test_format_1_is_read_as_a_gpt_and_unknown_formats_are_refused(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "config.json"
    doc = json.loads(path.read_text())
    del doc["config"]["model_family"]
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="config.json' names no model family"):
        checkpoint.load(tmp_path)  # format 2 must name it
    path.write_text(json.dumps({**doc, "format": 1}))
    ck = checkpoint.load(tmp_path)
    assert ck.format == 1 and ck.family == "gpt" and ck.config["model"] == {"n_layer": 1}
    path.write_text(json.dumps({**doc, "format": 3}))
    with pytest.raises(CheckpointError, match="has format 3; this version reads formats 1, 2"):
        checkpoint.load(tmp_path)


def test_numpy_scalars_in_optimizer_state_come_back_as_numpy_scalars(tmp_path):
    class Holder:
        def __init__(self, state):
            self.state = state

        def state_dict(self):
            return self.state

    model, _ = _model_and_optimizer(steps=0)
    state = {"f": np.float64(0.25), "i": np.int64(3), "plain": 0.5, "a": np.arange(3)}
    checkpoint.save(tmp_path, model, Holder(state), CONFIG, STATE)
    back = checkpoint.load(tmp_path).optim_state
    assert type(back["f"]) is np.float64 and back["f"] == 0.25
    assert type(back["i"]) is np.int64 and type(back["plain"]) is float
    assert np.array_equal(back["a"], np.arange(3))
    with pytest.raises(TypeError, match="cannot store a object"):
        checkpoint.save(tmp_path, model, Holder({"x": object()}), CONFIG, STATE)

"""Fixtures of the training and CLI tests: a real (tiny, fast) checkpoint to copy and damage."""

import shutil

import pytest

from engine.training import TrainConfig, train

# A 2-step run of a 1-layer GPT on short sequences: a real checkpoint in about a second.
TINY_RUN = {"steps": 2, "batch_size": 8, "eval_every": 0, "final_eval_examples": 10,
            "model_overrides": {"n_layer": 1, "n_embd": 32, "n_head": 2},
            "task_options": {"min_len": 3, "max_len": 5}}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """The directory of a real checkpoint (TINY_RUN), made once: copy it before damaging it."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    train(TrainConfig(out_dir=str(out), **TINY_RUN), progress=False)
    return out


@pytest.fixture
def ckpt_copy(tiny_checkpoint, tmp_path):
    """A fresh copy of tiny_checkpoint in this test's tmp_path."""
    return shutil.copytree(tiny_checkpoint, tmp_path / "ck")

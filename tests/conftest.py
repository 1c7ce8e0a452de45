"""Shared fixtures: the CPU backend or device a test runs on, and a seeded random generator."""

import numpy as np
import pytest

import ops
from engine import Tensor


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Run the test once on each CPU backend; yields the backend's name."""
    with ops.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test draws the same numbers each run."""
    return np.random.default_rng(1234)


class Place:
    """Where a test's tensors live: `leaf` makes a trainable tensor there, `const` a constant
    (indices, targets, masks), `host` copies an array back for numpy comparisons."""

    def __init__(self, device):
        self.device = device

    def leaf(self, array):
        return Tensor(array, device=self.device).requires_grad_()

    def const(self, array):
        return Tensor(array, device=self.device)

    @staticmethod
    def host(array):
        return ops.to_host(array.data if isinstance(array, Tensor) else array)


@pytest.fixture(params=["numpy", "numba", "strict"])
def on(request):
    """Run once on each CPU backend and once on the strict device (array-api-strict arrays on
    a non-CPU device, where any conversion to numpy raises); yields a Place."""
    if request.param == "strict":
        pytest.importorskip("array_api_strict")
        yield Place("strict")
        return
    with ops.use_backend(request.param):
        yield Place("cpu")


# A 2-step run of a 1-layer GPT on short sequences: a real checkpoint in about a second.
TINY_RUN = {"steps": 2, "batch_size": 8, "eval_every": 0, "final_eval_examples": 10,
            "model_overrides": {"n_layer": 1, "n_embd": 32, "n_head": 2},
            "task_options": {"min_len": 3, "max_len": 5}}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """The directory of a real checkpoint (TINY_RUN), made once: copy it before damaging it."""
    from engine.training import TrainConfig, train
    out = tmp_path_factory.mktemp("tiny") / "run"
    train(TrainConfig(out_dir=str(out), **TINY_RUN), progress=False)
    return out


@pytest.fixture
def ckpt_copy(tiny_checkpoint, tmp_path):
    """A fresh copy of tiny_checkpoint in this test's tmp_path."""
    import shutil
    return shutil.copytree(tiny_checkpoint, tmp_path / "ck")

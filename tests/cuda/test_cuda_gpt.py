"""The micro GPT on the cuda device: the shared equivalence suite (training step, sampling
with the KV cache, transfers, device errors: tests/engine/test_device_equivalence.py) run
with device="cuda", then what only cuda checks: several steps in both dtypes, the dropout
mask drawn on the device, the training loop."""

import numpy as np
import pytest

from tests.engine.test_device_equivalence import *
from tests.engine.test_device_equivalence import PROFILES, _train

PROFILE = PROFILES["cuda"]


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 2e-4)])
def test_a_few_training_steps_agree_with_the_cpu(dtype, rtol):
    cpu = _train(PROFILE, "cpu", 2, dtype)
    cuda = _train(PROFILE, "cuda", 2, dtype)
    np.testing.assert_allclose(cuda[0], cpu[0], rtol=rtol)
    for name, w in cpu[2].items():
        assert cuda[2][name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(cuda[2][name], w, rtol=rtol * 10, atol=rtol, err_msg=name)
    assert cuda[0][-1] < cuda[0][0] + 0.5  # and it trains: no blow-up


def test_training_with_dropout_on_cuda_is_seeded():
    """The cuda dropout mask is drawn on the device (not the CPU's bits): same seed, same run."""
    a, b = _train(PROFILE, "cuda", 1, dropout=0.5), _train(PROFILE, "cuda", 1, dropout=0.5)
    assert a[0] == b[0] and np.isfinite(a[0]).all()
    c = _train(PROFILE, "cuda", 1, dropout=0.0)
    assert a[0] != c[0]


def test_the_training_loop_runs_on_cuda_as_on_the_cpu(tmp_path):
    """What `attn train --device cuda` runs (here with a micro model): losses, gradient norms
    and the final evaluation agree with the CPU run; the checkpoint is written."""
    from engine.training import TrainConfig, train

    def run(device):
        cfg = TrainConfig(device=device, model_overrides={"n_embd": 8, "n_layer": 1, "n_head": 2},
                          steps=2, batch_size=2, warmup_steps=1, eval_every=0, eval_batches=1,
                          eval_examples=2, final_eval_examples=2,
                          task_options={"min_len": 2, "max_len": 2}, out_dir=str(tmp_path / device))
        return train(cfg, progress=False)
    cpu, cuda = run("cpu"), run("cuda")
    np.testing.assert_allclose(cuda["train"]["loss"], cpu["train"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(cuda["train"]["grad_norm"], cpu["train"]["grad_norm"], rtol=1e-4)
    np.testing.assert_allclose(cuda["final"]["val_loss"], cpu["final"]["val_loss"], rtol=1e-5)
    assert cuda["final"]["exact_match"] == cpu["final"]["exact_match"]
    assert any((tmp_path / "cuda").iterdir())
    from engine.training import snapshots  # the attention snapshot, taken on the device
    on_gpu, on_cpu = (snapshots.load(tmp_path / d)["maps"]["layer.0"] for d in ("cuda", "cpu"))
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-3)  # float16 files

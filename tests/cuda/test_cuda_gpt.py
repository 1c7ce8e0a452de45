"""The micro GPT on the cuda device: training steps agree with the CPU, sampling with the KV
cache agrees, and a step moves only the batch in and the loss out."""

import numpy as np
import pytest

import engine.functional as F
import ops
from engine import Tensor
from engine.models import GPT, GPTConfig
from engine.models.generate import generate
from engine.optim import AdamW, clip_grad_norm, weight_decay_groups

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

CONFIG = GPTConfig.tiny(block_size=4, n_layer=1, n_embd=8, n_head=2, vocab_size=11)


def _model(device, dtype="float64", **overrides):
    config = CONFIG if not overrides else GPTConfig.tiny(**{**CONFIG.__dict__, **overrides})
    return GPT(config, rng=0).to(device, dtype)


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 11, size=(2, 4))
    targets = np.roll(idx, -1, axis=1)
    targets[:, :1] = -100  # ignored positions, as the tasks make them
    return idx, targets


def _train(device, steps, dtype="float64", dropout=0.0):
    """`steps` training steps (clipping, AdamW with decay groups) on `device`; host results."""
    F.manual_seed(3)
    model = _model(device, dtype, dropout=dropout)
    opt = AdamW(weight_decay_groups(model, 0.1), lr=1e-2)
    losses, norms = [], []
    for s in range(steps):
        idx, targets = _batch(s)
        opt.zero_grad()
        _, loss = model(idx, targets)
        loss.backward()
        norms.append(clip_grad_norm(model.parameters(), 0.5))
        opt.step()
        losses.append(loss.item())
    return losses, norms, model.state_dict(), opt.state_dict()


def test_one_training_step_on_cuda_equals_the_cpu_step():
    with ops.use_backend("numpy"):
        cpu = _train("cpu", 1)
    cuda = _train("cuda", 1)
    np.testing.assert_allclose(cuda[0], cpu[0], rtol=1e-12)
    np.testing.assert_allclose(cuda[1], cpu[1], rtol=1e-11)
    for name, w in cpu[2].items():
        np.testing.assert_allclose(cuda[2][name], w, rtol=1e-10, atol=1e-12, err_msg=name)
    m_cpu, m_cuda = cpu[3]["state"][0]["m"], cuda[3]["state"][0]["m"]
    assert isinstance(m_cuda, np.ndarray)  # optimizer state comes back to the host
    np.testing.assert_allclose(m_cuda, m_cpu, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 2e-4)])
def test_a_few_training_steps_agree_with_the_cpu(dtype, rtol):
    cpu = _train("cpu", 2, dtype)
    cuda = _train("cuda", 2, dtype)
    np.testing.assert_allclose(cuda[0], cpu[0], rtol=rtol)
    for name, w in cpu[2].items():
        assert cuda[2][name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(cuda[2][name], w, rtol=rtol * 10, atol=rtol, err_msg=name)
    assert cuda[0][-1] < cuda[0][0] + 0.5  # and it trains: no blow-up


def test_training_with_dropout_on_cuda_is_seeded():
    """The cuda dropout mask is drawn on the device (not the CPU's bits): same seed, same run."""
    a, b = _train("cuda", 1, dropout=0.5), _train("cuda", 1, dropout=0.5)
    assert a[0] == b[0] and np.isfinite(a[0]).all()
    c = _train("cuda", 1, dropout=0.0)
    assert a[0] != c[0]


@pytest.mark.parametrize("use_cache", [True, False])
def test_sampling_with_the_kv_cache_on_cuda_matches_the_cpu(use_cache):
    prompt = _batch()[0][:, :2]
    with ops.use_backend("numpy"):
        cpu = _model("cpu")
        want_greedy = generate(cpu, prompt, 3, greedy=True, use_cache=use_cache)
        want_sampled = generate(cpu, prompt, 3, rng=5, top_k=4, use_cache=use_cache)
    cuda = _model("cuda")
    np.testing.assert_array_equal(generate(cuda, prompt, 3, greedy=True,
                                           use_cache=use_cache), want_greedy)
    np.testing.assert_array_equal(generate(cuda, prompt, 3, rng=5, top_k=4,
                                           use_cache=use_cache), want_sampled)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_step_moves_only_the_batch_in_and_the_loss_out(dtype):
    model = _model("cuda", dtype)
    opt = AdamW(model.parameters(), lr=1e-3)
    idx, targets = _batch()
    ops.reset_transfer_stats()
    _, loss = model(idx, targets)
    loss.backward()
    opt.step()
    loss.item()
    stats = ops.transfer_stats()
    assert stats["to_device"] == {"calls": 2, "bytes": idx.nbytes + targets.nbytes}
    assert stats["to_host"] == {"calls": 1, "bytes": np.dtype(dtype).itemsize}
    # Scalar syncs, one bool each: the index checks of the token and position embeddings
    # and of the targets (engine/functions/args.py's _any), no array copies.
    assert ops.devices.scalar_reads() == {"calls": 3, "bytes": 3}
    clip_grad_norm(model.parameters(), 1.0)  # returns the norm as a host float: one more read
    assert ops.devices.scalar_reads() == {"calls": 4, "bytes": 3 + 8}
    assert ops.transfer_stats() == stats


def test_tensors_move_to_cuda_and_back_with_their_gradient():
    x = Tensor(np.array([[1.0, -2.0, 3.0]]), requires_grad=True)
    y = (x.to("cuda") * 2.0).exp().sum()
    assert y.device == "cuda"
    y.backward()
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_allclose(x.grad, 2.0 * np.exp(2.0 * x.data), rtol=1e-12)
    assert x.to("cuda", "float32").to("cpu").dtype == np.float32
    with pytest.raises(TypeError, match="not converted to numpy implicitly"):
        np.asarray(x.to("cuda").data)


def test_mixing_devices_is_an_error_naming_the_op():
    a, b = Tensor([1.0, 2.0], device="cuda"), Tensor([1.0, 2.0])
    with pytest.raises(ops.DeviceError, match="add: tensors on different devices, 'cuda' and "
                                              "'cpu'"):
        a + b
    assert (a * 2).device == "cuda"


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

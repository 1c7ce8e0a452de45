"""The engine on a device other than the CPU agrees with the CPU: a GPT training step,
sampling with the KV cache, attention maps; a step moves only the batch in and the loss out;
tensors and modules move with their gradients; host conversions and device mixing are
explicit errors. Written once, run on each device the `device` fixture gives: "strict" here
(array-api-strict arrays that refuse numpy), "cuda" from tests/cuda/test_cuda_gpt.py (the
simulator's process). Each device has a model sized for it (the simulator is slow) and its
own tolerances (the cuda kernels sum in another order)."""

import numpy as np
import pytest

import engine.functional as F
import ops
from engine import Tensor
from engine.models import GPT, GPTConfig
from engine.models.generate import generate
from engine.optim import AdamW, clip_grad_norm, weight_decay_groups

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

# Per device: the model, the batch (vocabulary, shape, ignored leading targets), the steps
# of the training comparison and its tolerances (loss, gradient norms, weights, optimizer
# state), the sampling prompt length and new tokens, the scalar reads a step makes (cuda
# counts them; strict reads scalars through the host converter, uncounted) and the error
# numpy raises on a raw device array.
PROFILES = {
    "strict": {
        "config": GPTConfig.tiny(block_size=8, n_layer=2, n_embd=16, n_head=2, dropout=0.1),
        "batch": (14, (3, 8), 2), "steps": 2,
        "rtol": {"loss": 1e-10, "norm": 1e-10, "weight": (1e-9, 1e-12), "m": (1e-9, 1e-12)},
        "sample": (3, 7), "scalar_reads": None,
        "raw_array": (RuntimeError, "Can't convert array on the .* device to a NumPy array")},
    "cuda": {
        "config": GPTConfig.tiny(block_size=4, n_layer=1, n_embd=8, n_head=2, vocab_size=11),
        "batch": (11, (2, 4), 1), "steps": 1,
        "rtol": {"loss": 1e-12, "norm": 1e-11, "weight": (1e-10, 1e-12), "m": (1e-10, 1e-13)},
        "sample": (2, 3), "scalar_reads": ({"calls": 3, "bytes": 3}, {"calls": 4, "bytes": 3 + 8}),
        "raw_array": (TypeError, "not converted to numpy implicitly")},
}


@pytest.fixture
def profile(device):
    return PROFILES[device]


def _model(profile, device, dtype="float64", **overrides):
    config = profile["config"]
    if overrides:
        config = GPTConfig(**{**config.__dict__, **overrides})
    return GPT(config, rng=0).to(device, dtype)


def _batch(profile, seed=0):
    vocab, shape, ignored = profile["batch"]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, vocab, size=shape)
    targets = np.roll(idx, -1, axis=1)
    targets[:, :ignored] = -100  # ignored positions, as the tasks make them
    return idx, targets


def _train(profile, device, steps=None, dtype="float64", **overrides):
    """Training steps (clipping, AdamW with decay groups) on `device`, by default the profile's
    number of them and its model; host results."""
    F.manual_seed(3)
    model = _model(profile, device, dtype, **overrides)
    opt = AdamW(weight_decay_groups(model, 0.1), lr=1e-2)
    losses, norms = [], []
    for s in range(steps or profile["steps"]):
        idx, targets = _batch(profile, s)
        opt.zero_grad()
        _, loss = model(idx, targets)
        loss.backward()
        norms.append(clip_grad_norm(model.parameters(), 0.5))
        opt.step()
        losses.append(loss.item())
    return losses, norms, model.state_dict(), opt.state_dict()


def test_a_gpt_training_step_matches_the_cpu(device, profile):
    tol = profile["rtol"]
    with ops.use_backend("numpy"):
        cpu = _train(profile, "cpu")
    dev = _train(profile, device)
    np.testing.assert_allclose(dev[0], cpu[0], rtol=tol["loss"])
    np.testing.assert_allclose(dev[1], cpu[1], rtol=tol["norm"])
    for name, w in cpu[2].items():
        np.testing.assert_allclose(dev[2][name], w, rtol=tol["weight"][0],
                                   atol=tol["weight"][1], err_msg=name)
    m_cpu, m_dev = cpu[3]["state"][0]["m"], dev[3]["state"][0]["m"]
    assert isinstance(m_dev, np.ndarray)  # optimizer state comes back to the host
    np.testing.assert_allclose(m_dev, m_cpu, rtol=tol["m"][0], atol=tol["m"][1])


@pytest.mark.parametrize("use_cache", [True, False])
def test_sampling_with_the_kv_cache_matches_the_cpu(device, profile, use_cache):
    prompt_len, new = profile["sample"]
    prompt = _batch(profile)[0][:, :prompt_len]
    with ops.use_backend("numpy"):
        cpu = _model(profile, "cpu")
        want_greedy = generate(cpu, prompt, new, greedy=True, use_cache=use_cache)
        want_sampled = generate(cpu, prompt, new, rng=5, top_k=4, use_cache=use_cache)
    dev = _model(profile, device)
    np.testing.assert_array_equal(generate(dev, prompt, new, greedy=True,
                                           use_cache=use_cache), want_greedy)
    np.testing.assert_array_equal(generate(dev, prompt, new, rng=5, top_k=4,
                                           use_cache=use_cache), want_sampled)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_step_moves_only_the_batch_in_and_the_loss_out(device, profile, dtype):
    model = _model(profile, device, dtype).eval()  # no dropout: strict draws masks on the host
    opt = AdamW(model.parameters(), lr=1e-3)
    idx, targets = _batch(profile)
    ops.reset_transfer_stats()
    _, loss = model(idx, targets)
    loss.backward()
    opt.step()
    loss.item()
    stats = ops.transfer_stats()
    assert stats["to_device"] == {"calls": 2, "bytes": idx.nbytes + targets.nbytes}
    assert stats["to_host"] == {"calls": 1, "bytes": np.dtype(dtype).itemsize}
    # Scalar syncs, one bool each: the index checks of the token and position embeddings
    # and of the targets (engine/functional.py's _any), no array copies.
    reads = profile["scalar_reads"]
    if reads:
        assert ops.devices.scalar_reads() == reads[0]
    clip_grad_norm(model.parameters(), 1.0)  # returns the norm as a host float: one more read
    if reads:
        assert ops.devices.scalar_reads() == reads[1]
    assert ops.transfer_stats() == stats


def test_attention_maps_come_back_to_the_host(device, profile):
    idx = _batch(profile)[0][:1]
    maps = _model(profile, device).attention_maps(idx)
    want = _model(profile, "cpu").attention_maps(idx)
    assert all(isinstance(m, np.ndarray) for m in maps)
    np.testing.assert_allclose(maps[-1], want[-1], rtol=1e-10)


def test_tensor_to_and_back_carries_the_gradient(device, profile):
    x = Tensor(np.array([[1.0, -2.0, 3.0]]), requires_grad=True)
    y = (x.to(device) * 2.0).exp().sum()
    assert y.device == device
    y.backward()
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_allclose(x.grad, 2.0 * np.exp(2.0 * x.data), rtol=1e-12)
    assert x.to("cpu") is x and x.to("float64") is x
    assert x.to(device, "float32").to("cpu").dtype == np.float32
    error, match = profile["raw_array"]
    with pytest.raises(error, match=match):
        np.asarray(x.to(device).data)


def test_host_conversions_are_explicit(device):
    x = Tensor([1.0, 2.0], device=device)
    with pytest.raises(TypeError, match="not converted to numpy implicitly"):
        np.asarray(x)
    ops.reset_transfer_stats()
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
    assert x.sum().item() == 3.0
    assert ops.transfer_stats()["to_host"]["calls"] == 2
    assert f"device='{device}'" in repr(x)


def test_mixing_devices_is_an_error_naming_the_op_and_both_devices(device):
    a, b = Tensor([1.0, 2.0], device=device), Tensor([1.0, 2.0])
    with pytest.raises(ops.DeviceError, match=f"add: tensors on different devices, '{device}' "
                                              "and 'cpu'"):
        a + b
    with pytest.raises(ops.DeviceError, match="mul: a host ndarray cannot be mixed"):
        a * np.ones(2)
    with pytest.raises(ops.DeviceError, match="cross_entropy: a host array"):
        F.cross_entropy(Tensor(np.zeros((2, 3)), device=device), np.array([0, 1]))
    assert (a * 2).device == device  # Python scalars are fine


def test_module_to_moves_parameters_and_state_dicts_stay_on_the_host(device, profile):
    model = GPT(profile["config"], rng=0)
    host = model.state_dict()
    model.to(device)
    assert model.device == device
    assert {p.device for p in model.parameters()} == {device}
    back = model.state_dict()
    assert all(isinstance(a, np.ndarray) for a in back.values())
    np.testing.assert_array_equal(back["lm_head.weight"], host["lm_head.weight"])
    model.load_state_dict({k: v * 0 for k, v in host.items()})
    assert model.transformer.wte.weight.device == device
    assert float(model.transformer.wte.weight.sum().item()) == 0.0

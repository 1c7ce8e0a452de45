"""The engine on the strict device: array-api-strict arrays on a non-CPU device, where any
conversion to numpy raises and anything outside the array API standard is missing. A full
GPT training step, sampling with the KV cache and task evaluation run there and agree with
the CPU; device mixing and host conversions are explicit errors. (Every op's gradcheck runs
there too: tests/engine/test_gradcheck_ops.py, the "strict" cases.)"""

import ast
import pathlib

import numpy as np
import pytest

import engine.functional as F
import ops
from engine import Tensor
from engine.data import SyntheticTask
from engine.models import GPT, GPTConfig
from engine.models.generate import generate
from engine.optim import AdamW, clip_grad_norm, weight_decay_groups

pytest.importorskip("array_api_strict")

CONFIG = GPTConfig.tiny(block_size=8, n_layer=2, n_embd=16, n_head=2, dropout=0.1)


def _model(device):
    return GPT(CONFIG, rng=0).to(device, "float64")


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 14, size=(3, 8))
    targets = np.roll(idx, -1, axis=1)
    targets[:, :2] = -100  # ignored positions, as the tasks make them
    return idx, targets


def _step(device, steps=2):
    """`steps` training steps (dropout on, clipping, AdamW) on `device`; host results."""
    F.manual_seed(3)
    model = _model(device)
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


def test_a_gpt_training_step_on_strict_matches_the_cpu():
    with ops.use_backend("numpy"):
        cpu = _step("cpu")
    strict = _step("strict")
    np.testing.assert_allclose(strict[0], cpu[0], rtol=1e-10)
    np.testing.assert_allclose(strict[1], cpu[1], rtol=1e-10)
    for name, w in cpu[2].items():
        np.testing.assert_allclose(strict[2][name], w, rtol=1e-9, atol=1e-12, err_msg=name)
    m_cpu, m_strict = cpu[3]["state"][0]["m"], strict[3]["state"][0]["m"]
    assert isinstance(m_strict, np.ndarray)  # optimizer state comes back to the host
    np.testing.assert_allclose(m_strict, m_cpu, rtol=1e-9, atol=1e-12)


def test_a_step_moves_only_the_batch_in_and_the_loss_out():
    model = _model("strict").eval()  # no dropout: dropout masks are drawn on the host
    opt = AdamW(model.parameters(), lr=1e-3)
    idx, targets = _batch()
    ops.reset_transfer_stats()
    _, loss = model(idx, targets)
    loss.backward()
    clip_grad_norm(model.parameters(), 1.0)
    opt.step()
    loss.item()
    stats = ops.transfer_stats()
    assert stats["to_device"] == {"calls": 2, "bytes": idx.nbytes + targets.nbytes}
    assert stats["to_host"] == {"calls": 1, "bytes": 8}


@pytest.mark.parametrize("use_cache", [True, False])
def test_sampling_with_the_kv_cache_on_strict_matches_the_cpu(use_cache):
    prompt = _batch()[0][:, :3]
    with ops.use_backend("numpy"):
        cpu = _model("cpu")
        want_greedy = generate(cpu, prompt, 7, greedy=True, use_cache=use_cache)
        want_sampled = generate(cpu, prompt, 7, rng=5, top_k=4, use_cache=use_cache)
    strict = _model("strict")
    np.testing.assert_array_equal(generate(strict, prompt, 7, greedy=True,
                                           use_cache=use_cache), want_greedy)
    np.testing.assert_array_equal(generate(strict, prompt, 7, rng=5, top_k=4,
                                           use_cache=use_cache), want_sampled)


@pytest.mark.parametrize("generate_answers", [False, True])
def test_task_evaluation_on_strict_matches_the_cpu(generate_answers):
    task = SyntheticTask("reverse", min_len=2, max_len=3)
    config = GPTConfig.tiny(block_size=2 * 3 + 1, n_layer=1, n_embd=16, n_head=2)
    cpu = GPT(config, rng=1)
    want = task.exact_match(cpu, 40, generate=generate_answers)
    strict = GPT(config, rng=1).to("strict")
    assert task.exact_match(strict, 40, generate=generate_answers) == want


def test_attention_maps_come_back_to_the_host():
    maps = _model("strict").attention_maps(_batch()[0][:1])
    want = _model("cpu").attention_maps(_batch()[0][:1])
    assert all(isinstance(m, np.ndarray) for m in maps)
    np.testing.assert_allclose(maps[1], want[1], rtol=1e-10)


def test_tensor_to_and_back_carries_the_gradient():
    x = Tensor(np.array([[1.0, -2.0, 3.0]]), requires_grad=True)
    y = (x.to("strict") * 2.0).exp().sum()
    assert y.device == "strict"
    y.backward()
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_allclose(x.grad, 2.0 * np.exp(2.0 * x.data))
    assert x.to("cpu") is x and x.to("float64") is x
    assert x.to("strict", "float32").to("cpu").dtype == np.float32


def test_host_conversions_are_explicit():
    x = Tensor([1.0, 2.0], device="strict")
    with pytest.raises(TypeError, match="not converted to numpy implicitly"):
        np.asarray(x)
    ops.reset_transfer_stats()
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
    assert x.sum().item() == 3.0
    assert ops.transfer_stats()["to_host"]["calls"] == 2
    assert "device='strict'" in repr(x)


def test_mixing_devices_is_an_error_naming_the_op_and_both_devices():
    a, b = Tensor([1.0, 2.0], device="strict"), Tensor([1.0, 2.0])
    with pytest.raises(ops.DeviceError, match="add: tensors on different devices, 'strict' and "
                                              "'cpu'"):
        a + b
    with pytest.raises(ops.DeviceError, match="mul: a host ndarray cannot be mixed"):
        a * np.ones(2)
    with pytest.raises(ops.DeviceError, match="cross_entropy: a host array"):
        F.cross_entropy(Tensor(np.zeros((2, 3)), device="strict"), np.array([0, 1]))
    assert (a * 2).device == "strict"  # Python scalars are fine


def test_module_to_moves_parameters_and_state_dicts_stay_on_the_host():
    model = GPT(CONFIG, rng=0)
    host = model.state_dict()
    model.to("strict")
    assert model.device == "strict"
    assert {p.device for p in model.parameters()} == {"strict"}
    back = model.state_dict()
    assert all(isinstance(a, np.ndarray) for a in back.values())
    np.testing.assert_array_equal(back["lm_head.weight"], host["lm_head.weight"])
    model.load_state_dict({k: v * 0 for k, v in host.items()})
    assert model.transformer.wte.weight.device == "strict"
    assert float(model.transformer.wte.weight.sum().item()) == 0.0


def test_an_unknown_device_is_one_clear_line():
    # "cuda" without a GPU or the simulator: tests/engine/test_cuda_loading.py
    with pytest.raises(ops.DeviceError, match="unknown device 'tpu'") as err:
        Tensor([1.0]).to("tpu")
    assert "\n" not in str(err.value)


# ---- no numpy on tensor data in the calculus and layer code ------------------------------------
# Host-side names these files may use: type objects and dtypes, the host generator, error
# state, and the constructors that build parameters and constants from host data (the strict
# device catches any of those applied to tensor data, since its arrays refuse numpy).
HOST_NAMES = {"ndarray", "generic", "integer", "floating", "dtype", "float32", "float64",
              "int64", "random", "errstate", "asarray", "array", "ascontiguousarray", "ones",
              "zeros", "array2string"}
CORE = ["autograd.py", "functional.py", "tensor.py", "tensor_methods.py", "optim.py", "functions",
        "nn", "models"]
# Host code by design: token sampling copies the newest logits to the host and picks there.
HOST_FILES = {"models/generate.py"}


def test_the_calculus_and_layers_call_no_numpy_array_function():
    root = pathlib.Path(__file__).resolve().parents[2] / "engine"
    files = [p for name in CORE for p in ([root / name] if name.endswith(".py")
                                          else sorted((root / name).glob("*.py")))
             if str(p.relative_to(root)) not in HOST_FILES]
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "np" and node.attr not in HOST_NAMES):
                found.append(f"{path.relative_to(root)}:{node.lineno} np.{node.attr}")
    assert len(files) > 15
    assert not found, "numpy array functions in engine code (use xp or ops.kernel): " + \
        ", ".join(found)

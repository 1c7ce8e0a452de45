"""What only the strict device checks (array-api-strict arrays on a non-CPU device, where any
conversion to numpy raises and anything outside the array API standard is missing): task
evaluation agrees with the CPU, an unknown device is one clear line, and the engine's
calculus and layers call no numpy function on tensor data. The training step, sampling,
transfers and device errors it shares with the cuda device: test_device_equivalence.py.
(Every op's gradcheck runs there too: test_gradcheck_ops.py, the "strict" cases.)"""

import ast
import pathlib

import pytest

import ops
from engine import Tensor
from engine.data import SyntheticTask
from engine.models import GPT, GPTConfig

pytest.importorskip("array_api_strict")


@pytest.mark.parametrize("generate_answers", [False, True])
def test_task_evaluation_on_strict_matches_the_cpu(generate_answers):
    task = SyntheticTask("reverse", min_len=2, max_len=3)
    config = GPTConfig.tiny(block_size=2 * 3 + 1, n_layer=1, n_embd=16, n_head=2)
    cpu = GPT(config, rng=1)
    want = task.exact_match(cpu, 40, generate=generate_answers)
    strict = GPT(config, rng=1).to("strict")
    assert task.exact_match(strict, 40, generate=generate_answers) == want


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

"""The public op list: every name the op list of docs/api.md gives exists (in engine.functional,
engine, or as a Tensor method), every differentiable Function has a formula for the graph
view, and the PyTorch aliases are the numpy functions."""

import inspect
import pathlib
import pkgutil
import re

import numpy as np

import engine
import engine.functional as F
import engine.functions
from engine import Tensor
from engine.autograd import Function
from engine.functions import (
    activations,
    arithmetic,
    attention,
    compare,
    convert,
    indexing,
    layers,
    linalg,
    losses,
    reduce,
    shape,
    unary_math,
)

API_DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _op_list():
    text = API_DOC.read_text()
    return text[text.index("- Ops ("):text.index("- Autodiff:")]


def test_every_name_in_the_documented_op_list_exists():
    names = set()
    for code in re.findall(r"`([^`]+)`", _op_list()):
        if "=" in code or "(" in code or code.startswith("Tensor(["):
            continue
        names.update(w.removeprefix("F.").removeprefix("engine.").removeprefix(".")
                     for w in code.split() if re.fullmatch(r"[A-Za-z_.]+", w))
    names -= {"import", "engine", "functional", "as", "F", "np.random.Generator", "t",  # prose
              "axis", "keepdims", "correction", "ignore_index", "label_smoothing"}  # arguments
    missing = [n for n in sorted(names) if not (hasattr(F, n) or hasattr(engine, n)
                                                 or hasattr(Tensor, n))]
    assert len(names) > 90
    assert not missing, missing


_MODULES = (activations, arithmetic, attention, compare, convert, indexing, layers, linalg,
            losses, reduce, shape, unary_math)


def test_the_checks_below_see_every_file_of_engine_functions():
    files = {m.name for m in pkgutil.iter_modules(engine.functions.__path__)} - {"args"}
    assert files == {m.__name__.rpartition(".")[2] for m in _MODULES}


def test_every_differentiable_function_has_a_name_and_a_formula():
    seen = []
    for module in _MODULES:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Function) and cls.differentiable and cls.name != "function":
                seen.append(cls)  # (an abstract base keeps the default name)
                assert cls.formula.startswith("d("), cls
    assert len(seen) > 40


def test_pytorch_aliases_are_the_numpy_functions():
    assert F.unsqueeze(Tensor(np.ones(3)), 0).shape == F.expand_dims(Tensor(np.ones(3)), 0).shape
    assert F.clamp is F.clip and F.eq is F.equal and F.mod is F.remainder
    x = Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.repeat(2, 1).numpy(), np.tile(x.numpy(), (2, 1)))
    np.testing.assert_array_equal(x.expand(4, 2, 3).numpy(), np.broadcast_to(x.numpy(),
                                                                             (4, 2, 3)))
    np.testing.assert_array_equal(F.concatenate([x, x]).numpy(), F.concat([x, x]).numpy())
    np.testing.assert_array_equal(F.cat([x, x], 1).numpy(), F.concat([x, x], axis=1).numpy())

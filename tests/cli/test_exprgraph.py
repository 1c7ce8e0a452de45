"""commands.exprgraph: expressions evaluated over a whitelist, never eval."""

import numpy as np
import pytest

from commands.exprgraph import ExprError, evaluate, inputs_for, parse_shape
from engine.graph import count_ops


@pytest.fixture
def xw():
    return inputs_for({"x": (2, 3), "w": (3, 4), "b": (4,)})


def test_operators_and_calls_build_the_engine_graph(xw):
    y = evaluate("sum(tanh(x @ w + b) ** 2) / 2 - -1", xw)
    assert count_ops(y) == {"add": 1, "div": 1, "matmul": 1, "pow": 1, "sub": 1, "sum": 1,
                            "tanh": 1}  # - -1: the constant is negated in Python
    x, w, b = (xw[k].data for k in "xwb")
    want = (np.tanh(x @ w + b) ** 2).sum() / 2 + 1
    assert np.isclose(y.item(), want, rtol=1e-5)
    s = evaluate("softmax(x @ w, axis=-1)", xw)
    assert s.shape == (2, 4) and np.allclose(s.numpy().sum(-1), 1.0)
    assert evaluate("sum(x, axis=(0, 1), keepdims=True)", xw).shape == (1, 1)


@pytest.mark.parametrize("expr,words", [
    ("__import__('os')", "unknown function '__import__'"),
    ("x.__class__", "attribute access (.__class__)"),
    ("x.__class__.__bases__[0].__subclasses__()", "attribute access"),
    ("tanh.__globals__", "attribute access"),
    ("(lambda: 0)()", "a lambda"),
    ("lambda: 0", "a lambda"),
    ("[a for a in (1, 2)]", "comprehension"),
    ("sum(a for a in (1, 2))", "generator"),
    ("x[0]", "subscripts"),
    ("'os'", "the constant 'os'"),
    ("eval('1')", "unknown function 'eval'"),
    ("open", "unknown name 'open'"),
    ("sum(x, **{'axis': 0})", "** unpacking"),
    ("x if x else w", "if/else"),
    ("(y := x)", ":="),
    ("x < w", "comparisons"),
    ("x << 2", "operator LShift"),
    ("2 ** 9999", "must stay small"),
    ("x +", "not a valid expression"),
    ("tanh", "is a function"),
])
def test_anything_outside_the_whitelist_is_refused(xw, expr, words):
    with pytest.raises(ExprError) as e:
        evaluate(expr, xw)
    assert words in str(e.value)


def test_size_limits(xw):
    with pytest.raises(ExprError, match="longer than"):
        evaluate("x + " * 600 + "x", xw)
    with pytest.raises(ExprError, match="too large"):
        evaluate("+".join(["x"] * 300), xw)


def test_parse_shape():
    assert parse_shape("x=4,8") == ("x", (4, 8)) and parse_shape("s=") == ("s", ())
    for bad in ("x", "x=4,a", "1x=3", "_x=3", "x=0", "tanh=3", "x=100000,100000"):
        with pytest.raises(ExprError):
            parse_shape(bad)

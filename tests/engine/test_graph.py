"""The symbolic view: render_tree, to_dot and count_ops, parsed back and checked line by line."""

import re

import numpy as np
import pytest

import engine.functional as F
from engine import Tensor
from engine.graph import count_ops, render_tree, to_dot

TREE_LINE = re.compile(r"^(?P<lead>[│├└─ ]*)#(?P<n>\d+) (?P<op>\w+) (?P<shape>\([\d, ]*\)) "
                       r"(?P<dtype>float32|float64|int64)\s*(?P<formula>.*)$")
DOT_NODE = re.compile(r'^  n(\d+) \[label="(\w+) (\([\d, ]*\)) (\w+)(?:\\n(.*))?", '
                      r"shape=(box|ellipse)\];$")
DOT_EDGE = re.compile(r"^  n(\d+) -> n(\d+);$")


def _param(*shape):
    return Tensor(np.ones(shape, np.float32), requires_grad=True)


def _parse_tree(text):
    return [TREE_LINE.match(line).groupdict() for line in text.splitlines()]


def _parse_dot(text):
    lines = text.splitlines()
    assert lines[0] == "digraph engine {" and lines[-1] == "}"
    nodes = {int(m[1]): m.groups()[1:] for m in map(DOT_NODE.match, lines) if m}
    edges = [(int(m[1]), int(m[2])) for m in map(DOT_EDGE.match, lines) if m]
    assert len(nodes) + len(edges) + 4 == len(lines)  # nothing else in the text
    return nodes, edges


def test_render_tree_of_a_product():
    rows = _parse_tree(render_tree(_param(2, 3) * _param(2, 3)))
    assert [(r["n"], r["op"], r["shape"]) for r in rows] == [
        ("0", "mul", "(2, 3)"), ("1", "param", "(2, 3)"), ("2", "param", "(2, 3)")]
    assert rows[0]["formula"] == "d(a*b) = b da + a db"
    assert rows[1]["lead"] == "├─ " and rows[2]["lead"] == "└─ "
    assert rows[1]["formula"] == ""
    assert "d(a*b)" not in render_tree(_param(1) * _param(1), formulas=False)


def test_to_dot_of_a_product():
    nodes, edges = _parse_dot(to_dot(_param(2, 3) * _param(2, 3)))
    assert nodes[0] == ("mul", "(2, 3)", "float32", "d(a*b) = b da + a db", "box")
    assert nodes[1] == nodes[2] == ("param", "(2, 3)", "float32", None, "ellipse")
    assert sorted(edges) == [(1, 0), (2, 0)]


def _mlp_loss():
    x = Tensor(np.zeros((4, 3), np.float32))
    w1, b1, w2, b2 = _param(5, 3), _param(5), _param(2, 5), _param(2)
    h = F.linear(x, w1, b1).gelu()
    return F.cross_entropy(F.linear(h, w2, b2), np.array([0, 1, 1, 0]))


def test_render_tree_of_a_small_mlp_loss():
    rows = _parse_tree(render_tree(_mlp_loss()))
    got = [(r["op"], r["shape"]) for r in rows]
    assert got == [("cross_entropy", "()"), ("linear", "(4, 2)"), ("gelu", "(4, 5)"),
                   ("linear", "(4, 5)"), ("const", "(4, 3)"), ("param", "(5, 3)"),
                   ("param", "(5,)"), ("param", "(2, 5)"), ("param", "(2,)")]
    assert [int(r["n"]) for r in rows] == list(range(9))
    assert rows[0]["formula"] == "d(CE) = (softmax(z) - onehot(t)) / n_counted"
    assert rows[1]["formula"] == "d(x W^T + b) = dY W, dY^T x, sum(dY)"
    assert rows[2]["formula"].startswith("d(gelu a) = ")
    depth = [len(r["lead"]) // 3 for r in rows]
    assert depth == [0, 1, 2, 3, 4, 4, 4, 2, 2]


def test_to_dot_and_count_ops_of_a_small_mlp_loss():
    loss = _mlp_loss()
    nodes, edges = _parse_dot(to_dot(loss))
    ops = sorted(v[0] for v in nodes.values() if v[4] == "box")
    assert ops == ["cross_entropy", "gelu", "linear", "linear"]
    assert sum(v[4] == "ellipse" for v in nodes.values()) == 5  # x and four parameters
    assert len(edges) == 1 + 3 + 1 + 3  # cross_entropy, linear, gelu, linear inputs
    assert all(src > dst for src, dst in edges)  # numbered root first: inputs number higher
    assert count_ops(loss) == {"linear": 2, "cross_entropy": 1, "gelu": 1}


def test_a_diamond_is_printed_once_and_referred_to():
    x = _param(2)
    y = x * x
    z = (y * y + y).sum()
    rows = render_tree(z).splitlines()
    assert sum(line.endswith("mul (see above)") for line in rows) == 2
    assert sum(" #3 mul (2,) float32" in line for line in rows) == 1
    nodes, edges = _parse_dot(to_dot(z))
    assert len(nodes) == 5  # sum, add, mul, mul, x
    assert len(edges) == 1 + 2 + 2 + 2  # x * x and y * y each draw two edges
    assert count_ops(z) == {"mul": 2, "add": 1, "sum": 1}


def test_a_leaf_renders_alone():
    x = _param(3)
    assert _parse_tree(render_tree(x))[0]["op"] == "param"
    nodes, edges = _parse_dot(to_dot(x))
    assert len(nodes) == 1 and edges == []
    assert count_ops(x) == {}


@pytest.fixture(scope="module")
def chains():
    """(a 3,000-op chain, the same chain continued to 100,000 ops): y = y * 1.0 repeated."""
    y = _param(1)
    for i in range(100_000):
        y = y * 1.0
        if i == 2_999:
            short = y
    return short, y


@pytest.mark.slow
def test_a_100000_op_chain_renders_without_recursion_error(chains):
    lines = render_tree(chains[1], max_nodes=40).splitlines()
    assert len(lines) == 41
    assert lines[-1] == f"... ({2 * 100_000 + 1 - 40} more nodes not shown)"
    assert _parse_tree("\n".join(lines[:2]))[1]["op"] == "mul"
    assert count_ops(chains[1]) == {"mul": 100_000}


def test_to_dot_of_a_chain_deeper_than_the_recursion_limit(chains):
    nodes, edges = _parse_dot(to_dot(chains[0]))  # 3,000 ops: past the default limit of 1,000
    assert len(nodes) == 2 * 3_000 + 1 and len(edges) == 2 * 3_000
    assert sum(v[0] == "mul" for v in nodes.values()) == 3_000


def test_leaves_are_named_by_the_caller():
    from engine.graph import names_of
    x, w = _param(1, 3), _param(3, 1)
    y = (x @ w).tanh()
    names = names_of(None, x=x, w=w)
    rows = _parse_tree(render_tree(y, names=names))
    assert [r["op"] for r in rows] == ["tanh", "matmul", "x", "w"]
    assert "param" in render_tree(y)  # unnamed, as before
    nodes, _ = _parse_dot(to_dot(y, names=names))
    assert sorted(n[0] for n in nodes.values()) == ["matmul", "tanh", "w", "x"]


def _gpt_loss(n_layer):
    from engine.graph import names_of
    from engine.models import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=8, block_size=4, n_embd=8, n_head=2, n_layer=n_layer),
                rng=0)
    idx = np.zeros((1, 4), np.int64)
    return model(idx, idx)[1], names_of(model)


def test_repeated_blocks_fold_into_one_line_each():
    one, names1 = _gpt_loss(1)
    three, names3 = _gpt_loss(3)
    lines1 = render_tree(one, names=names1).splitlines()
    lines3 = render_tree(three, names=names3).splitlines()
    folds = [line for line in lines3 if "nodes folded" in line]
    # two branches (attention, MLP) per extra block, each one line: 2 residual adds + 2 folds
    assert len(folds) == 4 and len(lines3) == len(lines1) + 2 * 4
    assert sum("transformer.h.2 in place of transformer.h.0" in f for f in folds) == 2
    assert "transformer.h.0.attn.c_attn.weight" in "\n".join(lines3)
    assert "transformer.h.1.attn.c_attn.weight" not in "\n".join(lines3)
    unfolded = render_tree(three, names=names3, fold=False)
    assert "transformer.h.2.mlp.c_fc.weight" in unfolded and "folded" not in unfolded
    folded_nodes = sum(int(f.split("── ")[1].split()[0]) for f in folds)
    # each fold hides its members but the first, and the one "(see above)" line of the
    # residual stream that its branch reads
    assert len(unfolded.splitlines()) == len(lines3) + folded_nodes


def test_repeated_steps_with_shared_weights_fold_too():
    from engine.graph import names_of
    w, u = _param(3, 3), _param(3, 3)
    h, outs = Tensor(np.zeros((1, 3), np.float32)), []
    for t in range(4):  # an unrolled recurrence: every step reads the same w and u
        x = Tensor(np.full((1, 3), t, np.float32))
        h = (h @ w + x @ u).tanh()
        outs.append(h.reshape(1, 1, 3))
    root = F.concat(outs, axis=1).sum()
    names = names_of(None, w=w, u=u)
    folded = render_tree(root, names=names)
    notes = [line for line in folded.splitlines() if "folded" in line]
    assert notes and all("the same parameters again" in n for n in notes)
    assert len(folded.splitlines()) < len(render_tree(root, names=names, fold=False)
                                          .splitlines())

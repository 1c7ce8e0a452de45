"""`attn graph`: the symbolic view from the command line, in a subprocess."""

import pytest

from tests.cli.test_cli import _one_line_error, attn


def test_expression_tree_with_formulas():
    r = attn("graph", "softmax(x @ w, axis=-1)", "--shape", "x=4,8", "--shape", "w=8,3")
    assert r.returncode == 0, r.stderr
    assert "#0 softmax (4, 3) float32" in r.stdout
    assert "d(A@B) = dY @ B^T, A^T @ dY" in r.stdout and "#3 param (8, 3)" in r.stdout


def test_dot_output():
    r = attn("graph", "sum(tanh(x @ w + b) ** 2)", "--shape", "x=2,3", "--shape", "w=3,4",
             "--shape", "b=4", "--dot")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("digraph engine {") and r.stdout.rstrip().endswith("}")
    assert r.stdout.count("->") == 7  # sum<-pow<-tanh<-add<-(matmul<-x,w; b)


def test_model_loss():
    r = attn("graph", "--model", "gpt")
    assert r.returncode == 0, r.stderr
    assert "cross_entropy" in r.stdout and "attention x2" in r.stdout
    assert "112,384 parameters" in r.stdout


@pytest.mark.parametrize("expr,words", [
    ("__import__('os').system('echo hacked')", "attribute access (.system)"),
    ("__import__('os')", "unknown function '__import__'"),
    ("x.__class__", "attribute access"),
    ("().__class__.__bases__[0].__subclasses__()", "attribute access"),
    ("lambda: 0", "lambda"),
    ("x @ w", "inner dimensions"),
    ("y + 1", "unknown name 'y'"),
])
def test_refusals_are_one_line_exit_2(expr, words):
    r = attn("graph", expr, "--shape", "x=2,3", "--shape", "w=2,2")
    _one_line_error(r, words)
    assert "hacked" not in r.stdout


def test_bad_usage():
    _one_line_error(attn("graph"), "give an EXPR or --model")
    _one_line_error(attn("graph", "x", "--shape", "x=a"), "integers")
    _one_line_error(attn("graph", "x", "--model", "gpt"), "give an EXPR or --model")
    _one_line_error(attn("graph", "--model", "vit"), "--model")


def test_debug_shows_the_traceback_instead_of_one_line():
    for args in (["--debug", "graph", "x.y", "--shape", "x=2"],
                 ["graph", "x.y", "--shape", "x=2", "--debug"]):
        r = attn(*args)
        assert r.returncode != 0 and "Traceback" in r.stderr and "CliError" in r.stderr

"""`attn graph`: the symbolic view from the command line, in a subprocess."""

import pytest

from tests.cli.test_cli import _one_line_error, attn


@pytest.mark.slow
def test_expression_tree_with_formulas():
    r = attn("graph", "softmax(x @ w, axis=-1)", "--shape", "x=4,8", "--shape", "w=8,3")
    assert r.returncode == 0, r.stderr
    assert "#0 softmax (4, 3) float32" in r.stdout
    assert "d(A@B) = dY @ B^T, A^T @ dY" in r.stdout and "#3 w (8, 3)" in r.stdout


@pytest.mark.slow
def test_dot_output():
    r = attn("graph", "sum(tanh(x @ w + b) ** 2)", "--shape", "x=2,3", "--shape", "w=3,4",
             "--shape", "b=4", "--dot")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("digraph engine {") and r.stdout.rstrip().endswith("}")
    assert r.stdout.count("->") == 7  # sum<-pow<-tanh<-add<-(matmul<-x,w; b)


@pytest.mark.slow
def test_model_loss():
    r = attn("graph", "--model", "gpt")
    assert r.returncode == 0, r.stderr
    assert "cross_entropy" in r.stdout and "attention x2" in r.stdout
    assert "112,384 parameters" in r.stdout


def _ops_of(name):
    """Ops the tiny config of each family must show, counted from its config: one fused
    attention per attention layer (self_attention, straight from the fused projection, where
    no padding mask is needed: the GPT, the ViT and the transformer's decoder; the
    transformer's encoder masks padding and its cross-attention reads the memory); the GRU's
    two sigmoid gates per step (a bidirectional encoder over the 4 digits, the decoder over
    the 4 answer digits and '.') and one alignment softmax per decoder step; the ViT's class
    token broadcast to the batch."""
    from engine.models import get_model
    c = get_model(name).config.from_name("tiny")
    if name == "seq2seq-transformer":
        return [f"attention x{c.n_enc_layer + c.n_dec_layer}",
                f"self_attention x{c.n_dec_layer}"]
    if name == "seq2seq-gru":
        return [f"sigmoid x{2 * (2 * 4 + 5)}", "softmax x5"]
    return [f"self_attention x{c.n_layer}"] + (["broadcast_to x1"] if name == "vit" else [])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt", "seq2seq-gru", "seq2seq-transformer", "vit"])
def test_every_model_family(name):
    import os
    import subprocess
    import sys

    from commands.graph import DATASETS
    from engine.models import model_names
    from engine.training import TrainConfig
    from engine.training.run import new_run
    from tests.cli.test_cli import ROOT
    assert name in model_names() and len(model_names()) == 4  # a new family: add it here
    task, options = DATASETS[1] if name == "vit" else DATASETS[0]
    built = new_run(TrainConfig(model=name, task=task, task_options=options)).model
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "graph", "--model", name],
                       capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
                       env={**os.environ, "COLUMNS": "1000"})  # the header on one line
    assert r.returncode == 0, r.stderr
    header, tree = r.stdout.split("\n", 1)
    assert header.startswith(f"{name} tiny: its loss on {task}")
    assert f"({built.num_parameters():,} parameters): () float32" in header  # as trained
    for op in ["cross_entropy x1", *_ops_of(name)]:
        assert op in header, op
    assert "cross_entropy" in tree.splitlines()[0]  # the root: the loss
    r = attn("graph", "--model", name, "--dot")
    assert r.returncode == 0 and r.stdout.startswith("digraph")


@pytest.mark.parametrize("expr,words", [
    ("__import__('os').system('echo hacked')", "attribute access (.system)"),
    ("__import__('os')", "unknown function '__import__'"),
    ("x.__class__", "attribute access"),
    ("().__class__.__bases__[0].__subclasses__()", "attribute access"),
    ("lambda: 0", "lambda"),
    ("x @ w", "inner dimensions"),
    ("y + 1", "unknown name 'y'"),
])
@pytest.mark.slow
def test_refusals_are_one_line_exit_2(expr, words):
    r = attn("graph", expr, "--shape", "x=2,3", "--shape", "w=2,2")
    _one_line_error(r, words)
    assert "hacked" not in r.stdout


@pytest.mark.slow
def test_bad_usage():
    _one_line_error(attn("graph"), "give an EXPR or --model")
    _one_line_error(attn("graph", "x", "--shape", "x=a"), "integers")
    _one_line_error(attn("graph", "x", "--model", "gpt"), "give an EXPR or --model")
    _one_line_error(attn("graph", "--model", "frob"), "--model", "seq2seq-gru")


@pytest.mark.slow
def test_debug_shows_the_traceback_instead_of_one_line():
    for args in (["--debug", "graph", "x.y", "--shape", "x=2"],
                 ["graph", "x.y", "--shape", "x=2", "--debug"]):
        r = attn(*args)
        assert r.returncode != 0 and "Traceback" in r.stderr and "CliError" in r.stderr

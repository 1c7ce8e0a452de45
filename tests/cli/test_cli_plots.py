"""Figures (the optional [plots] extra): `attn demo --plot`, `attn runs --plot`, engine.viz's
figure functions. The missing-matplotlib paths always run (matplotlib blocked in the
process); the real figures are skipped when matplotlib is not installed. Also `attn runs`,
which lists the runs and shows one's loss curve in the terminal."""

import os
import subprocess
import sys

import numpy as np
import pytest

from engine import viz
from engine.training import TrainConfig, train
from tests.cli.test_cli import FORMAT1, ROOT, _one_line_error, attn

PNG = b"\x89PNG\r\n\x1a\n"
HAVE_MATPLOTLIB = viz.have_matplotlib()
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not "
                                      "installed (pip install 'attn-engine[plots]')")
# cli.py run with `import matplotlib` failing, whether or not it is installed
BLOCKED = ("import runpy, sys; sys.modules['matplotlib'] = None; sys.argv = sys.argv[1:]; "
           "runpy.run_path(sys.argv[0], run_name='__main__')")


def attn_without_matplotlib(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", BLOCKED, os.path.join(ROOT, "cli.py"), *args],
                          capture_output=True, text=True, cwd=cwd or ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT}, check=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 3-step GPT run under <tmp>/runs/reverse, and its history."""
    root = tmp_path_factory.mktemp("plots")
    out = root / "runs" / "reverse"
    history = train(TrainConfig(steps=3, eval_every=2, eval_examples=10, final_eval_examples=10,
                                ckpt_every=0, batch_size=8, out_dir=str(out),
                                task_options={"min_len": 3, "max_len": 5}), progress=False)
    return out, history


@pytest.mark.slow
def test_without_matplotlib_plot_is_one_line_and_exit_2_before_any_work(run_dir, tmp_path):
    out, _ = run_dir
    for r in (attn_without_matplotlib("demo", "--input", "31415", "--plot", "x.png",
                                      cwd=str(tmp_path)),  # no run here: it would train
              attn_without_matplotlib("demo", "--ckpt", str(out), "--input", "314", "--plot",
                                      "x.png", cwd=str(tmp_path)),
              attn_without_matplotlib("runs", str(out), "--plot", "x.png", cwd=str(tmp_path))):
        _one_line_error(r, "--plot needs matplotlib", "attn-engine[plots]")
    assert os.listdir(tmp_path) == []  # nothing trained, nothing written
    # the terminal pictures need no matplotlib
    r = attn_without_matplotlib("runs", str(out))
    assert r.returncode == 0, r.stderr
    assert "final" in r.stdout


def test_figure_functions_say_how_to_install_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert not viz.have_matplotlib()
    with pytest.raises(ImportError, match=r"attn-engine\[plots\]"):
        viz.heads_figure(np.ones((2, 3, 3)) / 3, list("abc"), list("abc"))
    with pytest.raises(ImportError, match="matplotlib"):
        viz.loss_figure([1, 2], [2.0, 1.0])


def test_no_module_imports_matplotlib_at_the_top():
    code = ("import sys, cli, engine, engine.viz, commands.demo, commands.runs, commands.plots; "
            "print('matplotlib' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT}, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_sparkline():
    assert viz.sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert viz.sparkline([3.0] * 5) == "▁" * 5
    assert viz.sparkline(np.arange(100.0), width=4) == "▁▃▆█"  # bucket means 12, 37, 62, 87
    assert viz.sparkline([]) == "" and viz.sparkline([np.nan, 1.0]) == "▁"


@pytest.mark.slow
def test_runs_lists_and_shows_a_run(run_dir):
    out, history = run_dir
    root = str(out.parent)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "runs", "--root", root],
                       capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
                       env={**os.environ, "COLUMNS": "200"})  # the table's rows unwrapped
    assert r.returncode == 0, r.stderr
    assert "gpt tiny on task" in r.stdout and "3/3" in r.stdout
    assert f"exact match {100 * history['final']['exact_match']:.1f}%" in r.stdout
    r = attn("runs", "reverse", "--root", root)  # by name under --root
    assert r.returncode == 0, r.stderr
    losses = history["train"]["loss"]
    assert f"loss {losses[0]:.3f} " in r.stdout and f" {losses[-1]:.3f}  (steps 1 to 3" in r.stdout
    assert "step      2  val loss" in r.stdout  # the evaluation at step 2, then the final
    assert f"final step      3  val loss {history['final']['val_loss']:.4f}" in r.stdout
    r = attn("runs", FORMAT1)  # a format-1 checkpoint keeps its history in config.json
    assert r.returncode == 0, r.stderr
    assert "3 of 3 steps" in " ".join(r.stdout.split())  # a long path wraps the line


@pytest.mark.slow
def test_runs_bad_input(run_dir, tmp_path):
    _one_line_error(attn("runs", "nope", "--root", str(tmp_path)), "no run at 'nope'")
    _one_line_error(attn("runs", "--plot", "x.png"), "name the run")
    r = attn("runs", "--root", str(tmp_path / "none"))
    assert r.returncode == 0 and "no runs under" in r.stdout
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json", encoding="utf-8")
    _one_line_error(attn("runs", str(bad)), "is corrupted: invalid JSON")
    r = attn("runs", "--root", str(tmp_path))  # listed as a row saying so
    assert r.returncode == 0 and "unreadable" in r.stdout


@pytest.mark.slow
@needs_matplotlib
def test_figures(run_dir, tmp_path):
    out, _ = run_dir
    heads = np.random.default_rng(0).random((3, 4, 5))
    fig = viz.heads_figure(heads, list("abcd"), list("vwxyz"), title="t",
                           path=str(tmp_path / "h.png"))
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 3 and all(np.allclose(a, h) for a, h in zip(images, heads))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("vwxyz")
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG
    fig = viz.loss_figure([1, 2, 3], [3.0, 2.0, 1.0], evals=[{"step": 2, "val_loss": 2.5}])
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), [3.0, 2.0, 1.0])

    r = attn("runs", str(out), "--plot", str(tmp_path / "loss.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG
    r = attn("demo", "--ckpt", str(out), "--input", "314", "--layer", "1", "--plot",
             str(tmp_path / "demo.png"))
    assert r.returncode == 0, r.stderr
    assert f"figure of layer 1: {tmp_path / 'demo.png'}" in r.stdout
    assert (tmp_path / "demo.png").read_bytes()[:8] == PNG
    _one_line_error(attn("demo", "--ckpt", str(out), "--input", "314", "--plot",
                         str(tmp_path / "no" / "x.png")), "there is no folder")


def test_every_subcommand_help_has_an_example():
    import cli
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "runs" in sub.choices
    for name, p in sub.choices.items():
        assert f"examples:\n  attn {name}" in p.format_help(), name


def test_every_panel_uses_the_one_scale_its_colorbar_shows():
    pytest.importorskip("matplotlib")
    faint, sharp = np.full((3, 3), 0.05), np.eye(3) * 0.9
    fig = viz.maps_figure([(faint, "abc", "abc", "faint"), (sharp, "abc", "abc", "sharp")])
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert [im.get_clim() for im in images] == [(0.0, 0.9), (0.0, 0.9)]  # not each its own
    assert sum(1 for ax in fig.axes if ax.get_label() == "<colorbar>") == 1
    fig = viz.maps_figure([(faint, "abc", "abc", "faint")], vmax=1.0)
    assert [ax.images[0].get_clim() for ax in fig.axes if ax.images] == [(0.0, 1.0)]


def test_or_each_panel_on_its_own_scale_with_its_own_colorbar():
    pytest.importorskip("matplotlib")
    faint, sharp = np.full((3, 3), 0.05), np.eye(3) * 0.9
    fig = viz.maps_figure([(faint, "abc", "abc", "faint"), (sharp, "abc", "abc", "sharp")],
                          scale="each")
    assert [ax.images[0].get_clim() for ax in fig.axes if ax.images and
            ax.get_label() != "<colorbar>"] == [(0.0, 0.05), (0.0, 0.9)]
    assert sum(1 for ax in fig.axes if ax.get_label() == "<colorbar>") == 2
    with pytest.raises(ValueError, match="scale must be"):
        viz.maps_figure([(faint, "abc", "abc", "faint")], scale="own")

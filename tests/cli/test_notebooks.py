"""The notebook path (the [notebooks] extra): every tutorial converts with jupytext into a
notebook whose cells are the ones `attn tutorial` runs, and one executes under nbconvert;
skipped where the extra is not installed. Figures: inline in a kernel, saved otherwise."""

import os

import numpy as np
import pytest

from commands import tutorial
from engine import viz

FILES = tutorial.tutorial_files()


@pytest.mark.parametrize("number", sorted(FILES))
def test_every_tutorial_converts_to_a_notebook_cell_for_cell(number):
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    with open(FILES[number], encoding="utf-8") as f:
        text = f.read()
    nb = jupytext.reads(text, fmt="py:percent")
    ours = tutorial.parse_cells(text)
    theirs = [c for c in nb.cells if c.source.strip()]
    assert [c.kind for c in ours] == [c.cell_type for c in theirs]
    for mine, cell in zip(ours, theirs):
        assert mine.text.strip() == cell.source.strip()
    nbformat.validate(nbformat.reads(jupytext.writes(nb, fmt="ipynb"), as_version=4))


def test_one_tutorial_executes_as_a_notebook_with_its_figure_inline(monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    execute = pytest.importorskip("nbconvert.preprocessors")
    monkeypatch.setenv("ATTN_TUTORIAL_QUICK", "1")  # the kernel inherits it
    nb = jupytext.read(FILES[10])  # the GPT from parts: trains, asserts, draws a figure
    execute.ExecutePreprocessor(timeout=300, kernel_name="python3").preprocess(
        nb, {"metadata": {"path": os.path.dirname(tutorial.TUTORIALS)}})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "31415926 -> 62951413" in text and "figure saved" not in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1  # shown inline


def test_figures_are_saved_outside_a_notebook_and_shown_inside(tmp_path, monkeypatch,
                                                               capsys):
    pytest.importorskip("matplotlib")
    fig = viz.maps_figure([(np.eye(3), "abc", "abc", "eye")])
    path = tmp_path / "fig.png"
    assert not viz.in_notebook() and viz.show(fig, path) == path
    assert path.read_bytes().startswith(b"\x89PNG") and str(path) in capsys.readouterr().out
    shown = []
    monkeypatch.setattr(viz, "in_notebook", lambda: True)
    fake = type("M", (), {"Image": lambda data: ("png", data), "display": shown.append})
    monkeypatch.setitem(__import__("sys").modules, "IPython.display", fake)
    monkeypatch.setitem(__import__("sys").modules, "IPython", type("I", (), {"display": fake}))
    other = tmp_path / "inline.png"
    assert viz.show(fig, other) is None and not other.exists()
    assert shown and shown[0][0] == "png" and shown[0][1].startswith(b"\x89PNG")

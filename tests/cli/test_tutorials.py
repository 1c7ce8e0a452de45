"""`attn tutorial`: every tutorial runs end to end (its asserts are its claims), listing,
pausing, and a failing cell reported as one line."""

import os
import pty
import subprocess
import sys

import pytest

from commands import tutorial
from tests.cli.test_cli import ROOT, _one_line_error, attn
from tests.cli.test_cli_demo import IN_A_TERMINAL, _read_until

FILES = tutorial.tutorial_files()


def test_the_tutorials_folder_is_found_beside_the_package():
    assert os.path.dirname(tutorial.TUTORIALS) == ROOT
    assert sorted(FILES) == list(range(1, 14))


def test_the_inside_tutorials_are_numbered_into_the_sequence():
    names = {n: os.path.basename(p) for n, p in FILES.items()}
    assert names[4] == "04_autodiff_inside.py" and names[5] == "05_matmul_kernel.py"
    assert names[8] == "08_flash_attention.py" and names[10] == "10_gpt_from_parts.py"
    for n, path in FILES.items():  # the heading's number is the file's
        assert tutorial.parse_cells(open(path, encoding="utf-8").read())[0].text.startswith(
            f"# {n}. "), path


@pytest.mark.parametrize("number", sorted(FILES))
def test_tutorial_runs_straight_through(number, monkeypatch):
    monkeypatch.setenv("ATTN_TUTORIAL_QUICK", "1")  # the measuring cells at their small sizes
    r = attn("tutorial", str(number), "--no-pause")
    assert r.returncode == 0, r.stderr
    with open(FILES[number], encoding="utf-8") as f:
        cells = tutorial.parse_cells(f.read())
    code = sum(c.kind == "code" for c in cells)
    assert f"output of cell {code}/{code}" in r.stdout  # every cell ran
    assert "Enter for the next cell" not in r.stdout


def test_a_tutorial_runs_plainly_as_a_script():
    r = subprocess.run([sys.executable, FILES[1]], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT}, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "d(A@B)" in r.stdout


def test_list_and_bad_numbers():
    r = attn("tutorial")
    assert r.returncode == 0, r.stderr
    assert "Tensors and the graph" in r.stdout and "01_tensors_and_graph.py" in r.stdout
    _one_line_error(attn("tutorial", "99"), "no tutorial 99")
    _one_line_error(attn("tutorial", "one"), "invalid int")


def test_it_waits_for_enter_and_stops_waiting_when_stdin_closes():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "tutorial", "1"],
                       input="\n", capture_output=True, text=True, cwd=ROOT, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Enter for the next cell") == 2  # one Enter, then EOF: no more


def test_cells_parse_and_a_false_claim_fails_naming_its_line(tmp_path):
    path = tmp_path / "01_demo.py"
    path.write_text("# %% [markdown]\n# # Demo\n# text\n\n# %%\nx = 2\n\n# %%\n"
                    "assert x == 3, 'x is not 3'\n", encoding="utf-8")
    cells = tutorial.parse_cells(path.read_text(encoding="utf-8"))
    assert [c.kind for c in cells] == ["markdown", "code", "code"]
    assert cells[0].text == "# Demo\ntext" and cells[2].line == 9
    assert tutorial.title(str(path)) == "Demo"
    from rich.console import Console
    with (open(os.devnull, "w") as sink,
          pytest.raises(tutorial.TutorialFailed, match=r"line 9 \(assert x == 3.*x is not 3")):
        tutorial.step_through(str(path), Console(file=sink), pause=False)


def test_ctrl_c_at_the_pause_in_a_terminal_stops_cleanly():
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", IN_A_TERMINAL, os.path.join(ROOT, "cli.py"),
                             "tutorial", "1"], stdin=slave, stdout=slave, stderr=slave,
                            cwd=ROOT)
    os.close(slave)
    try:
        _read_until(master, "Enter for the next cell")
        os.write(master, b"\x03")  # Ctrl-C: SIGINT from the terminal
        assert "interrupted" in _read_until(master, "interrupted")
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)

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
        with open(path, encoding="utf-8") as f:
            assert tutorial.parse_cells(f.read())[0].text.startswith(f"# {n}. "), path


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_tutorial_runs_plainly_as_a_script():
    r = subprocess.run([sys.executable, FILES[1]], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT}, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "d(A@B)" in r.stdout


@pytest.mark.slow
def test_list_and_bad_numbers():
    r = attn("tutorial")
    assert r.returncode == 0, r.stderr
    assert "Tensors and the graph" in r.stdout and "01_tensors_and_graph.py" in r.stdout
    _one_line_error(attn("tutorial", "99"), "no tutorial 99")
    _one_line_error(attn("tutorial", "one"), "invalid int")


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.parametrize("number", sorted(FILES))
def test_every_tutorial_ends_with_one_to_three_exercises_whose_stub_compiles(number):
    from commands import exercises
    with open(FILES[number], encoding="utf-8") as f:
        text = f.read()
    found = exercises.regions(text.splitlines(), FILES[number])
    assert sorted({r[0] for r in found}) in ([1], [1, 2], [1, 2, 3])
    stub = exercises.stub_text(text, FILES[number])
    compile(stub, "stub.py", "exec")  # the copy a learner gets is valid Python
    assert stub.count("raise NotImplementedError(") == len(found)
    lines = stub.splitlines()
    for _, begin, end, _, _ in exercises.regions(lines, "stub"):  # no solution is left
        assert end == begin + 2 and lines[begin + 1].strip().startswith("raise NotImpl")


@pytest.mark.slow
def test_exercise_copy_fails_in_one_line_and_a_solution_passes(tmp_path):
    copy = tmp_path / "mine.py"
    r = attn("tutorial", "4", "--exercise", str(copy))
    assert r.returncode == 0, r.stderr
    stub = copy.read_text(encoding="utf-8")
    assert "np.exp(a)" not in stub and "# >>> exercise 2" in stub
    r = attn("tutorial", "4", "--check", str(copy))
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]  # one line
    assert "mine.py line" in r.stderr and "exercise 1 is not written yet" in r.stderr
    # the reference solution, pasted into the learner's copy, passes
    r = attn("tutorial", "4", "--check", FILES[4])
    assert r.returncode == 0, r.stderr
    assert "all 2 exercise(s) of tutorial 4 pass" in " ".join(r.stdout.split())
    # a wrong gradient is caught by the tutorial's own assert, named by its line
    with open(FILES[4], encoding="utf-8") as f:
        reference = f.read()
    text = reference.replace(
        "return sum_to(g / b, a.shape), sum_to(-g * a / (b * b), b.shape)",
        "return sum_to(g / b, a.shape), sum_to(g * a / (b * b), b.shape)")
    assert text != reference
    copy2 = tmp_path / "wrong.py"
    copy2.write_text(text, encoding="utf-8")
    r = attn("tutorial", "4", "--check", str(copy2))
    assert r.returncode == 1 and "the tutorial's line" in r.stderr
    assert "d loss/d w is wrong" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_exercise_refuses_to_overwrite_and_check_needs_the_markers(tmp_path):
    copy = tmp_path / "mine.py"
    copy.write_text("my work\n", encoding="utf-8")
    _one_line_error(attn("tutorial", "1", "--exercise", str(copy)), "already exists")
    assert copy.read_text(encoding="utf-8") == "my work\n"
    _one_line_error(attn("tutorial", "1", "--check", str(copy)), "exercise regions",
                    "keep every")
    _one_line_error(attn("tutorial", "1", "--check", str(tmp_path / "nope.py")), "no file")
    link = tmp_path / "link.py"
    link.symlink_to(tmp_path / "elsewhere.py")
    _one_line_error(attn("tutorial", "1", "--exercise", str(link)), "already exists")
    assert not (tmp_path / "elsewhere.py").exists()

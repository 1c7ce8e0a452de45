"""`attn tutorial [N]`: list the tutorials, or step through one cell at a time.

A tutorial is tutorials/NN_topic.py in `# %%` cells (jupytext's percent format): a cell
`# %% [markdown]` holds commented markdown, any other `# %%` cell holds code. The runner
renders the markdown with rich, shows the code highlighted, runs it in one namespace shared
by all cells (as a notebook does), and waits for Enter between cells unless --no-pause.
The folder is found next to the package (the repository root), so an editable install
(`pip install -e .`) finds it; a plain wheel install does not ship it.

Each tutorial ends with exercises (commands/exercises.py): `--exercise [PATH]` writes a copy
with the solutions taken out, `--check FILE` runs the tutorial's asserts on the learner's.
`ATTN_TUTORIAL_QUICK=1` makes the measuring cells use their small sizes (the tests set it).
"""

import os
import re
import sys
from dataclasses import dataclass

from commands import CliError, CommandFailed
from commands.terminal import read_line

TUTORIALS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "tutorials")
_NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.py$")


class TutorialFailed(CommandFailed):
    """A cell of a tutorial raised: its claim no longer holds (exit status 1)."""


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    text: str
    line: int  # 1-based line of the cell's first line in the file


def add_args(p):
    p.add_argument("number", nargs="?", type=int, metavar="N",
                   help="the tutorial to step through (default: list them)")
    p.add_argument("--no-pause", action="store_true",
                   help="run straight through instead of waiting for Enter after each cell")
    p.add_argument("--exercise", nargs="?", const="", metavar="PATH",
                   help="write a copy of tutorial N with its exercises to fill in (default: "
                        "NN_topic_exercise.py in the current folder)")
    p.add_argument("--check", metavar="FILE",
                   help="run tutorial N's asserts with your exercise solutions from FILE")
    p.epilog = ("examples:\n  attn tutorial                # the list\n"
                "  attn tutorial 1              # step through the first, Enter after each cell\n"
                "  attn tutorial 11 --no-pause  # run straight through\n"
                "  attn tutorial 4 --exercise   # write 04_autodiff_inside_exercise.py\n"
                "  attn tutorial 4 --check 04_autodiff_inside_exercise.py   # exits 1 until the "
                "stubs are filled")


def tutorial_files(folder=TUTORIALS):
    """{number: path} of the tutorials in `folder`, in order."""
    if not os.path.isdir(folder):
        raise CliError(f"no tutorials folder at '{folder}' (tutorials ship with the source "
                       f"tree: clone the repository and `pip install -e .`)")
    found = {}
    for name in sorted(os.listdir(folder)):
        m = _NAME.match(name)
        if m:
            found[int(m.group(1))] = os.path.join(folder, name)
    return found


def parse_cells(text):
    """The `# %%` cells of a tutorial's source, in order; text before the first marker (if
    any) is a code cell; markdown cells lose their leading `# `."""
    cells, kind, lines, start = [], "code", [], 1
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# %%"):
            _close(cells, kind, lines, start)
            kind = "markdown" if "[markdown]" in line else "code"
            lines, start = [], n + 1
        else:
            lines.append(line)
    _close(cells, kind, lines, start)
    return cells


def _close(cells, kind, lines, start):
    if kind == "markdown":
        lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
    text = "\n".join(lines).strip("\n")
    if text.strip():
        cells.append(Cell(kind, text, start))


def title(path):
    """The first line of a tutorial's first markdown cell, without the `#` of its heading."""
    with open(path, encoding="utf-8") as f:
        for cell in parse_cells(f.read()):
            if cell.kind == "markdown":
                heading = cell.text.splitlines()[0].lstrip("# ").strip()
                return re.sub(r"^\d+\.\s*", "", heading)  # the table numbers them
    return os.path.basename(path)


def run(args):
    from rich.console import Console
    files = tutorial_files()
    console = Console()
    if args.number is None:
        return _list(console, files)
    if args.number not in files:
        known = ", ".join(str(n) for n in files) or "none"
        raise CliError(f"no tutorial {args.number} (there are: {known}; `attn tutorial` "
                       f"lists them)")
    path = files[args.number]
    if args.exercise is not None or args.check is not None:
        return _exercises(args, path, console)
    step_through(path, console, pause=not args.no_pause)
    return 0


def _exercises(args, path, console):
    from commands import exercises
    if args.exercise is not None and args.check is not None:
        raise CliError("--exercise writes the copy, --check checks it: one at a time")
    if args.check is not None:
        n = exercises.check(path, args.check, step_through, TutorialFailed)
        console.print(f"all {n} exercise(s) of tutorial {args.number} pass: the tutorial's "
                      f"asserts hold with your code from {args.check}")
        return 0
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = args.exercise or os.path.basename(path).replace(".py", "_exercise.py")
    written = exercises.write_exercise(out, text, os.path.basename(path))
    console.print(f"wrote {written}: fill in the regions marked '# >>> exercise N', then "
                  f"`attn tutorial {args.number} --check {out}`")
    return 0


def _list(console, files):
    from rich.table import Table
    table = Table("N", "tutorial", "file", title="tutorials (attn tutorial N)")
    for n, path in files.items():
        table.add_row(str(n), title(path), os.path.relpath(path))
    console.print(table)
    return 0


def step_through(path, console, pause=True):
    """Show and run every cell of the tutorial at `path`; raises TutorialFailed naming the
    cell whose code raised (an assert whose claim no longer holds)."""
    from rich.markdown import Markdown
    from rich.syntax import Syntax
    with open(path, encoding="utf-8") as f:
        cells = parse_cells(f.read())
    scope = {"__name__": "__main__", "__file__": path}
    code_cells = sum(c.kind == "code" for c in cells)
    done = 0
    for cell in cells:
        if cell.kind == "markdown":
            console.print(Markdown(cell.text))
            console.print()
            continue
        done += 1
        console.print(Syntax(cell.text, "python", theme="ansi_dark", word_wrap=True))
        console.rule(f"[dim]output of cell {done}/{code_cells}[/]", style="dim")
        _run_cell(cell, path, scope)
        sys.stdout.flush()
        console.print()
        if pause and done < code_cells:
            pause = _wait(console)


def _run_cell(cell, path, scope):
    code = compile("\n" * (cell.line - 1) + cell.text, path, "exec")  # real line numbers
    try:
        exec(code, scope)  # noqa: S102  (the tutorial file itself, as `python tutorials/NN_x.py`)
    except Exception as e:
        sys.stdout.flush()
        line = _failing_line(e, path) or cell.line
        source = cell_source_line(path, line)
        what = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise TutorialFailed(f"{os.path.basename(path)} line {line} ({source}): {what}") from e


def cell_source_line(path, line):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else "?"


def _failing_line(error, path):
    tb, line = error.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _wait(console):
    """Wait for Enter; False (stop pausing) when stdin is closed."""
    try:
        read_line("-- Enter for the next cell --")
    except EOFError:
        console.print()
        return False
    return True

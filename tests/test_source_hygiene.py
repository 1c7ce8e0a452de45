"""The code speaks of the project only: every source and documentation file of the repository
keeps lines within 100 columns (Python), names no issue numbers and no paths outside the
repository. Each rule lists every offending line, so a failure says where to look."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("engine", "ops", "commands", "tests", "scripts", "benchmarks", "tutorials", "docs")
SKIP_PARTS = {"__pycache__", ".venv", "build", "dist", ".git"}
MAX_COLUMNS = 100
ISSUE_NUMBER = re.compile(r"\bissues?[ _#-]*\d+\b", re.IGNORECASE)
# the team's notes live beside the repository, not in it: a reader of the code has none of them
OUTSIDE_PATH = re.compile(r"\.\./shared\b|/work/|\b(DESIGN|STYLE|NUMBA|DEVELOPERS)\.md\b")


def _files(*suffixes):
    found = [ROOT / "cli.py", ROOT / "README.md"]
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in suffixes and not SKIP_PARTS & set(path.parts):
                found.append(path)
    return [p for p in found if p.suffix in suffixes and p.is_file()]


def _offending(paths, bad):
    hits = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if bad(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    return hits


def test_the_scan_sees_the_source_tree():
    names = {p.relative_to(ROOT).as_posix() for p in _files(".py", ".md")}
    assert {"cli.py", "README.md", "engine/tensor.py", "ops/README.md"} <= names
    assert "tests/test_source_hygiene.py" in names


def test_python_lines_fit_in_100_columns():
    assert _offending(_files(".py"), lambda line: len(line) > MAX_COLUMNS) == []


@pytest.mark.parametrize("rule, pattern", [("issue numbers", ISSUE_NUMBER),
                                           ("paths outside the repository", OUTSIDE_PATH)])
def test_no_references_outside_the_project(rule, pattern):
    this_file = pathlib.Path(__file__).resolve()
    paths = [p for p in _files(".py", ".md") if p.resolve() != this_file]
    assert _offending(paths, pattern.search) == [], rule


def test_the_patterns_catch_what_they_are_for():
    assert ISSUE_NUMBER.search("the bugs of issue 11") and ISSUE_NUMBER.search("issue13")
    assert not ISSUE_NUMBER.search("an issue with 3 parts") and not ISSUE_NUMBER.search("tissue 4")
    assert OUTSIDE_PATH.search("see ../shared/NUMBA.md") and not OUTSIDE_PATH.search("shared/x")
    assert OUTSIDE_PATH.search("the canonical configs (DESIGN.md)")
    assert not OUTSIDE_PATH.search("ops/README.md")

"""Tutorial exercises: `attn tutorial N --exercise` and `attn tutorial N --check FILE`.

An exercise is a region of a tutorial's code between two marker lines,

    # >>> exercise 1: what to write (the hint)
    ...the reference solution...
    # <<< exercise 1

(one exercise may have several regions). `--exercise` writes a copy of the tutorial whose
regions hold only `raise NotImplementedError(...)`; the learner fills them in. `--check`
puts the learner's regions into the tutorial in place of the reference ones and runs the
whole tutorial, so its own asserts, not the learner's copy of them, judge the answer.
"""

import contextlib
import io
import os
import re
import tempfile

from commands import CliError

_BEGIN = re.compile(r"^(\s*)# >>> exercise (\d+)(?::\s*(.*))?$")
_END = re.compile(r"^\s*# <<< exercise (\d+)\s*$")
MAX_BYTES = 1 << 20  # a learner's file is a tutorial: refuse anything far larger


def regions(lines, where):
    """[(number, begin, end, indent, hint)]: begin/end index the marker lines of `lines`."""
    found, open_ = [], None
    for i, line in enumerate(lines):
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            if open_ is not None:
                raise CliError(f"{where} line {i + 1}: exercise {begin.group(2)} starts "
                               f"inside exercise {open_[0]} (line {open_[1] + 1})")
            open_ = (int(begin.group(2)), i, begin.group(1), begin.group(3) or "")
        elif end:
            if open_ is None or int(end.group(1)) != open_[0]:
                raise CliError(f"{where} line {i + 1}: '# <<< exercise {end.group(1)}' "
                               f"closes no open '# >>> exercise {end.group(1)}'")
            found.append((open_[0], open_[1], i, open_[2], open_[3]))
            open_ = None
    if open_ is not None:
        raise CliError(f"{where} line {open_[1] + 1}: exercise {open_[0]} is never closed "
                       f"(a '# <<< exercise {open_[0]}' line)")
    return found


def stub_text(text, where):
    """The tutorial's source with every exercise region's body replaced by a raise."""
    lines = text.splitlines()
    found = regions(lines, where)
    if not found:
        raise CliError(f"{where} has no exercises")
    out, last = [], 0
    for number, begin, end, indent, hint in found:
        out += lines[last:begin + 1]
        what = f"exercise {number} is not written yet" + (f": {hint}" if hint else "")
        out.append(f"{indent}raise NotImplementedError({what!r})")
        last = end
    return "\n".join(out + lines[last:]) + "\n"


def write_exercise(path, text, where):
    """Write the stub copy to `path`: a new file only (never over one, nor via a link)."""
    target = os.path.abspath(path)
    if os.path.lexists(target):
        raise CliError(f"{path} already exists: give another path (your work is not "
                       f"overwritten)")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise CliError(f"no folder {folder} to write {path} into")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".exercise-", suffix=".py")
    except OSError as e:
        raise CliError(f"cannot write into {folder}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(stub_text(text, where))
        os.link(tmp, target)  # fails if the name appeared meanwhile: never replaces a file
    except FileExistsError:
        raise CliError(f"{path} already exists: give another path") from None
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        os.unlink(tmp)
    return target


def read_learner_file(path):
    if not os.path.isfile(path):
        raise CliError(f"no file {path} to check (`attn tutorial N --exercise` writes one)")
    if os.path.getsize(path) > MAX_BYTES:
        raise CliError(f"{path} is over {MAX_BYTES // 1024} KiB: not a tutorial exercise")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise CliError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def splice(reference, learner, ref_name, learner_name):
    """The reference source with the learner's region bodies; also {spliced line: (whose,
    line)}, whose "yours" or "tutorial", lines 1-based, for naming a failing line."""
    ref_lines, mine = reference.splitlines(), learner.splitlines()
    ref_regions, my_regions = regions(ref_lines, ref_name), regions(mine, learner_name)
    want, have = [r[0] for r in ref_regions], [r[0] for r in my_regions]
    if want != have:
        raise CliError(f"{learner_name} has exercise regions {have or 'none'}, the tutorial "
                       f"{want}: keep every '# >>> exercise N' and '# <<< exercise N' line")
    out, origin = [], {}

    def take(lines, start, stop, whose):
        for j in range(start, stop):
            out.append(lines[j])
            origin[len(out)] = (whose, j + 1)

    last = 0
    for (_, begin, end, _, _), (_, my_begin, my_end, _, _) in zip(ref_regions, my_regions):
        take(ref_lines, last, begin + 1, "tutorial")
        take(mine, my_begin + 1, my_end, "yours")
        last = end
    take(ref_lines, last, len(ref_lines), "tutorial")
    return "\n".join(out) + "\n", origin


def check(tutorial_path, learner_path, step_through, failed):
    """Run the tutorial with the learner's regions; raise `failed` (one line) on the first
    cell that fails; return the number of exercises checked."""
    from rich.console import Console
    with open(tutorial_path, encoding="utf-8") as f:
        reference = f.read()
    name = os.path.basename(tutorial_path)
    spliced, origin = splice(reference, read_learner_file(learner_path), name, learner_path)
    with tempfile.TemporaryDirectory(prefix="attn-check-") as folder:
        path = os.path.join(folder, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(spliced)
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), open(os.devnull, "w") as devnull:
                step_through(path, Console(file=devnull), pause=False)
        except failed as e:
            raise failed(_where(e.__cause__, path, spliced, origin, learner_path)) from None
    return len({r[0] for r in regions(reference.splitlines(), name)})


def _where(error, path, spliced, origin, learner_path):
    """One line: the failing line (the learner's, or the tutorial's assert) and the error."""
    line, tb = None, error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    lines = spliced.splitlines()
    source = lines[line - 1].strip() if line and 0 < line <= len(lines) else "?"
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    whose, at = origin.get(line, ("tutorial", line))
    if whose == "yours":
        return f"{learner_path} line {at}: {what}"
    return f"the tutorial's line {at} ({source}) fails with your code: {what}"

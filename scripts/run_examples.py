"""Run every `attn` example the project shows a user, so none can go stale.

The examples are the command lines of README.md's ```bash blocks whose command is `attn`
(after any VAR=value prefixes), then the `examples:` lines of every `attn COMMAND --help`
epilog, in that order and each once. They run with bash, one after another, in one scratch
directory (so a `sample` finds the run an earlier `train` made), with standard input from
/dev/null and the files the examples name made there first:

  book.txt   a UTF-8 text (this README), for `attn train --text book.txt`
  my.pgm     a 16x16 greyscale PGM image (a vertical bar), for `--image my.pgm`
  dates.tsv  2,000 pairs of ISO dates and English (scripts/pairs_dates.py), for `--pairs`
  shapes/    a folder of class folders (bar/, dot/), 63 16x16 PGM images each, for `--images`

ATTN_STEPS_CAP=20 caps every training run at 20 steps past its start (commands/train.py:
only CI sets it, so the examples check the plumbing, not the learning). An example passes
when it exits with status 0, or with the status its comment names ("# exits 1 ...": a
`--check` of an exercise file whose stubs are not filled yet). One kind is skipped, and said
so: `--device cuda` without a GPU unless the line itself asks for the simulator
(NUMBA_ENABLE_CUDASIM=1); a whole training run on the simulator, a Python thread per CUDA
thread, would take hours.

    python scripts/run_examples.py            # run them all (CI does, after the tests)
    python scripts/run_examples.py --list     # only print them
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ATTN = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*attn(?:\s|$)")


def readme_examples(path):
    """`attn` command lines of the ```bash blocks of a markdown file, in order."""
    found, in_bash = [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            stripped = line.strip()
            if stripped.startswith("```"):
                in_bash = not in_bash and stripped[3:].strip() == "bash"
            elif in_bash and _ATTN.match(stripped):
                found.append(stripped)
    return found


def epilog_examples():
    """`attn` lines of the examples in every subcommand's --help epilog, in table order."""
    sys.path.insert(0, ROOT)
    import cli
    found = []
    subparsers = cli.build_parser(complete=True)._subparsers._group_actions[0].choices
    for parser in subparsers.values():
        found += [line.strip() for line in (parser.epilog or "").splitlines()
                  if _ATTN.match(line.strip())]
    return found


def examples():
    return list(dict.fromkeys(readme_examples(os.path.join(ROOT, "README.md"))
                              + epilog_examples()))


def _pgm(path, pixels):
    with open(path, "wb") as f:
        f.write(b"P5\n16 16\n255\n" + bytes(pixels))


def _shape(kind, shift, down=0):
    """16x16 pixels: a vertical bar or a dot, moved by `shift` columns and `down` rows."""
    pixels = bytearray(16 * 16)
    rows = range(3 + down, 13 + down) if kind == "bar" else range(6 + down, 10 + down)
    cols = (7 + shift, 8 + shift) if kind == "bar" else range(6 + shift, 10 + shift)
    for row in rows:
        for col in cols:
            pixels[row * 16 + col] = 255
    return pixels


def make_fixtures(where):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as src:
        text = src.read()
    with open(os.path.join(where, "book.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    _pgm(os.path.join(where, "my.pgm"), _shape("bar", 0))
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from pairs_dates import lines
    with open(os.path.join(where, "dates.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines(2000)) + "\n")
    for kind in ("bar", "dot"):
        os.makedirs(os.path.join(where, "shapes", kind), exist_ok=True)
        for shift in range(-4, 5):
            for down in range(-3, 4):
                _pgm(os.path.join(where, "shapes", kind, f"{shift + 4}-{down + 3}.pgm"),
                     _shape(kind, shift, down))


def expected_status(command):
    """The exit status an example's comment promises ("# ... exits N ..."), else 0."""
    found = re.search(r"#.*\bexits (\d+)\b", command)
    return int(found.group(1)) if found else 0


def needs_gpu(command):
    """True for a `--device cuda` line that does not ask for the simulator itself."""
    return "--device cuda" in command and "NUMBA_ENABLE_CUDASIM=1" not in command


def gpu_present():
    probe = "from numba import cuda; print(cuda.is_available())"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, check=False, timeout=300)
    return out.stdout.strip() == "True"


def run_all(commands, where, timeout):
    env = dict(os.environ)
    env.setdefault("ATTN_STEPS_CAP", "20")
    failed, skipped, gpu = [], [], None
    for i, command in enumerate(commands, 1):
        print(f"[{i}/{len(commands)}] $ {command}", flush=True)
        if needs_gpu(command):
            gpu = gpu_present() if gpu is None else gpu
            if not gpu:
                print("    -> skipped: needs a GPU (none here)", flush=True)
                skipped.append(command)
                continue
        t0 = time.perf_counter()
        try:
            done = subprocess.run(["bash", "-c", command], cwd=where, env=env, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
            status = done.returncode
        except subprocess.TimeoutExpired:
            status = f"timed out after {timeout} s"
        ok = status == expected_status(command)
        print(f"    -> {'ok' if ok else f'FAILED ({status})'} in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        if not ok:
            failed.append(command)
    return failed, skipped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the examples, run nothing")
    parser.add_argument("--dir", help="run in this directory (default: a new temporary one)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per example")
    args = parser.parse_args(argv)
    commands = examples()
    if args.list:
        print("\n".join(commands))
        return 0
    where = args.dir or tempfile.mkdtemp(prefix="attn-examples-")
    os.makedirs(where, exist_ok=True)
    make_fixtures(where)
    print(f"running {len(commands)} examples in {where}", flush=True)
    failed, skipped = run_all(commands, where, args.timeout)
    ran = len(commands) - len(skipped)
    print(f"examples: {ran - len(failed)} of {ran} exited 0, {len(skipped)} skipped"
          + "".join(f"\n  failed: {c}" for c in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

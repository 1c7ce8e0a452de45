"""Cold and warm start: how long a first training step takes on a fresh install (every Numba
kernel compiled, an empty cache) and once the kernel cache is warm.

    python benchmarks/cold_start.py [--json PATH]

Each run is a fresh process with NUMBA_CACHE_DIR pointing at a new empty directory (cold),
then again at the same, now filled, directory (warm). The child reports its phases: importing
the engine, building the tiny GPT and its optimizer, the first training step (where the
kernels compile or load from the cache) and a second step (what a step costs once warm).
"Start to first step" is the wall time from launching the interpreter to the end of the
first step (the child stamps that moment with the wall clock, which both processes share);
"exit" is what the child takes after its last line to end (the interpreter's shutdown),
shown apart because the step is done by then. Then `attn train --steps 1` (the README's
command, one step) is timed whole, cold and warm, with its data, evaluation and checkpoint.
Cold runs are made twice: compiling in the one process, and with ops.warm's background
process compiling from the other end, as train() does when a core is spare (forced here with
ENGINE_PRECOMPILE=1, so measure on a quiet machine).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, ".")
import numpy as np
import engine, ops.runtime, ops.warm
from engine.models import GPT, GPTConfig
ops.runtime.configure()  # as attn train does
background = ops.warm.start_background() if sys.argv[1] == "1" else None  # as train() does
from engine.optim import AdamW, weight_decay_groups
t_import = time.perf_counter()
cfg = GPTConfig.from_name("tiny")
model = GPT(cfg, rng=0)
opt = AdamW(weight_decay_groups(model, 0.1), lr=1e-3)
rng = np.random.default_rng(0)
idx = rng.integers(0, cfg.vocab_size, size=(32, cfg.block_size), dtype=np.int64)
targets = np.roll(idx, -1, axis=1)
t_build = time.perf_counter()
def step():
    opt.zero_grad()
    _, loss = model(idx, targets)
    loss.backward()
    opt.step()
step()
t_first, first_done = time.perf_counter(), time.time()
step()
t_second = time.perf_counter()
if background is not None:
    background.wait()  # (not timed) so that the next measurement runs alone
print(json.dumps({"import_s": t_import - t0, "build_s": t_build - t_import,
                  "first_step_s": t_first - t_build, "second_step_s": t_second - t_first,
                  "first_done": first_done, "last_line": time.time()}), flush=True)
"""


def _child(cache_dir, background):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, ENGINE_PRECOMPILE="1" if background else "0")
    launched = time.time()
    out = subprocess.run([sys.executable, "-c", _CHILD, "1" if background else "0"], cwd=ROOT,
                         env=env, check=True, capture_output=True, text=True).stdout
    ended = time.time()
    row = json.loads(out.strip().splitlines()[-1])
    # the interpreter's own start-up, before the child's first line, counts too
    row["start_to_first_step_s"] = row.pop("first_done") - launched
    row["exit_s"] = ended - row.pop("last_line")
    return row


def _attn_train(cache_dir, out_dir, background):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, ENGINE_PRECOMPILE="1" if background else "0")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "cli.py", "train", "--steps", "1", "--out", out_dir],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    _wait_for_background(cache_dir)
    return wall


def _wait_for_background(cache_dir, limit_s=120):
    """Wait (untimed) until no ops.warm process compiles into cache_dir: training does not
    wait for it, and the next measurement must run alone."""
    deadline = time.time() + limit_s
    while time.time() < deadline:
        busy = False
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            busy |= b"ops.warm" in cmd and f"NUMBA_CACHE_DIR={cache_dir}".encode() in env
        if not busy:
            return
        time.sleep(0.2)


def measure():
    """Each cold row starts from its own empty cache; each warm row reuses the cache the row
    before it filled. "background" rows run ops.warm's second compiling process, as
    train() does on a cold cache; the others compile in the training process alone."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, background in enumerate((False, True)):
            cache = os.path.join(tmp, f"step{n}")
            os.mkdir(cache)
            how = ", background compile" if background else ", one process"
            rows.append({"run": f"first step, cold cache{how}", **_child(cache, background)})
        rows.append({"run": "first step, warm cache", **_child(cache, False)})
        for n, background in enumerate((False, True)):
            cache = os.path.join(tmp, f"train{n}")
            os.mkdir(cache)
            how = ", background compile" if background else ", one process"
            rows.append({"run": f"attn train --steps 1, cold cache{how}",
                         "wall_s": _attn_train(cache, os.path.join(tmp, f"run{n}"),
                                               background)})
        rows.append({"run": "attn train --steps 1, warm cache",
                     "wall_s": _attn_train(cache, os.path.join(tmp, "run-warm"), False)})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    rows = measure()
    from rich.table import Table
    table = Table(title=f"start-up of the tiny GPT's training, {os.cpu_count()} cores")
    for col in ("run", "import", "first step", "second step", "start to first step", "exit",
                "whole command"):
        table.add_column(col, justify="right")
    for r in rows:
        cells = [f"{r[key]:.2f} s" if key in r else "-" for key in
                 ("import_s", "first_step_s", "second_step_s", "start_to_first_step_s",
                  "exit_s", "wall_s")]
        table.add_row(r["run"], *cells)
    from benchmarks.report import show
    show(table, rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

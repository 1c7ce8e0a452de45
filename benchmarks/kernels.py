"""Kernel benchmarks: our Numba CPU kernels against the numpy reference (and PyTorch CPU eager).

    python benchmarks/kernels.py --separate-processes [--quick] [--only NAME] [--json PATH]
    python benchmarks/kernels.py [--quick] [--only NAME] [--json PATH] [--no-compile]
    python benchmarks/kernels.py --device cuda [--quick] [--only NAME]   (a GPU: cuda_bench.py)

Kernels come only from the registry: `ops.kernel(name, backend="numba")` is "ours",
`ops.kernel(name, backend="numpy")` the reference. A kernel with no cpu form yet is marked so
(the numba backend would fall back to the reference); one not registered is skipped.
Method: each backend gets its own inputs from the same seed (some kernels update in place);
the first call is timed on its own (it includes JIT compilation or the cache load), one more
call sizes the repeat count so each case takes about 0.3 s (--quick) or 1 s, and the table
gives medians of `time.perf_counter` intervals. The first outputs of ours and the reference
are compared; a mismatch is flagged. Ratios are numpy / ours: > 1 means ours is faster.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ops
from benchmarks import kernel_compile
from benchmarks.kernel_cases import all_cases

SEED = 0
MAX_REPEATS = 5000


def _torch():
    """The torch module, or None when it cannot be imported."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _arrays(out):
    """Copies of the numpy arrays in a (nested) kernel result, for comparison."""
    if isinstance(out, (tuple, list)):
        return [a for item in out for a in _arrays(item)]
    return [np.array(out, copy=True)]


def _timed(thunk, budget, min_repeats, keep=True):
    """(median seconds, first-call seconds, first outputs if keep) for a no-argument function."""
    t0 = time.perf_counter()
    out = thunk()
    first = time.perf_counter() - t0
    first_out = _arrays(out) if keep else None
    t0 = time.perf_counter()
    thunk()
    estimate = max(time.perf_counter() - t0, 1e-7)
    repeats = int(min(MAX_REPEATS, max(min_repeats, budget / estimate)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        thunk()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), first, first_out


def _same(ours, ref, rtol=1e-3):
    """True when every output of ours matches the reference to a loose float32 tolerance."""
    if len(ours) != len(ref):
        return False
    for a, b in zip(ours, ref):
        if a.shape != b.shape:
            return False
        scale = float(np.max(np.abs(b[np.isfinite(b)]), initial=1e-30))
        if not np.allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True):
            return False
    return True


def _status(case):
    """'ok', 'no cpu form yet' or 'not registered' for the kernels a case calls."""
    for name in case.names:
        try:
            ops.kernel(name, backend="numpy")
        except LookupError:
            return "not registered"
    if any("cpu" not in ops.implementations(name) for name in case.names):
        return "no cpu form yet"
    return "ok"


def _kernels(backend):
    return lambda name: ops.kernel(name, backend=backend)


def _row(case, status):
    return case.extra | {"table": "kernels", "kernel": case.kernel, "shape": case.shape,
            "dtype": case.dtype, "status": status, "note": case.note,
            "target_ratio": case.target, "ours_s": None, "numpy_s": None, "torch_s": None,
            "first_call_s": None, "ratio": None, "torch_ratio": None, "throughput": None,
            "unit": "GFLOP/s" if case.flops else "GB/s", "met": None, "outputs_match": None}


def measure_case(case, budget, min_repeats, torch, sides=("numpy", "ours")):
    """Time one case on the given sides of numpy and ours; returns its result row (a dict).
    Without "numpy", the reference still runs once (untimed) to check ours' outputs."""
    row = _row(case, _status(case))
    if row["status"] == "not registered":
        return row
    have_ours = row["status"] == "ok" and "ours" in sides
    share = budget / max(1, ("numpy" in sides) + have_ours)
    ref_thunk = case.call(_kernels("numpy"), case.make(np.random.default_rng(SEED)))
    if "numpy" in sides:
        row["numpy_s"], _, ref_out = _timed(ref_thunk, share, min_repeats)
    else:
        ref_out = _arrays(ref_thunk()) if have_ours else None
    if have_ours:
        thunk = case.call(_kernels("numba"), case.make(np.random.default_rng(SEED)))
        row["ours_s"], row["first_call_s"], out = _timed(thunk, share, min_repeats)
        row["outputs_match"] = _same(out, ref_out)
        work = case.flops if case.flops else case.nbytes
        row["throughput"] = work / row["ours_s"] / 1e9
    finish_row(case, row)
    return row


def finish_row(case, row):
    """The ratios and the target verdict of a row from its measured times."""
    if row["ours_s"] and row["numpy_s"]:
        row["ratio"] = row["numpy_s"] / row["ours_s"]
        row["met"] = bool(row["ratio"] >= case.target and row["outputs_match"])
    if row["ours_s"] and row["torch_s"]:
        row["torch_ratio"] = row["torch_s"] / row["ours_s"]


def measure_torch(case, row, budget, min_repeats, torch):
    """Add torch's time to a case's row. Run after every numpy/ours measurement: torch's
    OpenMP threads keep spinning after its calls and would steal a core from the next case."""
    if torch is None or case.torch is None or row["status"] == "not registered":
        return
    share = budget / (2 + (row["status"] == "ok"))
    torch_thunk = case.torch(case.make(np.random.default_rng(SEED)))
    row["torch_s"] = _timed(torch_thunk, share, min_repeats, keep=False)[0]
    finish_row(case, row)


def _selected(only):
    cases = all_cases()
    if only:
        cases = [c for c in cases if only in c.kernel or any(only in n for n in c.names)]
    return cases


def run(quick=False, only=None, compile_times=True, echo=None,
        sides=("numpy", "ours", "torch")):
    """Run the benchmarks; returns result rows (dicts), kernel rows then compile rows.
    quick: ~0.3 s per case instead of ~1 s and a shorter compile measurement;
    only: keep the cases whose label or kernel names contain this string;
    echo: called with a short progress line per case (e.g. print), or None;
    sides: which of numpy, ours and torch to time in this process.
    """
    torch = _torch() if "torch" in sides else None
    budget, min_repeats = (0.3, 3) if quick else (1.0, 5)
    cases, rows = _selected(only), []
    for case in cases:
        if echo:
            echo(f"  {case.kernel} {case.shape}")
        rows.append(measure_case(case, budget, min_repeats, torch, sides))
    for case, row in zip(cases, rows):
        measure_torch(case, row, budget, min_repeats, torch)
    if compile_times:
        names = sorted({n for c in _selected(only) for n in c.names})
        rows.extend(kernel_compile.measure(names, quick=quick, echo=echo))
    return rows


def run_separate(quick=False, only=None, compile_times=True, echo=None):
    """`run` with each side alone in its own process: ours with the BLAS policy (one BLAS
    thread), numpy and torch with ENGINE_BLAS_THREADS=keep (their default threads). In one
    process, OpenBLAS's and torch's worker threads spin after their calls and slow the next
    side (ops/blas.py). Rows are merged case by case."""
    import subprocess
    import tempfile
    per_side = {}
    for side in ("ours", "numpy", "torch"):
        if echo:
            echo(f"  {side}: its own process")
        env = dict(os.environ) | ({} if side == "ours" else {"ENGINE_BLAS_THREADS": "keep"})
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rows.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--side", side, "--json", path,
                   "--no-compile"]
            cmd += (["--quick"] if quick else []) + (["--only", only] if only else [])
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
            with open(path) as f:
                per_side[side] = json.load(f)["results"]
    cases, rows = _selected(only), per_side["ours"]
    for case, row, ref, tor in zip(cases, rows, per_side["numpy"], per_side["torch"]):
        row["numpy_s"], row["torch_s"] = ref["numpy_s"], tor["torch_s"]
        finish_row(case, row)
    if compile_times:
        names = sorted({n for c in cases for n in c.names})
        rows.extend(kernel_compile.measure(names, quick=quick, echo=echo))
    return rows


def environment():
    """Versions and machine facts recorded with the results."""
    import numba
    torch = _torch()
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = numba.config.THREADING_LAYER
    return {"python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "torch": getattr(torch, "__version__", None),
            "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(),
            "threading_layer": layer, "torch_threads": torch.get_num_threads() if torch else None,
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def main(argv=None):
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~0.3 s per case, not ~1 s")
    parser.add_argument("--only", metavar="NAME", help="cases whose kernel contains NAME")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write a markdown table")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the compile-time table (fresh subprocesses)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: the GPU kernels (benchmarks/cuda_bench.py); default cpu")
    parser.add_argument("--separate-processes", action="store_true",
                        help="ours, numpy and torch each alone in its own process (the "
                             "README's figures)")
    parser.add_argument("--side", choices=("ours", "numpy", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only and args.device == "cpu" and not _selected(args.only):
        parser.error(f"--only {args.only!r} matches no kernel (names: "
                     f"{' '.join(sorted({c.kernel for c in all_cases()}))})")
    if args.device == "cuda":
        from benchmarks import cuda_bench
        reason = cuda_bench.no_gpu_reason()
        if reason:
            print(reason)
            return 0
        cuda_bench.print_kernels(args.quick, args.only)
        return 0
    import ops.runtime
    ops.runtime.configure()  # ours as the CLI runs it (numpy sides: ENGINE_BLAS_THREADS=keep)
    from benchmarks import kernel_report
    console = kernel_report.console()
    runner = run_separate if args.separate_processes else run
    kwargs = {"sides": (args.side,)} if args.side else {}
    rows = runner(quick=args.quick, only=args.only, compile_times=not args.no_compile,
                  echo=lambda line: console.print(line, style="dim"), **kwargs)
    env = environment()
    if args.side:  # a child of --separate-processes: its rows go to the parent
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": rows}, f)
        return 0
    kernel_report.print_tables(console, rows, env)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": rows}, f, indent=1)
        console.print(f"wrote {args.json}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(kernel_report.markdown_table(rows, env) + "\n")
        console.print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

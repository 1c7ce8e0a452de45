"""JIT compile and cache-load time of each kernel, measured in fresh Python processes.

Cold cache: NUMBA_CACHE_DIR points at an empty temporary folder, so every kernel compiles.
Warm cache: a second process with the same folder loads what the first one wrote. Each
process calls the kernels once on small float32 inputs (so it compiles only the variants
those inputs reach) and reports the first-call times, the `import ops` time and the wall
time from just before the parent spawned it to its first kernel result.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TARGET_S = 2.0  # process start to first kernel result, warm cache
F32 = np.float32


def _x(rng, *shape):
    return rng.standard_normal(shape).astype(F32)


def _smoke_args(name, rng):
    """Small float32 arguments for kernel `name`; backward inputs come from the reference."""
    import ops
    ref = lambda n: ops.kernel(n, backend="numpy")
    x, dy, t = _x(rng, 8, 16), _x(rng, 8, 16), rng.integers(0, 16, size=8)
    q, k, v, do = (_x(rng, 2, 2, 8, 4) for _ in range(4))
    w, b = _x(rng, 16), _x(rng, 16)
    args = {
        "matmul": lambda: (x, _x(rng, 16, 8)), "matmul_nt": lambda: (x, _x(rng, 4, 16)),
        "matmul_tn": lambda: (x, _x(rng, 8, 4)),
        "softmax": lambda: (x,), "softmax_backward": lambda: (ref("softmax")(x), dy),
        "log_softmax": lambda: (x,),
        "log_softmax_backward": lambda: (ref("log_softmax")(x), dy),
        "gelu": lambda: (x,), "gelu_backward": lambda: (x, dy),
        "layer_norm": lambda: (x, w, b, 1e-5),
        "layer_norm_backward": lambda: (dy, x, w) + tuple(ref("layer_norm")(x, w, b, 1e-5)[1:]),
        "cross_entropy": lambda: (x, t, -100),
        "cross_entropy_backward": lambda: (x, t, ref("cross_entropy")(x, t, -100)[1], -100, 1.0),
        "attention": lambda: (q, k, v, True, 0.5, None),
        "attention_backward": lambda: (do, q, k, v) + tuple(
            ref("attention")(q, k, v, True, 0.5, None)) + (True, 0.5, None),
        "embedding": lambda: (_x(rng, 16, 8), t),
        "embedding_backward": lambda: (t, _x(rng, 8, 8), 16),
        "adamw_update": lambda: (w.copy(), b, np.zeros(16, F32), np.zeros(16, F32),
                                 1e-3, 0.9, 0.95, 1e-8, 0.1, 1),
    }
    return args[name]()


def child(names):
    """Runs in the fresh process: call each kernel once, print one JSON line of timings."""
    spawned = float(os.environ["BENCH_SPAWNED_AT"])
    t0 = time.perf_counter()
    import ops
    import ops.runtime
    ops.runtime.configure()  # as the CLI does
    report = {"import_s": time.perf_counter() - t0, "first_call_s": {}, "no_cpu": []}
    rng = np.random.default_rng(0)
    for name in names:
        if "cpu" not in ops.implementations(name):
            report["no_cpu"].append(name)
        args = _smoke_args(name, rng)
        fn = ops.kernel(name, backend="numba")
        t0 = time.perf_counter()
        fn(*args)
        report["first_call_s"][name] = time.perf_counter() - t0
        report.setdefault("start_to_first_result_s", time.time() - spawned)
    report["start_to_all_results_s"] = time.time() - spawned
    print(json.dumps(report))


def _spawn(names, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, BENCH_SPAWNED_AT=repr(time.time()))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", *names]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"compile-time child failed for {names}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cold_and_warm(names):
    """(cold report, warm report) from two fresh processes sharing an empty cache folder."""
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
        return _spawn(names, cache_dir), _spawn(names, cache_dir)


def _row(kernel, cold, warm, method, names=None):
    """One table row; names: the kernels whose first calls are summed (default [kernel])."""
    names = names or [kernel]
    start = warm["start_to_first_result_s"] if method != "in sequence" else None
    no_cpu = [n for n in names if n in cold["no_cpu"]]
    return {"table": "compile", "kernel": kernel, "method": method,
            "status": "no cpu form yet" if no_cpu and len(names) == 1 else "ok",
            "cold_s": sum(cold["first_call_s"][n] for n in names),
            "warm_s": sum(warm["first_call_s"][n] for n in names),
            "import_cold_s": cold["import_s"], "import_warm_s": warm["import_s"],
            "warm_start_to_first_result_s": start,
            "warm_start_to_all_results_s": warm["start_to_all_results_s"],
            "target_start_s": START_TARGET_S,
            "met": None if start is None else bool(start <= START_TARGET_S)}


def measure(names, quick=False, echo=None):
    """Compile-time rows: one per kernel, then one for all of them in one process.

    quick: one cold and one warm process for all kernels (per-kernel times are then the
    first calls in sequence, so shared helpers count toward the first kernel that uses
    them); otherwise a fresh cold/warm pair per kernel as well.
    """
    rows = []
    for name in ([] if quick else names):
        if echo:
            echo(f"  compile {name}")
        rows.append(_row(name, *_cold_and_warm([name]), "own process"))
    if echo:
        echo("  compile: all kernels in one process")
    cold, warm = _cold_and_warm(names)
    if quick:
        rows.extend(_row(name, cold, warm, "in sequence") for name in names)
    rows.append(_row("all kernels", cold, warm, "one process", names))
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    sys.path.insert(0, ROOT)
    child(sys.argv[2:])

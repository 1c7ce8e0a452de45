"""Compare Numba threading layers for the prange matmul kernel when mixed with numpy/OpenBLAS.

Each layer runs in its own subprocess (a process can pick its layer only once):
  * loop time of numpy alone, of our kernel alone, and of the two interleaved;
  * our kernel alone at a tiny-GPT shape, (2048, 64) @ (64, 192), where each call is short
    and the cost of starting a parallel region shows;
  * the cost of one empty parallel region (2 iterations doing nothing);
  * whether a child made by os.fork() after the kernels ran survives and computes correctly.

    python benchmarks/threading_layers.py [--repeats 200] [--size 256]
"""

import argparse
import json
import os
import subprocess
import sys
import time

LAYERS = ("workqueue", "omp", "tbb")
FORK_TIMEOUT_S = 60


def _time_loop(fn, repeats):
    """Seconds for `repeats` calls of fn, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, time.perf_counter() - start)
    return best


def _region_us(repeats):
    """Microseconds per launch of a parallel region whose iterations do (almost) nothing."""
    import numba
    import numpy as np

    @numba.njit(parallel=True)
    def empty(out):
        for i in numba.prange(out.size):
            out[i] = i

    out = np.zeros(2)
    empty(out)
    return _time_loop(lambda: empty(out), repeats) / repeats * 1e6


def _fork_check(kernel, a, b, want):
    """Fork, run the kernel in the child, and say how the child ended."""
    pid = os.fork()
    if pid == 0:  # child: compute, then exit without running the parent's atexit handlers
        ok = abs(kernel(a, b) - want).max() <= 1e-3 * abs(want).max()
        os._exit(0 if ok else 3)
    deadline = time.monotonic() + FORK_TIMEOUT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                return f"killed by signal {os.WTERMSIG(status)}"
            return {0: "ok", 3: "wrong result"}.get(os.WEXITSTATUS(status), "crashed")
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


def child(repeats, size):
    """Measure in this process (its threading layer comes from NUMBA_THREADING_LAYER)."""
    import numba
    import numpy as np

    from ops import matmul, runtime
    from ops.matmul import matmul_cpu

    runtime.configure()  # reads NUMBA_THREADING_LAYER, preloads TBB

    matmul.SERIAL_WORK = 0  # always take the prange path: that is what is being compared
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(np.float32)
    b = rng.standard_normal((size, size)).astype(np.float32)
    try:
        want = matmul_cpu(a, b)
    except ValueError as exc:  # numba: the requested layer cannot be loaded here
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:70]}))
        return
    np.matmul(a, b)

    def both():
        np.matmul(a, b)
        matmul_cpu(a, b)

    x = rng.standard_normal((2048, 64)).astype(np.float32)
    w = rng.standard_normal((64, 192)).astype(np.float32)
    matmul_cpu(x, w)
    result = {
        "layer": numba.threading_layer(),
        "numpy_s": _time_loop(lambda: np.matmul(a, b), repeats),
        "ours_s": _time_loop(lambda: matmul_cpu(a, b), repeats),
        "mixed_s": _time_loop(both, repeats),
        "gpt_ms": _time_loop(lambda: matmul_cpu(x, w), repeats) / repeats * 1e3,
        "region_us": _region_us(repeats),
        "fork": _fork_check(matmul_cpu, a, b, want),
    }
    print(json.dumps(result))


def run_layer(layer, repeats, size):
    """Run `child` under one threading layer in a fresh interpreter; its JSON result."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer, PYTHONPATH=path)
    cmd = [sys.executable, os.path.abspath(__file__), "--child",
           "--repeats", str(repeats), "--size", str(size)]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True,
                          timeout=900, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:70]}"}
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.repeats, args.size)
    print(f"{args.repeats} x float32 {args.size}^2 @ {args.size}^2, "
          f"{os.cpu_count()} cores, best of 3 loops (seconds)")
    print(f"{'layer':10s} {'numpy':>7s} {'ours':>7s} {'mixed':>7s} {'mixed/sum':>9s} "
          f"{'gpt ms':>7s} {'region us':>9s}  fork child")
    for layer in LAYERS:
        r = run_layer(layer, args.repeats, args.size)
        if "error" in r:
            print(f"{layer:10s} unavailable: {r['error']}")
            continue
        ratio = r["mixed_s"] / (r["numpy_s"] + r["ours_s"])
        print(f"{r['layer']:10s} {r['numpy_s']:7.3f} {r['ours_s']:7.3f} {r['mixed_s']:7.3f} "
              f"{ratio:9.2f} {r['gpt_ms']:7.3f} {r['region_us']:9.1f}  {r['fork']}")


if __name__ == "__main__":
    main()

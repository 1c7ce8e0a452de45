"""The OpenBLAS trap and the BLAS thread policy (ops/blas.py), measured.

    python benchmarks/blas_policy.py

Each row runs in its own process: our 512^3 float32 product on the Numba kernels alone, then
right after a numpy BLAS call (a 256^3 `a @ b`, after which OpenBLAS's threads spin for about
a second), first with the policy (OpenBLAS on one thread, the default under the numba backend)
and then with ENGINE_BLAS_THREADS=keep; and numpy's own 512^3 product with one BLAS thread and
with its default threads (the cost of the policy to numpy code in the same process).
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, ".")
import numpy as np
import ops, ops.runtime
from ops.matmul import matmul_cpu
ops.runtime.configure()  # the BLAS policy under test (ENGINE_BLAS_THREADS)
rng = np.random.default_rng(0)
a = rng.standard_normal((512, 512)).astype(np.float32)
b = rng.standard_normal((512, 512)).astype(np.float32)
small = rng.standard_normal((256, 256)).astype(np.float32)

def median(fn, before=None, n=40):
    for _ in range(5):
        fn()
    times = []
    for _ in range(n):
        if before:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3

time.sleep(1.5)  # any BLAS threads from start-up go quiet
alone = median(lambda: matmul_cpu(a, b))
after = median(lambda: matmul_cpu(a, b), before=lambda: small @ small)
numpy_ms = median(lambda: a @ b)
print(json.dumps({"alone_ms": alone, "after_blas_ms": after, "numpy_ms": numpy_ms}))
"""


def measure(setting):
    env = {k: v for k, v in os.environ.items() if k != "ENGINE_BLAS_THREADS"}
    if setting:
        env["ENGINE_BLAS_THREADS"] = setting
    out = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    import argparse
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"BLAS thread policy, {os.cpu_count()} cores, medians of 40 calls")
    for col in ("BLAS threads", "ours 512^3 alone", "ours right after a numpy BLAS call",
                "numpy 512^3"):
        table.add_column(col, justify="right")
    for label, setting in (("1 (policy, default)", None), ("default (keep)", "keep")):
        r = measure(setting)
        table.add_row(label, f"{r['alone_ms']:.2f} ms", f"{r['after_blas_ms']:.2f} ms",
                      f"{r['numpy_ms']:.2f} ms")
    Console().print(table)


if __name__ == "__main__":
    main()

"""One check of the cuda device on a machine with an NVIDIA GPU, printing one table:

1. tests/cuda without the simulator (the first run of the warp-shuffle paths);
2. the compile cache: two fresh processes run one tiny training step each; the second
   must load every kernel from numba-cuda's disk cache (cache hits, no misses);
3. the kernel table: our matmul, softmax and attention against cuBLAS / cuDNN through
   CuPy and PyTorch when they are importable (median ms, same inputs);
4. the tiny and small GPT training steps: ms per step, kernel launches and driver
   allocations per step after warm-up, host microseconds per launch.

    PYTHONPATH=. python benchmarks/gpu_check.py             # on the GPU machine, < 10 min
    NUMBA_ENABLE_CUDASIM=1 PYTHONPATH=. python benchmarks/gpu_check.py --simulate

--simulate runs every part end to end on Numba's CUDA simulator at toy sizes (a subset of
the tests, no baselines, no cache proof): its timings mean nothing, it shows the script
works. Needs nothing from the network.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # (after the path set-up)

import ops

ROWS = []  # (part, case, ours, baselines, note)


def _row(part, case, ours="", baselines="", note=""):
    ROWS.append((part, case, ours, baselines, note))


def _env(simulate):
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulate:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return env


def run_tests(simulate, budget_s):
    """tests/cuda in a child process (the simulator must be chosen before numba loads)."""
    args = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/cuda"]
    if simulate:
        args += ["-k", "budget or nan"]
    start = time.perf_counter()
    try:
        out = subprocess.run(args, cwd=ROOT, env=_env(simulate), capture_output=True,
                             text=True, timeout=budget_s, check=False)
        lines = out.stdout.strip().splitlines() or ["(no output)"]
        summary = [ln for ln in lines if " passed" in ln or " failed" in ln]
        last = summary[-1] if summary else f"{out.stdout.count('.')} tests passed"
        verdict = "pass" if out.returncode == 0 else f"FAIL (exit {out.returncode})"
    except subprocess.TimeoutExpired:
        last, verdict = f"stopped after {budget_s} s", "TIMEOUT"
    _row("tests", "tests/cuda" + (" (simulator subset)" if simulate else ""), verdict,
         f"{time.perf_counter() - start:.0f} s", last[:60])


_STEP = """
import sys, numpy as np
sys.path.insert(0, {root!r})
import ops
from ops.cuda import launch
from engine.models import GPT, GPTConfig
from engine.optim import AdamW
model = GPT(GPTConfig.tiny(), rng=0).to("cuda")
opt = AdamW(model.parameters(), lr=1e-3)
idx = np.random.default_rng(0).integers(0, 64, (4, 64))
_, loss = model(idx, np.roll(idx, -1, 1)); loss.backward(); opt.step(); loss.item()
import ops.cuda; ops.cuda.flush()
s = launch.compile_stats()
print(s["kernels"], s["cache_hits"], s["cache_misses"])
"""


def run_cache_proof():
    """Two fresh processes share an empty NUMBA_CACHE_DIR: the first compiles and saves,
    the second should compile nothing."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**_env(False), "NUMBA_CACHE_DIR": cache}
        got = []
        for _ in range(2):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _STEP.format(root=ROOT)], env=env,
                                 capture_output=True, text=True, timeout=300, check=False)
            if out.returncode:
                _row("cache", "second process compiles nothing", "FAIL",
                     note=(out.stderr.strip().splitlines() or ["?"])[-1][:60])
                return
            kernels, hits, misses = (int(v) for v in out.stdout.split()[-3:])
            got.append((time.perf_counter() - start, kernels, hits, misses))
    (t1, _, _, m1), (t2, _, h2, m2) = got
    verdict = "pass" if m2 == 0 and h2 > 0 else "FAIL"
    _row("cache", "second process compiles nothing", verdict,
         f"1st {t1:.1f} s, {m1} compiled", f"2nd {t2:.1f} s, {h2} loaded, {m2} compiled")


def _median_ms(thunk, repeats, sync):
    thunk()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        thunk()
        sync()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _baselines():
    """{name: (module, to-device function, sync)} for CuPy and PyTorch when importable."""
    found = {}
    try:
        import cupy
        found["cupy"] = (cupy, cupy.asarray, cupy.cuda.Device().synchronize)
    except Exception as err:  # noqa: BLE001  (absent or without a GPU: no baseline)
        _row("kernels", "CuPy baseline", "n/a", note=str(err).splitlines()[0][:60])
    try:
        import torch
        if torch.cuda.is_available():
            found["torch"] = (torch, lambda a: torch.as_tensor(a, device="cuda"),
                              torch.cuda.synchronize)
    except Exception as err:  # noqa: BLE001
        _row("kernels", "PyTorch baseline", "n/a", note=str(err).splitlines()[0][:60])
    return found


def _sync():
    from numba import cuda
    ops.cuda.flush()
    cuda.synchronize()


def run_kernels(simulate, repeats):
    import ops.cuda  # noqa: F401  (flush)
    rng = np.random.default_rng(0)
    base = {} if simulate else _baselines()
    n_mm = (16,) if simulate else (512, 1024, 2048)
    for n in n_mm:
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        ours = _time_ours("matmul", (a, b), repeats)
        others = {}
        for k, (m, f, s) in base.items():
            x, y = f(a), f(b)
            others[k] = _median_ms(lambda m=m, x=x, y=y: m.matmul(x, y), repeats, s)
        _row("kernels", f"matmul {n}^3 fp32", f"{ours:.3f} ms", _fmt(others),
             f"{2 * n ** 3 / ours / 1e6:,.0f} GFLOP/s")
    shape = (8, 16) if simulate else (4096, 1024)
    x = rng.standard_normal(shape).astype(np.float32)
    ours = _time_ours("softmax", (x,), repeats)
    others = {}
    if "torch" in base:
        torch, f, s = base["torch"]
        t = f(x)
        others["torch"] = _median_ms(lambda: torch.softmax(t, -1), repeats, s)
    _row("kernels", f"softmax {shape}", f"{ours:.3f} ms", _fmt(others))
    B, H, T, D = (1, 2, 8, 4) if simulate else (8, 8, 512, 64)
    q, k, v = (rng.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(3))
    ours = _time_ours("attention", (q, k, v, True, D ** -0.5, None), repeats)
    others = {}
    if "torch" in base:
        torch, f, s = base["torch"]
        sdpa = torch.nn.functional.scaled_dot_product_attention
        tq, tk, tv = f(q), f(k), f(v)
        others["torch"] = _median_ms(lambda: sdpa(tq, tk, tv, is_causal=True), repeats, s)
    _row("kernels", f"attention causal B{B} H{H} T{T} D{D}", f"{ours:.3f} ms", _fmt(others))
    _attention_fwd_bwd(base, (q, k, v), repeats)


def _attention_fwd_bwd(base, qkv, repeats):
    """Forward and backward of causal attention (ours: the tiled kernels, 3 launches)."""
    B, H, T, D = qkv[0].shape
    fwd, bwd = ops.kernel("attention", "cuda"), ops.kernel("attention_backward", "cuda")
    q, k, v = (ops.to_device(a, "cuda") for a in qkv)
    do = ops.to_device(np.random.default_rng(1).standard_normal(qkv[0].shape)
                       .astype(np.float32), "cuda")

    def ours():
        o, lse = fwd(q, k, v, True, D ** -0.5, None)
        return bwd(do, q, k, v, o, lse, True, D ** -0.5, None)
    mine = _median_ms(ours, repeats, _sync)
    others = {}
    if "torch" in base:
        torch, f, s = base["torch"]
        sdpa = torch.nn.functional.scaled_dot_product_attention
        tq, tk, tv = (f(a).requires_grad_() for a in qkv)
        tdo = f(ops.to_host(do))
        others["torch"] = _median_ms(
            lambda: sdpa(tq, tk, tv, is_causal=True).backward(tdo), repeats, s)
    _row("kernels", f"attention fwd+bwd causal B{B} H{H} T{T} D{D}", f"{mine:.3f} ms",
         _fmt(others))


def _time_ours(name, args, repeats):
    on = tuple(ops.to_device(a, "cuda") if isinstance(a, np.ndarray) else a for a in args)
    kernel = ops.kernel(name, "cuda")
    return _median_ms(lambda: kernel(*on), repeats, _sync)


def _fmt(others):
    return ", ".join(f"{k} {v:.3f} ms" for k, v in others.items()) or "n/a"


def run_steps(simulate, repeats):
    import ops.cuda as oc
    from engine.models import GPT, GPTConfig
    from engine.optim import AdamW, weight_decay_groups
    configs = {"toy": (GPTConfig.tiny(block_size=4, n_layer=2, n_embd=8, n_head=2,
                                      vocab_size=11), 2)} if simulate else \
        {"tiny": (GPTConfig.tiny(), 32), "small": (GPTConfig.small(), 16)}
    for name, (config, batch) in configs.items():
        model = GPT(config, rng=0).to("cuda")
        opt = AdamW(weight_decay_groups(model, 0.1), lr=1e-3)
        idx = np.random.default_rng(0).integers(0, config.vocab_size, (batch, config.block_size))
        targets = np.roll(idx, -1, axis=1)

        def step(model=model, opt=opt, idx=idx, targets=targets):
            opt.zero_grad()
            _, loss = model(idx, targets)
            loss.backward()
            opt.step()
        step()
        _sync()
        before = oc.memory_stats()["driver_allocations"]
        oc.reset_launch_stats()
        ms = _median_ms(step, repeats, _sync)
        launches = oc.launch_stats()["launches"] / (repeats + 1)
        allocs = (oc.memory_stats()["driver_allocations"] - before) / (repeats + 1)
        host = _host_us(step) / max(launches, 1)
        _row("train step", f"{name} (batch {batch})", f"{ms:.2f} ms",
             f"{launches:.0f} launches, {allocs:.0f} driver allocs",
             f"host {host:.1f} us/launch")


def _host_us(step):
    """Host time of one step without waiting for the GPU (an upper bound per launch)."""
    _sync()
    t0 = time.perf_counter()
    step()
    ops.cuda.flush()
    host = time.perf_counter() - t0
    _sync()
    return 1e6 * host


def print_table(device):
    print(f"gpu_check on {device}")
    widths = [max(len(str(r[i])) for r in ROWS + [("part", "case", "ours", "baselines", "")])
              for i in range(5)]
    for r in [("part", "case", "ours", "baselines / detail", "note")] + ROWS:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulate", action="store_true",
                        help="toy sizes on the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)")
    parser.add_argument("--skip-tests", action="store_true", help="skip tests/cuda")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    from numba import config
    if args.simulate != bool(config.ENABLE_CUDASIM):
        print("gpu_check: --simulate needs NUMBA_ENABLE_CUDASIM=1 (and a GPU run needs it "
              "unset)")
        return 2
    try:
        ops.get_device("cuda")
    except ops.DeviceError as err:
        print(f"gpu_check: {err}")
        return 2
    repeats = args.repeats or (2 if args.simulate else 20)
    if not args.skip_tests:
        run_tests(args.simulate, budget_s=360)
    if not args.simulate:
        run_cache_proof()
    run_kernels(args.simulate, repeats)
    run_steps(args.simulate, repeats)
    print_table(_device_name(args.simulate))
    return 1 if any(r[2].startswith(("FAIL", "TIMEOUT")) for r in ROWS) else 0


def _device_name(simulate):
    if simulate:
        return "the CUDA simulator (timings mean nothing)"
    from numba import cuda
    dev = cuda.get_current_device()
    return dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)


if __name__ == "__main__":
    sys.exit(main())

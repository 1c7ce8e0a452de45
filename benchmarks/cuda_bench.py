"""The cuda benchmarks behind `--device cuda` of benchmarks/kernels.py and
benchmarks/train_step.py (and `attn bench ... --device cuda`): on a real NVIDIA GPU, matmul
in GFLOP/s against the GPU's FP32 peak, softmax and attention in GB/s against its memory
bandwidth, and the tiny and small training steps. Without a GPU (the CUDA simulator is not
one: its timings mean nothing) they print one line saying so and exit 0.

Method: inputs made on the device, one warm-up call (it compiles), then median of repeated
calls, each timed between two cuda.synchronize() calls.
"""

import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ops  # (after the path set-up)

# FP32 lanes per SM by compute capability major version (minor 6/9 of 8.x: 128)
_FP32_PER_SM = {7: 64, 8: 64, 9: 128, 10: 128, 12: 128}


def no_gpu_reason():
    """None on a real GPU, else one line saying why the cuda benchmarks do not run."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "cuda benchmarks: the CUDA simulator is not a GPU (its timings mean nothing); " \
               "run them on a machine with an NVIDIA GPU"
    try:
        ops.get_device("cuda")
    except ops.DeviceError as err:
        return f"cuda benchmarks: no GPU here ({err})"
    return None


def gpu_info():
    """(name, FP32 peak GFLOP/s, memory bandwidth GB/s), approximate from device attributes."""
    from numba import cuda
    dev = cuda.get_current_device()
    major, minor = dev.compute_capability
    lanes = 128 if major == 8 and minor in (6, 7, 9) else _FP32_PER_SM.get(major, 64)
    peak = dev.MULTIPROCESSOR_COUNT * lanes * 2 * dev.CLOCK_RATE * 1e3 / 1e9
    bandwidth = 2 * dev.MEMORY_CLOCK_RATE * 1e3 * dev.GLOBAL_MEMORY_BUS_WIDTH / 8 / 1e9
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    return name, peak, bandwidth


def _median_s(thunk, repeats):
    from numba import cuda
    thunk()
    cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        thunk()
        cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _on(shape, rng, dtype=np.float32):
    return ops.to_device(rng.standard_normal(shape).astype(dtype), "cuda")


def kernel_rows(quick=False, only=None):
    """[(case, median ms, achieved, of peak)] for matmul, softmax and attention."""
    rng, repeats = np.random.default_rng(0), 10 if quick else 50
    _, peak, bandwidth = gpu_info()
    rows = []
    for n in (256, 1024, 2048):
        a, b = _on((n, n), rng), _on((n, n), rng)
        s = _median_s(lambda a=a, b=b: ops.kernel("matmul", "cuda")(a, b), repeats)
        rows.append((f"matmul {n}^3 fp32", s, f"{2 * n ** 3 / s / 1e9:,.0f} GFLOP/s",
                     f"{2 * n ** 3 / s / 1e9 / peak:.0%} of FP32 peak"))
    for r, c in ((4096, 1024), (512, 32768)):
        x = _on((r, c), rng)
        s = _median_s(lambda x=x: ops.kernel("softmax", "cuda")(x), repeats)
        rows.append((f"softmax ({r}, {c})", s, f"{2 * x.nbytes / s / 1e9:,.0f} GB/s",
                     f"{2 * x.nbytes / s / 1e9 / bandwidth:.0%} of bandwidth"))
    for B, H, T, D in ((16, 4, 128, 32), (8, 8, 512, 64)):
        q, k, v = (_on((B, H, T, D), rng) for _ in range(3))
        s = _median_s(lambda q=q, k=k, v=v, D=D: ops.kernel("attention", "cuda")(
            q, k, v, True, D ** -0.5, None), repeats)
        moved = 4 * q.nbytes
        rows.append((f"attention causal B{B} H{H} T{T} D{D}", s, f"{moved / s / 1e9:,.0f} GB/s",
                     f"{moved / s / 1e9 / bandwidth:.0%} of bandwidth"))
    return [r for r in rows if not only or only in r[0]]


def train_step_rows(configs=("tiny", "small"), repeats=20):
    """[(config, median ms per step, tokens/s)] of one GPT training step on the GPU."""
    from engine.models import GPT, GPTConfig
    from engine.optim import AdamW
    rows = []
    for name in configs:
        config = getattr(GPTConfig, name)()
        batch = 32 if name == "tiny" else 16
        model = GPT(config, rng=0).to("cuda")
        opt = AdamW(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        idx = rng.integers(0, config.vocab_size, (batch, config.block_size))

        def step(model=model, opt=opt, idx=idx):
            opt.zero_grad()
            _, loss = model(idx, np.roll(idx, -1, axis=1))
            loss.backward()
            opt.step()
        s = _median_s(step, repeats)
        rows.append((name, s, batch * config.block_size / s))
    return rows


def print_kernels(quick=False, only=None):
    name, peak, bandwidth = gpu_info()
    print(f"cuda kernels on {name} (FP32 peak ~{peak:,.0f} GFLOP/s, bandwidth ~{bandwidth:,.0f} "
          "GB/s, from device attributes)")
    for case, s, achieved, share in kernel_rows(quick, only):
        print(f"  {case:<36} {s * 1e3:9.3f} ms  {achieved:>16}  {share}")


def print_train_steps(configs, repeats):
    print(f"one GPT training step on {gpu_info()[0]} (fwd+bwd+AdamW, median of {repeats})")
    for name, s, tokens in train_step_rows(configs, repeats):
        print(f"  {name:<6} {s * 1e3:9.2f} ms  {tokens:12,.0f} tokens/s")

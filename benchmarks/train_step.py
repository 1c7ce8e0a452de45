"""Time one training step (forward, backward, AdamW) of the canonical GPT configs: ours on the
numba backend, ours on the numpy reference backend, and PyTorch CPU eager when importable.

    python benchmarks/train_step.py [--configs tiny small] [--repeats 20] [--json PATH]
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ops
from engine.models import GPT, GPTConfig
from engine.optim import AdamW, weight_decay_groups

BATCH = {"tiny": 32, "small": 16}  # the canonical batch sizes (../shared/DESIGN.md)


def _batch(cfg, batch, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, cfg.vocab_size, size=(batch, cfg.block_size), dtype=np.int64)
    return idx, np.roll(idx, -1, axis=1)


def _median_step(step, repeats, warmup=3):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_ours(name, backend, repeats):
    cfg = GPTConfig.from_name(name)
    model = GPT(cfg, rng=0)
    opt = AdamW(weight_decay_groups(model, 0.1), lr=1e-3)
    idx, targets = _batch(cfg, BATCH[name])

    def step():
        opt.zero_grad()
        _, loss = model(idx, targets)
        loss.backward()
        opt.step()

    with ops.use_backend(backend):
        return _median_step(step, repeats)


def time_torch(name, repeats):
    try:
        import torch
    except ImportError:
        return None
    from benchmarks.torch_gpt import TorchGPT

    cfg = GPTConfig.from_name(name)
    torch.manual_seed(0)
    model = TorchGPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    idx, targets = (torch.from_numpy(a) for a in _batch(cfg, BATCH[name]))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(idx)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)),
                                                 targets.view(-1))
        loss.backward()
        opt.step()

    return _median_step(step, repeats)


def run(configs=("tiny", "small"), repeats=20):
    rows = []
    for name in configs:
        numba_s = time_ours(name, "numba", repeats)
        numpy_s = time_ours(name, "numpy", max(repeats // 2, 3))
        cfg = GPTConfig.from_name(name)
        rows.append({"config": name, "batch": BATCH[name], "block_size": cfg.block_size,
                     "ours_numba_ms": numba_s * 1e3, "ours_numpy_ms": numpy_s * 1e3,
                     "tokens_per_s": BATCH[name] * cfg.block_size / numba_s})
    # torch last: its OpenMP threads spin after each call and would steal a core from ours
    for row in rows:
        torch_s = time_torch(row["config"], repeats)
        row["torch_ms"] = None if torch_s is None else torch_s * 1e3
    return rows


def print_table(rows):
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"one training step (fwd+bwd+AdamW), median, {os.cpu_count()} cores")
    for col in ("config", "B x T", "ours (numba)", "ours (numpy ref)", "numpy/numba",
                "torch eager", "ours/torch", "tokens/s"):
        table.add_column(col, justify="right")
    for r in rows:
        torch_ms = r["torch_ms"]
        table.add_row(r["config"], f"{r['batch']} x {r['block_size']}",
                      f"{r['ours_numba_ms']:.1f} ms", f"{r['ours_numpy_ms']:.1f} ms",
                      f"{r['ours_numpy_ms'] / r['ours_numba_ms']:.2f}x",
                      "-" if torch_ms is None else f"{torch_ms:.1f} ms",
                      "-" if torch_ms is None else f"{r['ours_numba_ms'] / torch_ms:.2f}x",
                      f"{r['tokens_per_s']:,.0f}")
    Console(width=max(Console().width, 120)).print(table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "small"],
                        choices=["tiny", "small"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: the step on the GPU (benchmarks/cuda_bench.py); default cpu")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        from benchmarks import cuda_bench
        reason = cuda_bench.no_gpu_reason()
        if reason:
            print(reason)
            return 0
        cuda_bench.print_train_steps(args.configs, args.repeats)
        return 0
    rows = run(args.configs, args.repeats)
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
